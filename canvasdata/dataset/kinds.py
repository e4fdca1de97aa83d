"""The kinds of dataset a recipe can build, each a (features, plan, render) triple.

`grid`: the UnlearnCanvas shape (style x object x index). `concepts`: the DataIGM shape (per target,
images with the concept and their concept-removed twins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import datasets

from canvasdata.dataset.concepts import concept_features, plan_concept_shards, render_concept_shard
from canvasdata.dataset.plan import plan_shards
from canvasdata.dataset.render import render_shard
from canvasdata.formats import features_for
from canvasdata.recipes import Recipe


@dataclass(frozen=True)
class DatasetKind:
    name: str
    features: Callable[[Recipe], datasets.Features]
    plan: Callable
    render: Callable


KINDS = {
    "grid": DatasetKind("grid", lambda r: features_for(r.style_space.names, r.object_space.names), plan_shards,
                        render_shard),
    "concepts": DatasetKind("concepts", lambda r: concept_features(), plan_concept_shards, render_concept_shard),
}


def dataset_kind(recipe: Recipe) -> DatasetKind:
    return KINDS[recipe.kind]
