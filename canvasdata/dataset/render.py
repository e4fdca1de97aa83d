"""Render the rows of one shard: content -> paint -> JPEG, batch by batch (memory stays flat)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import groupby

import torch

from canvasdata.dataset.plan import Sample, ShardPlan, content_id, sample_seeds
from canvasdata.encode import encode_batch
from canvasdata.recipes import Recipe
from canvasdata.sources import ContentSource, Painter
from canvasdata.taxonomy import prompt


def render_shard(recipe: Recipe, shard: ShardPlan, source: ContentSource, painter: Painter,
                 device: torch.device, on_images: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Yield the shard's rows in plan order. Content is rendered once per batch of content indices
    and painted in every style of the shard; only one batch of images is held at a time."""
    style_id = {n: i for i, n in enumerate(recipe.style_space.names)}
    object_id = {n: i for i, n in enumerate(recipe.object_space.names)}
    source_name = recipe.content.source
    bs = recipe.output.batch_size
    paired = recipe.content.pairing == "paired"
    for obj, group in groupby(shard.samples, key=lambda s: s.obj):
        samples = list(group)
        indices = sorted({s.index for s in samples})
        for start in range(0, len(indices), bs):
            chunk = indices[start:start + bs]
            wanted = [s for s in samples if s.index in chunk]
            if paired:
                shared = source.render(obj, chunk, [sample_seeds(recipe, Sample("", obj, k, ""))[0] for k in chunk],
                                       recipe.resolution, device)
            encoded: dict[tuple[str, int], tuple[bytes, int]] = {}
            for style in dict.fromkeys(s.style for s in wanted):
                mine = [s for s in wanted if s.style == style]
                seeds = [sample_seeds(recipe, s) for s in mine]
                if paired:
                    pos = [chunk.index(s.index) for s in mine]
                    images, masks = shared[0][pos], shared[1][pos]
                else:
                    images, masks = source.render(obj, [s.index for s in mine], [c for c, _ in seeds],
                                                  recipe.resolution, device)
                pseeds = [p for _, p in seeds]
                painted = painter.paint(style, images, pseeds, masks, [obj] * len(mine))
                for s, seed, jpg in zip(mine, pseeds, encode_batch(painted, recipe.jpeg_quality), strict=True):
                    encoded[(style, s.index)] = (jpg, seed)
                if on_images:
                    on_images(len(mine))
            for s in wanted:
                jpg, seed = encoded[(s.style, s.index)]
                yield {
                    "image": jpg,
                    "style": style_id[s.style],
                    "object": object_id[obj],
                    "index": s.index,
                    "content_id": content_id(recipe, s),
                    "prompt": prompt(s.style, obj, recipe.prompt_template),
                    "seed": seed,
                    "source": source_name,
                    "split": s.split,
                }
