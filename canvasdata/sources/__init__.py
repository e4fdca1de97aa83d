"""Content sources and painters: what is drawn, and what paints it.

A recipe's `[content] source` picks the content source (`procedural` by default; `photos` and
`diffusers` are the real-content backends) and `painter` the painter (`procedural` styles by default).
Each is looked up in a small registry, so a new backend is one module and one `register_*` call.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import torch

from canvasdata.recipes import Recipe
from canvasdata.taxonomy import unknown_message


class ContentSource(Protocol):
    """Renders the unstylized content k of an object.

    A source whose `supports_removal` is True also takes `draw_object=False` and renders the same
    scene without the object (the concept-removed twin of concept sets)."""

    supports_removal: bool

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int,
               device: torch.device, *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [B,3,H,W] in [0,1] and object masks [B,1,H,W]."""
        ...

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        ...


class Painter(Protocol):
    """Paints content in a style."""

    def paint(self, style: str, images: torch.Tensor, seeds: Sequence[int], masks: torch.Tensor | None,
              objects: Sequence[str]) -> torch.Tensor:
        ...

    def check(self, styles: Sequence[str]) -> None:
        """Raise a clear error for any style this painter cannot paint (before any work starts)."""
        ...

    def describe(self) -> dict:
        ...


_SOURCES: dict[str, Callable[[Recipe], ContentSource]] = {}
_PAINTERS: dict[str, Callable[[Recipe], Painter]] = {}


def register_source(name: str) -> Callable:
    def deco(factory: Callable[[Recipe], ContentSource]) -> Callable[[Recipe], ContentSource]:
        _SOURCES[name] = factory
        return factory
    return deco


def register_painter(name: str) -> Callable:
    def deco(factory: Callable[[Recipe], Painter]) -> Callable[[Recipe], Painter]:
        _PAINTERS[name] = factory
        return factory
    return deco


def _load_backends() -> None:
    from canvasdata.sources import procedural  # noqa: F401  (registers itself)
    for optional in ("photos", "diffusers"):
        try:
            __import__(f"canvasdata.sources.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"canvasdata.sources.{optional}":
                raise


def make_source(recipe: Recipe) -> ContentSource:
    _load_backends()
    name = recipe.content.source
    if name not in _SOURCES:
        raise ValueError(f"{recipe.source}: field 'content.source': " + unknown_message(name, sorted(_SOURCES), "content sources"))
    return _SOURCES[name](recipe)


def make_painter(recipe: Recipe) -> Painter:
    _load_backends()
    name = recipe.content.option("painter", "procedural")
    if name not in _PAINTERS:
        raise ValueError(f"{recipe.source}: field 'content.painter': " + unknown_message(name, sorted(_PAINTERS), "painters"))
    return _PAINTERS[name](recipe)
