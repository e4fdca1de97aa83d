"""Plan a build: which samples exist, and which shard each one goes in.

Samples are ordered by split, then object, content index and style, so a shard renders each
content once and paints it in every style it holds. The plan depends only on the recipe: any worker
or rank computes the same plan and can build any shard alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from canvasdata.formats import shard_filename
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
    samples: tuple[Sample, ...]


def plan_samples(recipe: Recipe) -> list[Sample]:
    return [
        Sample(style, obj, index, split)
        for split, indices in recipe.splits
        for obj in recipe.objects
        for index in sorted(indices)
        for style in recipe.styles
    ]


def plan_shards(recipe: Recipe) -> list[ShardPlan]:
    """Split each split's samples into shards of at most `output.shard_rows` rows."""
    shards: list[ShardPlan] = []
    rows = recipe.output.shard_rows
    by_split: dict[str, list[Sample]] = {}
    for s in plan_samples(recipe):
        by_split.setdefault(s.split, []).append(s)
    for split, samples in by_split.items():
        n = -(-len(samples) // rows)
        for i in range(n):
            name = shard_filename(split, i, n, recipe.output.format)
            shards.append(ShardPlan(name, split, tuple(samples[i * rows:(i + 1) * rows])))
    return shards


def sample_seeds(recipe: Recipe, s: Sample) -> tuple[int, int]:
    """(content seed, paint seed): content k of an object is shared by every style, unless the recipe's
    content is unpaired (then the style is part of the content's identity too)."""
    style = s.style if recipe.content.pairing == "unpaired" else None
    return content_seed(recipe.content.seed, s.obj, s.index, style), paint_seed(recipe.seed, s.style, s.obj, s.index)


def content_id(recipe: Recipe, s: Sample) -> str:
    """Names the scene a sample is painted from: shared across styles only when content is paired."""
    base = f"{s.obj}-{s.index:05d}"
    return f"{base}-{s.style}" if recipe.content.pairing == "unpaired" else base
