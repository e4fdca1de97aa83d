"""JPEG encoding and decoding shared by every writer and reader: one encoder, one setting for all classes."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from canvasdata.sheet import to_uint8


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Encode one HxWx3 uint8 image; 4:2:0 subsampling and no optimisation flags for every class alike."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling="4:2:0", optimize=False)
    return buf.getvalue()


def encode_batch(images: torch.Tensor, quality: int) -> list[bytes]:
    """[B,3,H,W] float in [0,1] -> JPEG bytes, one per image."""
    return [encode_jpeg(a, quality) for a in to_uint8(images)]


def decode_image(data: bytes, size: int | None = None) -> Image.Image:
    """Decode to RGB; when `size` is at most half the stored size, let libjpeg decode at reduced scale."""
    img = Image.open(io.BytesIO(data))
    if size is not None and img.format == "JPEG":
        img.draft("RGB", (size, size))
    return img.convert("RGB")
