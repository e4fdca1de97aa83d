"""Architectures: buildings seen from the front: a gabled house, a columned temple or a domed hall,
with doors, windows and rooflines."""

from __future__ import annotations

from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR

WALLS = [(0.72, 0.35, 0.25), (0.9, 0.88, 0.82), (0.85, 0.78, 0.6), (0.6, 0.6, 0.62), (0.55, 0.4, 0.28)]
ROOFS = [(0.5, 0.15, 0.1), (0.25, 0.25, 0.3), (0.35, 0.45, 0.55), (0.45, 0.3, 0.2)]


def _windows(fr: Frame, rng, x0: float, x1: float, y0: float, y1: float, glass) -> None:
    cols, rows = int(rng.integers(2, 5)), int(rng.integers(1, 3))
    for i in range(cols):
        for j in range(rows):
            x = x0 + (x1 - x0) * (i + 0.5) / cols
            y = y0 + (y1 - y0) * (j + 0.5) / rows
            fr.c.fill(fr.box(x, y, 0.09, 0.12), (0.95, 0.95, 0.92), shade=0.2)
            fr.c.fill(fr.box(x, y, 0.07, 0.1), glass, shade=0.1, gloss=0.2)


@register_object("Architectures", backgrounds=OUTDOOR)
def draw(c, rng, scene) -> None:
    fr = Frame(c, float(rng.uniform(0.4, 0.6)), float(min(0.95, scene.ground + rng.uniform(0.12, 0.3))),
               float(rng.uniform(0.55, 0.75)))
    wall = jitter(rng, pick(rng, WALLS))
    roof = jitter(rng, pick(rng, ROOFS))
    glass = (0.95, 0.8, 0.4) if scene.night else jitter(rng, (0.45, 0.6, 0.75))
    kind = int(rng.integers(3))
    fr.c.shadow(fr.box(0.05, 0.0, 1.0, 0.06), 0.03, 0.35)
    if kind == 0:  # house
        fr.c.fill(fr.box(0.0, -0.25, 0.8, 0.5), wall, bump=0.02, texture=1 + 0.08 * c.noise(30, 2))
        fr.c.fill(fr.polygon([(-0.48, -0.48), (0.48, -0.48), (0.0, -0.85)]), roof, bump=0.03)
        fr.c.fill(fr.box(0.22, -0.75, 0.08, 0.2), darker(wall, 0.7))
        fr.c.fill(fr.box(-0.1, -0.12, 0.14, 0.24, r=0.01), darker(roof, 0.8), bump=0.01)
        _windows(fr, rng, 0.02, 0.38, -0.42, -0.15, glass)
        _windows(fr, rng, -0.38, -0.2, -0.42, -0.2, glass)
    elif kind == 1:  # temple
        fr.c.fill(fr.box(0.0, -0.04, 0.95, 0.08), lighter(wall, 0.2), bump=0.01)
        n = int(rng.integers(4, 8))
        for i in range(n):
            x = -0.4 + 0.8 * i / (n - 1)
            fr.c.fill(fr.box(x, -0.32, 0.07, 0.5, r=0.01), lighter(wall, 0.3), bump=0.035)
        fr.c.fill(fr.box(0.0, -0.61, 0.95, 0.08), lighter(wall, 0.2), bump=0.01)
        fr.c.fill(fr.polygon([(-0.5, -0.65), (0.5, -0.65), (0.0, -0.85)]), lighter(wall, 0.25), bump=0.02)
    else:  # domed hall
        fr.c.fill(fr.box(0.0, -0.25, 0.9, 0.5), wall, bump=0.02)
        fr.c.fill(fr.box(0.0, -0.55, 0.4, 0.12), lighter(wall, 0.15))
        fr.c.fill(fr.circle(0.0, -0.6, 0.2), roof, bump=0.15, gloss=0.3)
        fr.c.fill(fr.box(0.0, -0.55, 0.42, 0.1), lighter(wall, 0.15))
        fr.c.fill(fr.capsule(0.0, -0.8, 0.0, -0.9, 0.01), roof)
        fr.c.fill(fr.box(0.0, -0.15, 0.16, 0.3, r=0.08), darker(wall, 0.4))
        _windows(fr, rng, -0.42, -0.12, -0.42, -0.12, glass)
        _windows(fr, rng, 0.12, 0.42, -0.42, -0.12, glass)
