"""Towers: tall, narrow structures: a striped lighthouse, a crenellated castle tower with a cone roof,
a clock tower or a lattice tower."""

from __future__ import annotations

from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR


@register_object("Towers", backgrounds=OUTDOOR)
def draw(c, rng, scene) -> None:
    h = float(rng.uniform(0.6, 0.78))
    fr = Frame(c, float(rng.uniform(0.35, 0.65)), float(min(0.96, scene.ground + rng.uniform(0.08, 0.25))), h)
    kind = int(rng.integers(4))
    stone = jitter(rng, pick(rng, [(0.62, 0.6, 0.56), (0.72, 0.62, 0.48), (0.55, 0.45, 0.4)]))
    fr.c.shadow(fr.box(0.05, 0.0, 0.5, 0.04), 0.03, 0.3)
    if kind == 0:  # lighthouse
        band = pick(rng, [(0.85, 0.15, 0.12), (0.15, 0.25, 0.6), (0.1, 0.1, 0.1)])
        fr.c.fill(fr.polygon([(-0.14, 0.0), (0.14, 0.0), (0.09, -0.8), (-0.09, -0.8)]), (0.95, 0.95, 0.93), bump=0.06)
        for k in range(3):
            y = -0.12 - 0.25 * k
            fr.c.fill(fr.box(0.0, y, 0.32, 0.1).maximum(fr.polygon([(-0.14, 0.0), (0.14, 0.0), (0.09, -0.8),
                                                                    (-0.09, -0.8)])), band, bump=0.06)
        fr.c.fill(fr.box(0.0, -0.83, 0.24, 0.05), darker(band, 0.7))
        fr.c.fill(fr.box(0.0, -0.9, 0.14, 0.1), (1.0, 0.95, 0.6), shade=0.1)
        fr.c.fill(fr.polygon([(-0.1, -0.95), (0.1, -0.95), (0.0, -1.04)]), darker(band, 0.7))
    elif kind == 1:  # castle tower
        fr.c.fill(fr.box(0.0, -0.38, 0.3, 0.76), stone, bump=0.05, texture=1 + 0.1 * c.noise(24, 2))
        for k in range(4):
            fr.c.fill(fr.box(-0.12 + 0.08 * k, -0.79, 0.05, 0.06), stone, bump=0.01)
        fr.c.fill(fr.polygon([(-0.19, -0.8), (0.19, -0.8), (0.0, -1.05)]),
                  jitter(rng, pick(rng, [(0.25, 0.3, 0.5), (0.5, 0.15, 0.1)])), bump=0.04)
        for y in (-0.3, -0.55):
            fr.c.fill(fr.box(0.0, y, 0.05, 0.1, r=0.025), (0.1, 0.08, 0.07))
    elif kind == 2:  # clock tower
        fr.c.fill(fr.box(0.0, -0.42, 0.26, 0.84), stone, bump=0.04)
        fr.c.fill(fr.circle(0.0, -0.7, 0.09), (0.95, 0.93, 0.85), shade=0.2)
        fr.c.fill(fr.capsule(0.0, -0.7, 0.0, -0.76, 0.007), (0.1, 0.1, 0.1), shade=0.0)
        fr.c.fill(fr.capsule(0.0, -0.7, 0.05, -0.7, 0.007), (0.1, 0.1, 0.1), shade=0.0)
        fr.c.fill(fr.polygon([(-0.16, -0.84), (0.16, -0.84), (0.0, -1.05)]), darker(stone, 0.6), bump=0.03)
    else:  # lattice tower
        metal = jitter(rng, (0.45, 0.35, 0.28))
        for side in (-1, 1):
            fr.c.fill(fr.chain([(side * 0.25, 0.0), (side * 0.1, -0.45), (side * 0.02, -1.0)], 0.02, 0.008), metal)
        for k in range(9):
            y0, y1 = -0.1 * k, -0.1 * (k + 1)
            w0, w1 = 0.25 * (1 - k / 10) ** 1.6, 0.25 * (1 - (k + 1) / 10) ** 1.6
            fr.c.fill(fr.capsule(-w0, y0, w1, y1, 0.005), metal, shade=0.0)
            fr.c.fill(fr.capsule(w0, y0, -w1, y1, 0.005), metal, shade=0.0)
        fr.c.fill(fr.box(0.0, -0.35, 0.3, 0.02), lighter(metal, 0.1))
        fr.c.fill(fr.capsule(0.0, -1.0, 0.0, -1.08, 0.006), metal)
