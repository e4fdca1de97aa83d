"""The registry of dataset kinds: everything that differs between the kinds of dataset a recipe can build.

`grid`: the UnlearnCanvas shape (style x object x index). `concepts`: the DataIGM shape (per target,
images with the concept and their concept-removed twins). What a kind asks of its recipe (the counting
field, `[[concepts]]` targets, the image count) is its shape, declared with the recipe types
(`recipes.types.KIND_SHAPES`); `KINDS` holds the rest for exactly the kinds declared there. The build, the
card, the preview and the loaders ask `KINDS` (or `dataset_kind`) instead of testing the kind's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch

from canvasdata.card import CardParts, concept_card, grid_card
from canvasdata.dataset.concepts import (
    concept_features,
    plan_concept_shards,
    render_concept_shard,
    write_prompt_files,
)
from canvasdata.dataset.plan import ShardPlan, grid_features, plan_shards
from canvasdata.dataset.preview import PreviewGrid, concept_preview, grid_preview
from canvasdata.dataset.render import render_shard
from canvasdata.fields import RecipeError
from canvasdata.manifest import Manifest
from canvasdata.recipes import Recipe
from canvasdata.sources import ContentSource, Painter
from canvasdata.taxonomy import unknown_message

Render = Callable[[Recipe, ShardPlan, ContentSource, Painter, torch.device, Callable[[int], None] | None],
                  Iterator[dict]]


@dataclass(frozen=True)
class DatasetKind:
    """One kind of dataset: its plan, rows, files, card and preview (its recipe shape: `KIND_SHAPES[name]`)."""

    name: str
    features: Callable[[Recipe], datasets.Features]
    plan: Callable[[Recipe], list[ShardPlan]]
    render: Render
    card: Callable[[Recipe, Manifest], CardParts]
    preview: Callable[[Recipe, ContentSource, Painter], PreviewGrid]
    label_spaces: Callable[[Manifest], dict[str, str]]   # class-label column -> label-space name
    write_prompts: Callable[[Recipe, Path], list[str]] | None = None  # prompt files (concept sets); their paths


def _grid_spaces(m: Manifest) -> dict[str, str]:
    return {"style": m.facts.style_space, "object": m.facts.object_space}


def _concept_spaces(m: Manifest) -> dict[str, str]:
    return {"label": f"concept:{m.facts.concepts[0]}"}


KINDS: dict[str, DatasetKind] = {k.name: k for k in (
    DatasetKind("grid", grid_features, plan_shards, render_shard, grid_card, grid_preview, _grid_spaces),
    DatasetKind("concepts", lambda r: concept_features(), plan_concept_shards, render_concept_shard, concept_card,
                concept_preview, _concept_spaces, write_prompt_files),
)}


def kind_named(name: str) -> DatasetKind:
    """The registered kind `name`; an unknown name is a ValueError naming the registered ones."""
    if name not in KINDS:
        raise RecipeError(unknown_message(name, list(KINDS), "dataset kinds"))
    return KINDS[name]


def dataset_kind(recipe: Recipe) -> DatasetKind:
    """The kind of dataset `recipe` builds."""
    return kind_named(recipe.kind)
