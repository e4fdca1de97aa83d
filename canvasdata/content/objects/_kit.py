"""A local drawing frame for objects: place, scale and mirror a figure drawn in its own units.

Local coordinates: x points the way the figure faces, y points down, (0, 0) is the figure's anchor
(usually the middle of its feet), one unit is the figure's scale on the canvas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from canvasdata.content.raster import Canvas
from canvasdata.content.scene import Scene


class Frame:
    """Maps local figure coordinates to canvas coordinates (translation, scale, mirror)."""

    def __init__(self, c: Canvas, x: float, y: float, scale: float, facing: int = 1) -> None:
        self.c, self.x, self.y, self.s, self.f = c, x, y, scale, facing

    def p(self, x: float, y: float) -> tuple[float, float]:
        return self.x + self.f * x * self.s, self.y + y * self.s

    def circle(self, x: float, y: float, r: float) -> torch.Tensor:
        return self.c.circle(*self.p(x, y), r * self.s)

    def ellipse(self, x: float, y: float, rx: float, ry: float, angle: float = 0.0) -> torch.Tensor:
        return self.c.ellipse(*self.p(x, y), rx * self.s, ry * self.s, self.f * angle)

    def box(self, x: float, y: float, w: float, h: float, angle: float = 0.0, r: float = 0.0) -> torch.Tensor:
        return self.c.box(*self.p(x, y), w * self.s, h * self.s, self.f * angle, r * self.s)

    def capsule(self, ax: float, ay: float, bx: float, by: float, r0: float, r1: float | None = None) -> torch.Tensor:
        return self.c.capsule(*self.p(ax, ay), *self.p(bx, by), r0 * self.s, (r0 if r1 is None else r1) * self.s)

    def polygon(self, pts: Sequence[tuple[float, float]]) -> torch.Tensor:
        return self.c.polygon([self.p(x, y) for x, y in pts])

    def chain(self, pts: Sequence[tuple[float, float]], r0: float, r1: float | None = None) -> torch.Tensor:
        return self.c.chain([self.p(x, y) for x, y in pts], r0 * self.s, (r0 if r1 is None else r1) * self.s)

    def union(self, *ds: torch.Tensor, k: float = 0.0) -> torch.Tensor:
        """Union; `k` (local units) blends the shapes smoothly."""
        return self.c.union(*ds, k=k * self.s)

    def ground_shadow(self, half_width: float, strength: float = 0.35) -> None:
        """A soft contact shadow under the figure's anchor."""
        cx, cy = self.p(0.0, 0.0)
        self.c.shadow(self.c.ellipse(cx, cy, half_width * self.s, 0.06 * self.s), 0.04 * self.s, strength)


def place(c: Canvas, rng: np.random.Generator, scene: Scene, size: tuple[float, float],
          y_range: tuple[float, float] | None = None, height: float = 1.0) -> Frame:
    """A frame standing on the ground near the middle of the picture, scale in `size`, facing left or
    right: object-centric framing, as in the photos of the original set. `height` (local units) keeps
    the figure's top inside the frame."""
    s = float(rng.uniform(*size))
    x = float(rng.uniform(0.42, 0.58))
    lo, hi = y_range or (max(scene.ground + 0.05, min(0.97, 0.04 + s * height)), min(0.97, scene.ground + 0.3))
    y = float(rng.uniform(lo, max(lo, hi)))
    return Frame(c, x, y, s, 1 if rng.random() < 0.5 else -1)


def eye(fr: Frame, x: float, y: float, r: float, iris: tuple = (0.1, 0.08, 0.05), slit: bool = False) -> None:
    """An eye with a catch-light; `slit` draws a vertical pupil (cats)."""
    fr.c.fill(fr.circle(x, y, r), iris, shade=0.2, gloss=0.3)
    if slit:
        fr.c.fill(fr.ellipse(x, y, r * 0.3, r * 0.85), (0.02, 0.02, 0.02), shade=0.0)
    fr.c.fill(fr.circle(x + r * 0.3, y - r * 0.35, r * 0.28), (0.97, 0.97, 0.97), shade=0.0)


def pick(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]
