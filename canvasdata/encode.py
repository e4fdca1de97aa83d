"""Pixels <-> JPEG bytes, shared by every writer and reader: one encoder (one setting for all classes)
and one decoder (`decode_image`) whose options cover every reader's needs.

Every image canvasdata reads is opened by `opened_image` (which `decode_image` and `image_mode` use):
a missing file, an unreadable image and an image over Pillow's decompression-bomb limit
(`PIL.Image.MAX_IMAGE_PIXELS`, its warning level included) become one-line errors naming the image."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from canvasdata.errors import MissingFileError, UsageError

ImageSource = bytes | bytearray | memoryview | Path | str
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")  # 16-bit greyscale (PNG, TIFF): 0..65535


class ImageError(UsageError):
    """An image that cannot be decoded: unreadable, or refused as a possible decompression bomb."""


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B,3,H,W] float in [0,1] -> [B,H,W,3] uint8 (round to nearest)."""
    x = images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode one HxWx3 uint8 image; 4:2:0 subsampling and no optimisation flags for every class alike."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False)
    return buf.getvalue()


def encode_batch(images: torch.Tensor, quality: int) -> list[bytes]:
    """[B,3,H,W] float in [0,1] -> JPEG bytes, one per image."""
    return [encode_jpeg(a, quality) for a in to_uint8(images)]


def image_name(source: ImageSource, name: str | None = None) -> str:
    """How errors name an image: `name`, else the file's path, else "image bytes"."""
    return name or (str(source) if isinstance(source, (Path, str)) else "image bytes")


@contextmanager
def opened_image(source: ImageSource, name: str | None = None) -> Iterator[Image.Image]:
    """`Image.open` of bytes or a file, closed on exit. Errors while opening or loading it become one
    line naming the image (`name`, see `image_name`): MissingFileError for a missing file, ImageError
    for an unreadable image or one over the decompression-bomb limit (Pillow's warning level too)."""
    label = image_name(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
            with Image.open(fp) as img:
                yield img
    except FileNotFoundError:
        raise MissingFileError(f"{label}: no such image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{label}: refused as a possible decompression bomb: {e} "
                         "(PIL.Image.MAX_IMAGE_PIXELS sets the limit)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{label}: unreadable image (not an image format Pillow reads)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"{label}: unreadable image ({e})") from None


def image_mode(source: ImageSource, name: str | None = None) -> str:
    """The image's Pillow mode ("RGB", "L", "CMYK", ...) from its header, checked as `opened_image` does."""
    with opened_image(source, name) as img:
        return img.mode


def to_rgb(img: Image.Image) -> Image.Image:
    """An image of any mode as RGB; 16-bit integer images are scaled to 8 bits (Pillow's own conversion
    clips them at 255)."""
    if img.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(img, dtype=np.float64) / 257
        img = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8))
    return img.convert("RGB")


def decode_image(source: ImageSource, size: int | None = None, *, draft: bool = True, resize: bool = False,
                 upright: bool = False, crop_square: bool = False,
                 resample: Image.Resampling = Image.Resampling.BICUBIC, name: str | None = None) -> Image.Image:
    """Decode image bytes (or an image file) to a loaded RGB image (`to_rgb`); errors name the image
    (`name`, else the path) on one line, decompression bombs included (`opened_image`).

    `size` is the size the caller wants. With `draft` (the default), a JPEG stored at least twice as
    large is decoded at reduced scale by libjpeg (DCT scaling: fast, and still at least `size` px);
    `draft=False` decodes at full size. `resize` then resizes to exactly `size` x `size` with
    `resample`. `upright` applies the EXIF orientation and `crop_square` takes the centred square,
    both before resizing (photographs). Without `size` the image keeps its stored resolution.
    """
    with opened_image(source, name) as img:
        if draft and size is not None and img.format == "JPEG":
            img.draft("RGB", (size, size))
        out = to_rgb(ImageOps.exif_transpose(img) if upright else img)
    if crop_square:
        w, h = out.size
        s = min(w, h)
        out = out.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if resize and size is not None and out.size != (size, size):
        out = out.resize((size, size), resample, reducing_gap=None)
    return out


def image_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB image -> uint8 tensor [3,H,W]."""
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
