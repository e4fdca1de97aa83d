"""The embedded default: procedural content scenes painted by procedural styles."""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch

from canvasdata import content
from canvasdata import styles as style_library
from canvasdata.fields import RecipeError
from canvasdata.recipes import Recipe
from canvasdata.recipes.options import ProceduralPainterOptions, ProceduralSourceOptions


class ProceduralContent:
    """Scenes from `canvasdata.content`, one per (object, content seed)."""

    options = ProceduralSourceOptions
    name = options.backend
    supports_removal = True

    def __init__(self, recipe: Recipe) -> None:
        missing = [o for o in recipe.objects if o not in content.list_objects()]
        if missing:
            raise RecipeError(f"{recipe.source}: field 'objects': no procedural content for {missing}; "
                             f"available: {', '.join(content.list_objects())}")

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int,
               device: torch.device, *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and object masks of the scenes with these content seeds."""
        return content.render(obj, list(seeds), size, device=device, draw_object=draw_object)

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        return {"source": self.name}

    def fingerprint(self) -> None:
        """Procedural content reads nothing but the recipe."""
        return None


class ProceduralPainter:
    """Named styles from `canvasdata.styles`, plus the recipe's own `custom_styles` (checked here, when the
    build starts: their steps name operators, which the style engine declares)."""

    options = ProceduralPainterOptions
    name = options.backend

    def __init__(self, recipe: Recipe) -> None:
        self.custom: dict[str, style_library.StyleSpec] = {}
        if recipe.custom_styles:
            for spec in style_library.styles_from_toml(json.loads(recipe.custom_styles), recipe.source):
                self.custom[spec.name] = spec

    def spec(self, style: str) -> style_library.StyleSpec:
        """The recipe's own style of that name, else the named style."""
        return self.custom.get(style) or style_library.get_style(style)

    def check(self, styles: Sequence[str]) -> None:
        """Every style must be known (raises with the closest names otherwise)."""
        for s in styles:
            self.spec(s)

    def paint(self, style: str, images: torch.Tensor, seeds: Sequence[int], masks: torch.Tensor | None,
              objects: Sequence[str]) -> torch.Tensor:
        """Paint with the style's operator steps."""
        return style_library.paint(self.spec(style), images, list(seeds), masks=masks)

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        return {"painter": self.name, "custom_styles": sorted(self.custom)}
