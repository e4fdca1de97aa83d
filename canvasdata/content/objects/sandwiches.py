"""Sandwiches: stacked layers between two slices of bread (lettuce, tomato, cheese, ham) on a plate,
whole or cut into triangles."""

from __future__ import annotations

import math

from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import darker, jitter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

FILLINGS = {"lettuce": (0.35, 0.7, 0.2), "tomato": (0.85, 0.15, 0.1), "cheese": (0.98, 0.8, 0.2),
            "ham": (0.92, 0.6, 0.6), "egg": (0.98, 0.96, 0.85), "beef": (0.45, 0.25, 0.18)}


@register_object("Sandwiches", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    fr = Frame(c, float(rng.uniform(0.4, 0.6)), float(min(0.9, scene.ground + rng.uniform(0.15, 0.3))),
               float(rng.uniform(0.5, 0.7)))
    bread = jitter(rng, pick(rng, [(0.93, 0.8, 0.55), (0.75, 0.55, 0.32), (0.96, 0.9, 0.75)]))
    crust = darker(bread, 0.7)
    if rng.random() < 0.7:
        fr.c.fill(fr.ellipse(0.0, 0.0, 0.55, 0.1), (0.96, 0.96, 0.96), bump=0.02, gloss=0.2)
        fr.c.fill(fr.ellipse(0.0, 0.0, 0.4, 0.065), (0.9, 0.9, 0.9), shade=0.2)
    triangle = rng.random() < 0.45
    layers = [pick(rng, list(FILLINGS)) for _ in range(int(rng.integers(2, 5)))]
    y = -0.03
    w = 0.36

    def slab(y0: float, th: float, col, wavy: bool = False) -> None:
        if triangle:
            d = fr.polygon([(-w, y0), (w, y0), (w * 0.7, y0 - th), (-w * 0.7, y0 - th)])
        else:
            d = fr.box(0.0, y0 - th / 2, 2 * w, th, r=min(th / 2, 0.03))
        if wavy:
            d = d - 0.01 * fr.s * (1 + fr.c.X.mul(60 * math.pi).sin())
        fr.c.fill(d, col, bump=0.02)

    slab(y, 0.09, crust)
    slab(y - 0.005, 0.07, bread)
    y -= 0.09
    for name in layers:
        th = 0.04 if name != "lettuce" else 0.035
        slab(y, th, jitter(rng, FILLINGS[name], 0.05), wavy=name == "lettuce")
        y -= th * 0.9
    slab(y, 0.1, crust)
    top = fr.ellipse(0.0, y - 0.07, w * (0.72 if triangle else 1.0), 0.05)
    fr.c.fill(top, bread, bump=0.03)
