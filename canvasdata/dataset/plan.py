"""Plan a build: which samples exist, and which shard each one goes in.

Samples are ordered by split, then object, content index and style, so a shard renders each
content once and paints it in every style it holds. The plan depends only on the recipe: any worker
or rank computes the same plan and can build any shard alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import datasets

from canvasdata.formats import features_for, shard_filename
from canvasdata.recipes import Recipe
from canvasdata.seeds import content_seed, paint_seed


@dataclass(frozen=True)
class Sample:
    """One image: content `index` of `obj` painted in `style`."""

    style: str
    obj: str
    index: int
    split: str


@dataclass(frozen=True)
class ShardPlan:
    """One independent unit of work: a shard file and the samples it holds, in order."""

    name: str
    split: str
    samples: tuple[Any, ...]   # Sample, or the samples of another dataset kind


def chunk_shards(samples: Sequence[Any], rows: int, fmt: str, config: str = "") -> list[ShardPlan]:
    """Group samples (anything with a `split`) by split, in order of first appearance, and cut each
    split into shards of at most `rows` samples: `data/[{config}/]{split}-{i}-of-{n}`."""
    by_split: dict[str, list[Any]] = {}
    for s in samples:
        by_split.setdefault(s.split, []).append(s)
    shards: list[ShardPlan] = []
    for split, group in by_split.items():
        n = -(-len(group) // rows)
        shards += [ShardPlan(shard_filename(split, i, n, fmt, config), split, tuple(group[i * rows:(i + 1) * rows]))
                   for i in range(n)]
    return shards


def plan_samples(recipe: Recipe) -> list[Sample]:
    """Every sample of a grid build, in build order."""
    return [
        Sample(style, obj, index, split)
        for split, indices in recipe.splits
        for obj in recipe.objects
        for index in sorted(indices)
        for style in recipe.styles
    ]


def plan_shards(recipe: Recipe) -> list[ShardPlan]:
    """Split each split's samples into shards of at most `output.shard_rows` rows."""
    return chunk_shards(plan_samples(recipe), recipe.output.shard_rows, recipe.output.format)


def grid_features(recipe: Recipe) -> datasets.Features:
    """Typed columns of a grid build (class ids are positions in the whole label spaces)."""
    return features_for(recipe.style_space.names, recipe.object_space.names)


def sample_seeds(recipe: Recipe, s: Sample) -> tuple[int, int]:
    """(content seed, paint seed): content k of an object is shared by every style, unless the recipe's
    content is unpaired (then the style is part of the content's identity too)."""
    style = s.style if recipe.content.pairing == "unpaired" else None
    return content_seed(recipe.content.seed, s.obj, s.index, style), paint_seed(recipe.seed, s.style, s.obj, s.index)


def content_id(recipe: Recipe, s: Sample) -> str:
    """Names the scene a sample is painted from: shared across styles only when content is paired."""
    base = f"{s.obj}-{s.index:05d}"
    return f"{base}-{s.style}" if recipe.content.pairing == "unpaired" else base
