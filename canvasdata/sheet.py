"""Contact sheets: a labelled grid of image tiles, for people to look at (previews, cards)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from canvasdata.encode import to_uint8


def label_font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at `size` px (Pillow>=10.1 with FreeType), else its fixed bitmap font: the one
    font of every figure canvasdata draws."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def contact_sheet(
    tiles: torch.Tensor,
    ncol: int,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    pad: int = 2,
) -> Image.Image:
    """Lay out tiles [N,3,H,W] row-major in `ncol` columns, with optional row and column labels."""
    arr = to_uint8(tiles)
    n, h, w, _ = arr.shape
    nrow = -(-n // ncol)
    font = ImageFont.load_default()
    left = 0 if not row_labels else 8 + 7 * max(len(s) for s in row_labels)
    top = 0 if not col_labels else 16
    sheet = Image.new("RGB", (left + ncol * (w + pad) + pad, top + nrow * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i in range(n):
        r, c = divmod(i, ncol)
        sheet.paste(Image.fromarray(arr[i]), (left + pad + c * (w + pad), top + pad + r * (h + pad)))
    for r, label in enumerate(row_labels or []):
        draw.text((4, top + pad + r * (h + pad) + h // 2 - 5), label, fill="black", font=font)
    for c, label in enumerate(col_labels or []):
        draw.text((left + pad + c * (w + pad) + 2, 3), label[: max(1, w // 6)], fill="black", font=font)
    return sheet
