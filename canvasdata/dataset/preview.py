"""preview.jpg: a contact sheet of the build, rendered through the build's own code path and JPEG setting
(as stored). Each dataset kind lays out its own grid: styles (rows) x objects (columns) of content
index 1 for a grid build, the first pairs (image with the concept, then its twin) of each concept of a
concept set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from canvasdata.dataset.concepts import concept_samples, render_group
from canvasdata.dataset.plan import Sample, sample_seeds
from canvasdata.encode import decode_image, encode_batch, image_tensor
from canvasdata.formats.common import atomic_writer
from canvasdata.recipes import Recipe
from canvasdata.sheet import contact_sheet
from canvasdata.sources import ContentSource, Painter

CPU = torch.device("cpu")


@dataclass(frozen=True)
class PreviewGrid:
    """Tiles [rows, cols, 3, H, W] in [0,1] with their row and column labels."""

    tiles: torch.Tensor
    row_labels: list[str]
    col_labels: list[str]


def _tile(painted: torch.Tensor, quality: int, tile: int) -> torch.Tensor:
    """The first painted image as stored (JPEG at the recipe's quality), resized to a tile, in [0,1]."""
    img = decode_image(encode_batch(painted, quality)[0], tile, draft=False, resize=True)
    return image_tensor(img).float() / 255


def grid_preview(recipe: Recipe, source: ContentSource, painter: Painter, max_styles: int = 8, max_objects: int = 6,
                 tile: int = 160) -> PreviewGrid:
    """Styles x objects of the first content index (one scene per object when content is paired), drawn by the
    build's own backends."""
    styles, objects = recipe.styles[:max_styles], recipe.objects[:max_objects]
    index = min(min(idx) for _, idx in recipe.splits)
    tiles = torch.zeros(len(styles), len(objects), 3, tile, tile)
    for j, obj in enumerate(objects):
        scenes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for i, style in enumerate(styles):
            cseed, pseed = sample_seeds(recipe, Sample(style, obj, index, ""))
            if cseed not in scenes:  # paired content: one scene for every style
                scenes[cseed] = source.render(obj, [index], [cseed], recipe.resolution, CPU)
            images, masks = scenes[cseed]
            tiles[i, j] = _tile(painter.paint(style, images, [pseed], masks, [obj]), recipe.jpeg_quality, tile)
    return PreviewGrid(tiles, list(styles), list(objects))


def concept_preview(recipe: Recipe, source: ContentSource, painter: Painter, pairs: int = 3, max_concepts: int = 8,
                    tile: int = 160) -> PreviewGrid:
    """Per concept, the first `pairs` pairs (image with the concept, then its twin), drawn by the build's own
    backends."""
    concepts = recipe.concepts[:max_concepts]
    tiles = torch.zeros(len(concepts), 2 * pairs, 3, tile, tile)
    for i, c in enumerate(concepts):
        samples = [s for s in concept_samples(recipe, c) if s.role != "retain"]
        step = max(1, len(samples) // (2 * pairs)) * 2
        chosen = [x for p in range(pairs) for x in samples[p * step:p * step + 2]]
        for j, s in enumerate(chosen):
            tiles[i, j] = _tile(render_group(source, painter, recipe, [s], CPU), recipe.jpeg_quality, tile)
    return PreviewGrid(tiles, [c.name for c in concepts], ["with", "twin"] * pairs)


def write_preview(grid: PreviewGrid, path: Path) -> None:
    """Lay the grid out as a labelled contact sheet and write it as JPEG (atomically)."""
    cols = grid.tiles.shape[1]
    sheet = contact_sheet(grid.tiles.flatten(0, 1), cols, row_labels=grid.row_labels, col_labels=grid.col_labels)
    with atomic_writer(path) as f:
        sheet.save(f, format="JPEG", quality=88)
