"""Content sources and painters: what is drawn, and what paints it.

A recipe's `[content] source` picks the content source (`procedural` by default; `photos` and
`diffusers` are the real-content backends) and `painter` the painter (`procedural` styles by default).
`SOURCES` and `PAINTERS` are the registries every other module asks; they implement exactly the backends
that `recipes.options` declares (which recipes are checked against, without importing this package). Each
backend class names itself and its options (`options`, a dataclass of `recipes.options`, whose
`backend` is the name), so a new backend is one options dataclass and one class (or one `register_source`
/ `register_painter` call from outside the package, which declares its options to the recipe loader too).
A build makes its backends once per process (`make_backends`) and renders every shard with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from canvasdata.recipes import Recipe
from canvasdata.recipes.options import (
    DEFAULT_PAINTER,
    DEFAULT_SOURCE,
    BackendOptions,
    ProceduralPainterOptions,
    ProceduralSourceOptions,
    declare_painter,
    declare_source,
)
from canvasdata.sources.diffusers import DiffusersContent, Img2ImgPainter
from canvasdata.sources.photos import PhotoContent
from canvasdata.sources.procedural import ProceduralContent, ProceduralPainter
from canvasdata.taxonomy import unknown_message


class ContentSource(Protocol):
    """Renders the unstylized content k of an object.

    A source whose `supports_removal` is True also takes `draw_object=False` and renders the same
    scene without the object (the concept-removed twin of concept sets)."""

    name: str
    supports_removal: bool

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int,
               device: torch.device, *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [B,3,H,W] in [0,1] and object masks [B,1,H,W]."""
        ...

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        ...

    def fingerprint(self) -> dict | None:
        """Checksums of the inputs the source reads from outside the recipe (files), or None when it has
        none: a build records them, and a change invalidates the shards built from the old inputs."""
        ...


class Painter(Protocol):
    """Paints content in a style."""

    name: str

    def paint(self, style: str, images: torch.Tensor, seeds: Sequence[int], masks: torch.Tensor | None,
              objects: Sequence[str]) -> torch.Tensor:
        """Painted images, the input's shape, values in [0,1]."""
        ...

    def check(self, styles: Sequence[str]) -> None:
        """Raise a clear error for any style this painter cannot paint (before any work starts)."""
        ...

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        ...


SourceFactory = Callable[[Recipe], ContentSource]
PainterFactory = Callable[[Recipe], Painter]

SOURCES: dict[str, SourceFactory] = {cls.name: cls for cls in (ProceduralContent, PhotoContent, DiffusersContent)}
PAINTERS: dict[str, PainterFactory] = {cls.name: cls for cls in (ProceduralPainter, Img2ImgPainter)}
__all__ = ["DEFAULT_PAINTER", "DEFAULT_SOURCE", "PAINTERS", "SOURCES", "Backends", "ContentSource", "Painter",
           "make_backends", "make_painter", "make_source", "register_painter", "register_source"]


def register_source(name: str, options: type[BackendOptions] = ProceduralSourceOptions
                    ) -> Callable[[SourceFactory], SourceFactory]:
    """Decorator: register a content source factory under `name`, reading the `[content]` options that the
    dataclass `options` declares (default: none), which recipes are then checked against."""
    def deco(factory: SourceFactory) -> SourceFactory:
        declare_source(name, options)
        SOURCES[name] = factory
        return factory
    return deco


def register_painter(name: str, options: type[BackendOptions] = ProceduralPainterOptions
                     ) -> Callable[[PainterFactory], PainterFactory]:
    """Decorator: register a painter factory under `name`, with its options as `register_source`."""
    def deco(factory: PainterFactory) -> PainterFactory:
        declare_painter(name, options)
        PAINTERS[name] = factory
        return factory
    return deco


def make_source(recipe: Recipe) -> ContentSource:
    """The recipe's content source; an unknown name is an error naming the registered ones."""
    name = recipe.content.source
    if name not in SOURCES:
        raise recipe.content.fields(recipe.source).fail("source", unknown_message(name, sorted(SOURCES),
                                                                                  "content sources"))
    return SOURCES[name](recipe)


def make_painter(recipe: Recipe) -> Painter:
    """The recipe's painter (`content.painter`, default procedural)."""
    name = recipe.content.painter
    if name not in PAINTERS:
        raise recipe.content.fields(recipe.source).fail("painter", unknown_message(name, sorted(PAINTERS), "painters"))
    return PAINTERS[name](recipe)


@dataclass(frozen=True)
class Backends:
    """A recipe's content source and painter, made once per process (a diffusers pipeline loads once, a
    photo folder is read once) and used for every shard, the preview and the records of that process."""

    source: ContentSource
    painter: Painter

    def describe(self) -> dict:
        """Both backends' settings, as the manifest and card record them."""
        return {**self.source.describe(), **self.painter.describe()}


def make_backends(recipe: Recipe) -> Backends:
    """The recipe's content source and painter."""
    return Backends(make_source(recipe), make_painter(recipe))
