"""The style engine: image operators and the named styles built from them.

A style is data: a list of operator steps (`library.toml` holds the 60 uc60 styles and Seed_Images).
`paint(style, images, seeds)` applies it image by image, each from its own seed, so an image never
depends on the rest of its batch. Users define new styles in a recipe's `[custom_styles]` table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from canvasdata.styles import ops_color, ops_paint, ops_pattern  # noqa: F401  (register operators)
from canvasdata.styles.registry import OPERATORS, StyleError, StyleSpec, parse_style, resolve, styles_from_toml
from canvasdata.taxonomy import unknown_message

LIBRARY = Path(__file__).with_name("library.toml")
_STYLES: dict[str, StyleSpec] = {}


def _load_library() -> None:
    if _STYLES:
        return
    table = tomllib.loads(LIBRARY.read_text(encoding="utf-8"))
    for spec in styles_from_toml(table, str(LIBRARY)):
        _STYLES[spec.name] = spec


def list_styles() -> list[str]:
    """Names of the registered styles."""
    _load_library()
    return sorted(_STYLES)


def get_style(name: str) -> StyleSpec:
    """A registered style; unknown names raise StyleError with the closest suggestions."""
    _load_library()
    if name not in _STYLES:
        raise StyleError(unknown_message(name, sorted(_STYLES), "styles"))
    return _STYLES[name]


def register_style(spec: StyleSpec) -> None:
    """Add (or replace) a named style."""
    _load_library()
    _STYLES[spec.name] = spec


def paint(style: str | StyleSpec, images: torch.Tensor, seeds: Sequence[int], *,
          masks: torch.Tensor | None = None) -> torch.Tensor:
    """Paint images [B,3,H,W] in [0,1] in a style; one seed per image. Same shape, dtype and device."""
    spec = get_style(style) if isinstance(style, str) else style
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"paint expects images [B,3,H,W], got {tuple(images.shape)}")
    if len(seeds) != images.shape[0]:
        raise ValueError(f"paint got {images.shape[0]} images but {len(seeds)} seeds")
    if not spec.steps:
        return images.clone()
    out = []
    for i, seed in enumerate(seeds):
        rng = np.random.default_rng([int(seed), 0x5751E])
        x = images[i:i + 1].float()
        for op, params in resolve(spec, rng):
            x = op.fn(x, [rng], **params).clamp(0, 1)
        out.append(x.to(images.dtype))
    return torch.cat(out)


__all__ = ["OPERATORS", "StyleError", "StyleSpec", "get_style", "list_styles", "paint", "parse_style",
           "register_style", "styles_from_toml"]
