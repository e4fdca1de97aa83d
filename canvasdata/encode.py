"""Pixels <-> JPEG bytes, shared by every writer and reader: one encoder (one setting for all classes)
and one decoder (`decode_image`) whose options cover every reader's needs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


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


def decode_image(source: bytes | Path, size: int | None = None, *, draft: bool = True, resize: bool = False,
                 upright: bool = False, crop_square: bool = False,
                 resample: Image.Resampling = Image.Resampling.BICUBIC) -> Image.Image:
    """Decode image bytes (or an image file) to a loaded RGB image.

    `size` is the size the caller wants. With `draft` (the default), a JPEG stored at least twice as
    large is decoded at reduced scale by libjpeg (DCT scaling: fast, and still at least `size` px);
    `draft=False` decodes at full size. `resize` then resizes to exactly `size` x `size` with
    `resample`. `upright` applies the EXIF orientation and `crop_square` takes the centred square,
    both before resizing (photographs). Without `size` the image keeps its stored resolution.
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        if draft and size is not None and img.format == "JPEG":
            img.draft("RGB", (size, size))
        out = (ImageOps.exif_transpose(img) if upright else img).convert("RGB")
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
