"""preview.jpg: a grid of styles (rows) x objects (columns) of content index 1, as stored (JPEG)."""

from __future__ import annotations

from pathlib import Path

import torch

from canvasdata.dataset.plan import Sample, sample_seeds
from canvasdata.encode import decode_image, encode_batch
from canvasdata.recipes import Recipe
from canvasdata.sheet import contact_sheet
from canvasdata.sources import make_painter, make_source


def preview_tiles(recipe: Recipe, max_styles: int = 8, max_objects: int = 6, tile: int = 160) -> torch.Tensor:
    """Render the preview samples through the build's own code path and JPEG setting."""
    import numpy as np

    source, painter = make_source(recipe), make_painter(recipe)
    styles, objects = recipe.styles[:max_styles], recipe.objects[:max_objects]
    index = min(min(idx) for _, idx in recipe.splits)
    tiles = torch.zeros(len(styles), len(objects), 3, tile, tile)
    for j, obj in enumerate(objects):
        scenes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for i, style in enumerate(styles):
            cseed, pseed = sample_seeds(recipe, Sample(style, obj, index, ""))
            if cseed not in scenes:  # paired content: one scene for every style
                scenes[cseed] = source.render(obj, [index], [cseed], recipe.resolution, torch.device("cpu"))
            images, masks = scenes[cseed]
            jpg = encode_batch(painter.paint(style, images, [pseed], masks, [obj]), recipe.jpeg_quality)[0]
            img = decode_image(jpg).resize((tile, tile))
            tiles[i, j] = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
    return tiles


def concept_preview_tiles(recipe: Recipe, pairs: int = 3, max_concepts: int = 8, tile: int = 160) -> torch.Tensor:
    """Per concept, the first `pairs` pairs (image with the concept, then its twin)."""
    import numpy as np

    from canvasdata.dataset.concepts import _render_group, concept_samples

    source, painter = make_source(recipe), make_painter(recipe)
    concepts = recipe.concepts[:max_concepts]
    tiles = torch.zeros(len(concepts), 2 * pairs, 3, tile, tile)
    for i, c in enumerate(concepts):
        samples = [s for s in concept_samples(recipe, c) if s.role != "retain"]
        step = max(1, len(samples) // (2 * pairs)) * 2
        chosen = [x for p in range(pairs) for x in samples[p * step:p * step + 2]]
        for j, s in enumerate(chosen):
            painted = _render_group(source, painter, recipe, [s], torch.device("cpu"))
            img = decode_image(encode_batch(painted, recipe.jpeg_quality)[0]).resize((tile, tile))
            tiles[i, j] = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255
    return tiles


def write_preview(recipe: Recipe, path: Path) -> None:
    if recipe.kind == "concepts":
        tiles = concept_preview_tiles(recipe)
        rows, cols = tiles.shape[:2]
        row_labels = [c.name for c in recipe.concepts[:rows]]
        col_labels = ["with", "twin"] * (cols // 2)
    else:
        tiles = preview_tiles(recipe)
        rows, cols = tiles.shape[:2]
        row_labels, col_labels = list(recipe.styles[:rows]), list(recipe.objects[:cols])
    sheet = contact_sheet(tiles.flatten(0, 1), cols, row_labels=row_labels, col_labels=col_labels)
    tmp = path.with_name(path.name + ".tmp")
    sheet.save(tmp, format="JPEG", quality=88)
    tmp.replace(path)
