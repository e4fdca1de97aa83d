"""Contact sheet of the styles: styles (rows) x objects (columns), the same content index in every row."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from canvasdata import content
from canvasdata.seeds import content_seed, paint_seed
from canvasdata.sheet import contact_sheet
from canvasdata.styles import list_styles, paint
from canvasdata.taxonomy import UC60

DEFAULT_OBJECTS = ("Cats", "Horses", "Flowers", "Towers", "Human", "Sea")


def style_sheet(styles: Sequence[str] | None = None, objects: Sequence[str] | None = None, size: int = 128,
                index: int = 1, device: str = "cpu", recipe_seed: int = 0) -> Image.Image:
    """Paint content `index` of each object in every style (uc60 order by default)."""
    styles = list(styles or [s for s in UC60 if s in list_styles()])
    objects = list(objects or DEFAULT_OBJECTS)
    base = torch.cat([content.render(o, [content_seed(recipe_seed, o, index)], size, device)[0] for o in objects])
    rows = []
    for s in styles:
        seeds = [paint_seed(recipe_seed, s, o, index) for o in objects]
        rows.append(paint(s, base, seeds))
    return contact_sheet(torch.cat(rows), len(objects), row_labels=styles, col_labels=objects)
