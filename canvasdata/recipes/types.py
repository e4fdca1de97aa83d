"""The value types of a dataset recipe: `Recipe` and its sections, frozen dataclasses, and what a recipe
may name: the dataset kinds' recipe shapes (`KIND_SHAPES`), the shard formats (`SHARD_FORMATS`) and the
content backends with their options (`recipes.options`).

A leaf: it imports nothing of the machinery that runs a recipe (no torch, no datasets, no diffusers). The
registries that do the work (`dataset.kinds.KINDS`, `formats.FORMATS`, `sources.SOURCES` / `PAINTERS`)
implement exactly the names declared here, and look the recipe up; the recipe never looks them up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canvasdata.fields import Fields, RecipeError
from canvasdata.recipes.options import (
    DEFAULT_PAINTER,
    DEFAULT_SOURCE,
    PAINTER_OPTIONS,
    SOURCE_OPTIONS,
    BackendOptions,
    locations,
    read_options,
)
from canvasdata.taxonomy import PROMPT_TEMPLATE, SEED_STYLE, LabelSpace

SHARD_FORMATS = ("parquet", "webdataset")  # `[output] format`: what `formats.FORMATS` writes
DEFAULT_FORMAT = "parquet"
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


@dataclass(frozen=True)
class OutputConfig:
    """How shards are written."""

    format: str = DEFAULT_FORMAT
    shard_rows: int = 2000
    row_group_rows: int = 500
    batch_size: int = 16


@dataclass(frozen=True)
class ContentConfig:
    """Where content comes from. `seed` namespaces the scenes: a different seed gives disjoint content.
    `pairing`: "paired" paints content k of an object in every style (the benchmark grid, so that
    Seed_Images/k is every style's unstylized twin); "unpaired" gives every (style, object, index) a scene
    of its own (training sets for judges: many more distinct scenes per object). `options` are the
    table's other fields as written (the painter's name among them): the chosen source and painter read
    them typed, as their options dataclass declares (`source_options`, `painter_options`)."""

    source: str = DEFAULT_SOURCE
    seed: int = 0
    pairing: str = "paired"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def painter(self) -> str:
        """The painter's name (`painter`, default procedural)."""
        return self.option("painter", DEFAULT_PAINTER)

    def option(self, key: str, default: Any = None) -> Any:
        """A backend option as written, or `default`."""
        return dict(self.options).get(key, default)

    def fields(self, source: str) -> Fields:
        """The backend options as typed fields of `[content]` in the recipe file `source`."""
        return Fields(dict(self.options), source, "content.")

    def locations(self) -> tuple[str, ...]:
        """The options of the chosen source and painter that name where an input lives (`options.locations`)."""
        return locations(SOURCE_OPTIONS[self.source]) + locations(PAINTER_OPTIONS[self.painter])

    def source_options(self, source: str = "<memory>") -> BackendOptions:
        """The content source's options, typed (errors name the recipe file `source`)."""
        return read_options(SOURCE_OPTIONS[self.source], self.fields(source))

    def painter_options(self, source: str = "<memory>") -> BackendOptions:
        """The painter's options, typed (errors name the recipe file `source`)."""
        return read_options(PAINTER_OPTIONS[self.painter], self.fields(source))


@dataclass(frozen=True)
class CardConfig:
    """Dataset-card metadata."""

    pretty_name: str = ""
    license: str = "cc-by-4.0"
    tags: tuple[str, ...] = ()
    task_categories: tuple[str, ...] = ("image-classification", "text-to-image")


@dataclass(frozen=True)
class ConceptSpec:
    """One unlearning target of a concept set (the DataIGM shape).

    For a style target, `themes` are the objects drawn and `twin` the style of the concept-removed
    twin (Seed_Images: unpainted). For an object target, `themes` are the styles the scenes are painted
    in, the twin is the same scene without the object (or with `replacement` in its place), and
    `retain` lists unrelated classes drawn as negatives.
    """

    name: str
    domain: str
    themes: tuple[str, ...]
    twin: str = SEED_STYLE
    replacement: str = ""
    retain: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """A validated dataset recipe."""

    name: str
    version: str
    description: str
    kind: str
    seed: int
    style_space: LabelSpace
    object_space: LabelSpace
    styles: tuple[str, ...]
    objects: tuple[str, ...]
    images_per_cell: int
    resolution: int
    jpeg_quality: int
    splits: tuple[tuple[str, tuple[int, ...]], ...]
    output: OutputConfig = OutputConfig()
    content: ContentConfig = ContentConfig()
    card: CardConfig = CardConfig()
    prompt_template: str = PROMPT_TEMPLATE
    custom_styles: str = ""
    concepts: tuple[ConceptSpec, ...] = ()
    images_per_prompt: int = 1
    source: str = field(default="<memory>", compare=False)

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.splits)

    def split_of(self, index: int) -> str:
        """The split that content index `index` (1-based) belongs to."""
        for name, indices in self.splits:
            if index in indices:
                return name
        raise RecipeError(f"{self.source}: index {index} is in no split")

    @property
    def num_images(self) -> int:
        """How many images the build holds (its dataset kind's shape counts them)."""
        return KIND_SHAPES[self.kind].num_images(self)

    @property
    def size_category(self) -> str:
        """The Hub's size category of the build."""
        for bound, name in SIZE_CATEGORIES:
            if self.num_images < bound:
                return name
        return "1M<n<10M"

    def to_dict(self) -> dict[str, Any]:
        """The canonical, JSON-serialisable form (what the hash covers)."""
        d = dataclasses.asdict(self)
        d.pop("source")
        d["style_space"] = {"name": self.style_space.name, "names": list(self.style_space.names)}
        d["object_space"] = {"name": self.object_space.name, "names": list(self.object_space.names)}
        d["splits"] = {name: list(idx) for name, idx in self.splits}
        d["content"]["options"] = dict(self.content.options)
        return json.loads(json.dumps(d))

    def hash(self) -> str:
        """sha256 of the canonical JSON form without the content's locations: two recipes with the same hash
        build the same data from the same inputs (where a photo folder lives is not what it holds; its
        fingerprint, in the build's inputs, is)."""
        d = self.to_dict()
        for name in self.content.locations():
            d["content"]["options"].pop(name, None)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def replace(self, **changes: Any) -> Recipe:
        """A copy with `changes` (dataclass fields)."""
        return dataclasses.replace(self, **changes)


def grid_num_images(recipe: Recipe) -> int:
    """styles x objects x images per cell."""
    return len(recipe.styles) * len(recipe.objects) * recipe.images_per_cell


def concept_num_images(recipe: Recipe) -> int:
    """Per concept: (image, twin) pairs of every theme, plus the retain classes' negatives."""
    per_theme = recipe.images_per_cell * recipe.images_per_prompt
    return sum(per_theme * (2 * len(c.themes) + len(c.retain)) for c in recipe.concepts)


@dataclass(frozen=True)
class KindShape:
    """What a dataset kind asks of its recipe: the field that counts content indices per cell (split indices
    run over it), whether the recipe lists `[[concepts]]` targets (which then decide the styles and objects
    drawn), and how many images the build holds. The rest of the kind is `dataset.kinds.KINDS[name]`."""

    name: str
    count_field: str
    targets: bool
    num_images: Callable[[Recipe], int]


KIND_SHAPES: dict[str, KindShape] = {s.name: s for s in (
    KindShape("grid", "images_per_cell", False, grid_num_images),           # UnlearnCanvas: style x object x index
    KindShape("concepts", "prompts_per_theme", True, concept_num_images),   # DataIGM: targets and their twins
)}
DEFAULT_KIND = "grid"
