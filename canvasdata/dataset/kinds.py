"""The registry of dataset kinds: everything that differs between the kinds of dataset a recipe can build.

`grid`: the UnlearnCanvas shape (style x object x index). `concepts`: the DataIGM shape (per target,
images with the concept and their concept-removed twins). Recipes, the build, the card, the preview and
the loaders ask `KINDS` (or `dataset_kind`) instead of testing the kind's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import datasets
import torch

from canvasdata.card import CardParts, concept_card, grid_card
from canvasdata.dataset.concepts import (
    concept_features,
    concept_num_images,
    plan_concept_shards,
    render_concept_shard,
    write_prompt_files,
)
from canvasdata.dataset.plan import ShardPlan, grid_features, grid_num_images, plan_shards
from canvasdata.dataset.preview import PreviewGrid, concept_preview, grid_preview
from canvasdata.dataset.render import render_shard
from canvasdata.fields import RecipeError
from canvasdata.manifest import Manifest
from canvasdata.sources import ContentSource, Painter
from canvasdata.taxonomy import unknown_message

if TYPE_CHECKING:  # the recipe is only a type here: recipes import this registry to validate `kind`
    from canvasdata.recipes import Recipe

Render = Callable[["Recipe", ShardPlan, ContentSource, Painter, torch.device, Callable[[int], None] | None],
                  Iterator[dict]]


@dataclass(frozen=True)
class DatasetKind:
    """One kind of dataset: its recipe shape, its plan, rows, files, card and preview."""

    name: str
    count_field: str            # the recipe field that counts content indices per cell (split indices run over it)
    targets: bool               # the recipe lists [[concepts]] targets, which decide the styles and objects drawn
    num_images: Callable[[Recipe], int]
    features: Callable[[Recipe], datasets.Features]
    plan: Callable[[Recipe], list[ShardPlan]]
    render: Render
    card: Callable[[Recipe, Manifest], CardParts]
    preview: Callable[[Recipe], PreviewGrid]
    label_spaces: Callable[[Manifest], dict[str, str]]   # class-label column -> label-space name
    write_prompts: Callable[[Recipe, Path], list[str]] | None = None  # prompt files (concept sets); their paths


def _grid_spaces(m: Manifest) -> dict[str, str]:
    return {"style": m.facts.style_space, "object": m.facts.object_space}


def _concept_spaces(m: Manifest) -> dict[str, str]:
    return {"label": f"concept:{m.facts.concepts[0]}"}


KINDS: dict[str, DatasetKind] = {
    "grid": DatasetKind("grid", "images_per_cell", False, grid_num_images, grid_features, plan_shards, render_shard,
                        grid_card, grid_preview, _grid_spaces),
    "concepts": DatasetKind("concepts", "prompts_per_theme", True, concept_num_images, lambda r: concept_features(),
                            plan_concept_shards, render_concept_shard, concept_card, concept_preview, _concept_spaces,
                            write_prompt_files),
}
DEFAULT_KIND = "grid"


def kind_named(name: str) -> DatasetKind:
    """The registered kind `name`; an unknown name is a ValueError naming the registered ones."""
    if name not in KINDS:
        raise RecipeError(unknown_message(name, list(KINDS), "dataset kinds"))
    return KINDS[name]


def dataset_kind(recipe: Recipe) -> DatasetKind:
    """The kind of dataset `recipe` builds."""
    return kind_named(recipe.kind)
