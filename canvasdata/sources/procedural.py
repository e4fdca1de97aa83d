"""The embedded default: procedural content scenes painted by procedural styles."""

from __future__ import annotations

import json
from typing import Sequence

import torch

from canvasdata.recipes import Recipe
from canvasdata.sources import register_painter, register_source


class ProceduralContent:
    """Scenes from `canvasdata.content`, one per (object, content seed)."""

    supports_removal = True

    def __init__(self, recipe: Recipe) -> None:
        from canvasdata import content

        self._content = content
        missing = [o for o in recipe.objects if o not in content.list_objects()]
        if missing:
            raise ValueError(f"{recipe.source}: field 'objects': no procedural content for {missing}; "
                             f"available: {', '.join(content.list_objects())}")

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int,
               device: torch.device, *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        return self._content.render(obj, list(seeds), size, device=device, draw_object=draw_object)

    def describe(self) -> dict:
        return {"source": "procedural"}


class ProceduralPainter:
    """Named styles from `canvasdata.styles`, plus the recipe's own `custom_styles`."""

    def __init__(self, recipe: Recipe) -> None:
        from canvasdata import styles

        self._styles = styles
        self.custom = {}
        if recipe.custom_styles:
            for spec in styles.styles_from_toml(json.loads(recipe.custom_styles), recipe.source):
                self.custom[spec.name] = spec

    def spec(self, style: str):
        return self.custom.get(style) or self._styles.get_style(style)

    def check(self, styles: Sequence[str]) -> None:
        for s in styles:
            self.spec(s)

    def paint(self, style: str, images: torch.Tensor, seeds: Sequence[int], masks: torch.Tensor | None,
              objects: Sequence[str]) -> torch.Tensor:
        return self._styles.paint(self.spec(style), images, list(seeds), masks=masks)

    def describe(self) -> dict:
        return {"painter": "procedural", "custom_styles": sorted(self.custom)}


register_source("procedural")(ProceduralContent)
register_painter("procedural")(ProceduralPainter)
