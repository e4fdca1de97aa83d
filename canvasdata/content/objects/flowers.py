"""Flowers: radial petals around a centre (daisy, cosmos) or cupped tulips, on green stems with leaves."""

from __future__ import annotations

import math

from canvasdata.content.objects._kit import pick
from canvasdata.content.raster import darker, hsv, jitter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

PETALS = [(0.92, 0.15, 0.2), (0.98, 0.6, 0.75), (0.98, 0.85, 0.15), (0.97, 0.97, 0.95), (0.6, 0.3, 0.8),
          (0.98, 0.5, 0.1)]


@register_object("Flowers", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    n = int(rng.integers(1, 5))
    kind = int(rng.integers(3))
    petal = jitter(rng, pick(rng, PETALS))
    stem = jitter(rng, (0.2, 0.5, 0.15))
    base = min(0.98, scene.ground + rng.uniform(0.15, 0.35))
    for _ in range(n):
        r = float(rng.uniform(0.11, 0.18)) * (1.0 if n < 3 else 0.75)
        x = float(rng.uniform(0.25, 0.75)) if n > 1 else float(rng.uniform(0.4, 0.6))
        y = float(rng.uniform(0.25, 0.55))
        bend = rng.uniform(-0.06, 0.06)
        c.fill(c.chain([(x, y), (x + bend, (y + base) / 2), (x + bend * 0.5, base)], 0.008, 0.011), stem, shade=0.3)
        for side in (-1, 1):
            ly = y + (base - y) * rng.uniform(0.4, 0.7)
            c.fill(c.ellipse(x + bend + side * 0.04, ly, 0.045, 0.014, angle=side * -0.6), darker(stem, 1.1), bump=0.01)
        col = jitter(rng, petal, 0.08)
        if kind == 2:  # tulip
            rim = [(x - r * 0.7, y - r * 0.2), (x - r * 0.45, y - r * 1.2), (x - r * 0.1, y - r * 0.5),
                   (x + r * 0.2, y - r * 1.25), (x + r * 0.7, y - r * 0.2)]
            cup = c.union(c.ellipse(x, y, r * 0.7, r * 0.8), c.polygon(rim))
            c.fill(cup, col, bump=0.03)
            c.fill(c.ellipse(x - r * 0.25, y - r * 0.1, r * 0.12, r * 0.55), darker(col, 0.8), shade=0.2, alpha=0.6)
            continue
        k = int(rng.integers(5, 13)) if kind == 0 else int(rng.integers(5, 8))
        rot0 = rng.uniform(0, 6.28)
        for j in range(k):
            a = rot0 + j * 2 * math.pi / k
            c.fill(c.ellipse(x + math.cos(a) * r * 0.55, y + math.sin(a) * r * 0.55, r * 0.55,
                             r * (0.2 if kind == 0 else 0.35), angle=a), col, bump=0.015)
        centre = (0.95, 0.8, 0.1) if kind == 0 else hsv(0.1, 0.8, 0.35)
        c.fill(c.circle(x, y, r * 0.28), centre, bump=0.02)
