"""Contact sheet of the content engine: classes (rows) x seeds (columns)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from PIL import Image

from canvasdata.content import list_objects, render
from canvasdata.seeds import content_seed
from canvasdata.sheet import contact_sheet


def content_sheet(objects: Sequence[str] | None = None, seeds: Iterable[int] = range(8), size: int = 128,
                  device: str = "cpu", recipe_seed: int = 0) -> Image.Image:
    """Render every class (or `objects`) for each seed index, as the build derives content seeds."""
    objects = list(objects or list_objects())
    seeds = list(seeds)
    tiles = [render(obj, [content_seed(recipe_seed, obj, k + 1) for k in seeds], size, device)[0] for obj in objects]
    return contact_sheet(torch.cat(tiles), len(seeds), row_labels=objects)
