"""The registry of object classes: each module under `canvasdata/content/objects/` registers its drawing
function here with `@register_object(name, backgrounds=...)`, and the content engine asks it by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from canvasdata.content.raster import Canvas
from canvasdata.content.scene import Scene
from canvasdata.errors import CanvasdataError
from canvasdata.taxonomy import unknown_message

DrawFn = Callable[[Canvas, np.random.Generator, Scene], None]


class UnknownObjectError(CanvasdataError, KeyError):
    """An object class that is not registered; the message suggests the closest names."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ObjectClass:
    """A drawable object class: its name, drawing function and the backgrounds it stands on."""

    name: str
    draw: DrawFn
    backgrounds: tuple[str, ...]


_REGISTRY: dict[str, ObjectClass] = {}


def register_object(name: str, backgrounds: Sequence[str]) -> Callable[[DrawFn], DrawFn]:
    """Register a drawing function for object class `name`, drawn over one of `backgrounds`."""

    def deco(fn: DrawFn) -> DrawFn:
        _REGISTRY[name] = ObjectClass(name, fn, tuple(backgrounds))
        return fn

    return deco


def list_objects() -> list[str]:
    """Registered object classes, sorted."""
    return sorted(_REGISTRY)


def get_object(name: str) -> ObjectClass:
    """The registered object class `name`; an unknown name is an error suggesting the closest ones."""
    if name not in _REGISTRY:
        raise UnknownObjectError(unknown_message(name, sorted(_REGISTRY), "content object classes"))
    return _REGISTRY[name]
