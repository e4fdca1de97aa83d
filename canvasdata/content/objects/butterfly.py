"""Butterflies: four patterned wings in mirror symmetry, a slender body and clubbed antennae."""

from __future__ import annotations

import math

from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR

# (wing, border, spots)
WINGS = [((0.95, 0.5, 0.08), (0.08, 0.06, 0.05), (0.97, 0.97, 0.95)),
         ((0.15, 0.45, 0.95), (0.05, 0.08, 0.15), (0.7, 0.85, 1.0)),
         ((0.98, 0.88, 0.3), (0.1, 0.1, 0.08), (0.3, 0.5, 0.9)),
         ((0.96, 0.96, 0.93), (0.35, 0.35, 0.35), (0.2, 0.2, 0.2)),
         ((0.75, 0.2, 0.5), (0.2, 0.05, 0.15), (0.98, 0.85, 0.3))]


@register_object("Butterfly", backgrounds=OUTDOOR)
def draw(c, rng, scene) -> None:
    s = float(rng.uniform(0.42, 0.6))
    fr = Frame(c, float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.4, 0.55)), s)
    wing, border, spot = (jitter(rng, col) for col in pick(rng, WINGS))
    tilt = rng.uniform(-0.35, 0.35)
    open_ = rng.uniform(0.75, 1.0)
    if rng.random() < 0.4:  # resting on a flower
        fr.c.fill(fr.capsule(0.0, 0.25, 0.05, 1.2, 0.02), (0.25, 0.5, 0.2))
        fr.c.fill(fr.circle(0.0, 0.25, 0.12), pick(rng, [(0.9, 0.3, 0.5), (0.95, 0.9, 0.95)]), bump=0.04)
    for side in (-1, 1):
        for (x, y, rx, ry, a) in ((0.3, -0.18, 0.32, 0.22, -0.5), (0.22, 0.17, 0.2, 0.17, 0.6)):
            cx, cy = side * x * open_, y
            ang = side * a + tilt
            px, py = cx * math.cos(tilt) - cy * math.sin(tilt), cx * math.sin(tilt) + cy * math.cos(tilt)
            fr.c.fill(fr.ellipse(px, py, rx * open_, ry, angle=ang), border, bump=0.02)
            fr.c.fill(fr.ellipse(px, py, rx * open_ * 0.8, ry * 0.75, angle=ang), wing, bump=0.02)
            fr.c.fill(fr.circle(px + side * 0.06, py, 0.045 * (rx / 0.3)), spot, shade=0.1)
            for k in range(4):
                t = k / 4 * math.pi * 2
                fr.c.fill(fr.circle(px + rx * 0.85 * math.cos(t + ang), py + ry * 0.85 * math.sin(t + ang), 0.018),
                          lighter(spot, 0.3), shade=0.0)
    bx, by = -math.sin(tilt) * 0.3, math.cos(tilt) * 0.3
    fr.c.fill(fr.capsule(bx * -1, -by, bx, by, 0.035, 0.025), darker(border, 0.8), bump=0.02)
    for side in (-1, 1):
        tip = (-bx + side * 0.15, -by - 0.25)
        fr.c.fill(fr.capsule(-bx, -by, tip[0], tip[1], 0.006), border, shade=0.0)
        fr.c.fill(fr.circle(tip[0], tip[1], 0.018), border, shade=0.0)
