"""A standing human figure in a pose, drawn in given colours: shared by Human and Statues."""

from __future__ import annotations

import math
from dataclasses import dataclass

from canvasdata.content.objects._kit import Frame
from canvasdata.content.raster import darker


@dataclass
class Palette:
    skin: tuple
    hair: tuple
    top: tuple
    bottom: tuple
    shoes: tuple


def draw_figure(fr: Frame, rng, pal: Palette, *, eyes: bool = True, gloss: float = 0.0) -> None:
    """Legs, torso, arms and head, feet at the frame anchor, about 1.0 units tall."""
    arm_l = rng.uniform(-0.3, 2.4)        # raised, waving or hanging
    arm_r = rng.uniform(-0.3, 0.6)
    step = rng.uniform(-0.08, 0.08)
    skirt = rng.random() < 0.3
    for dx, sx, col in ((-0.05, -step, darker(pal.bottom, 0.85)), (0.05, step, pal.bottom)):
        fr.c.fill(fr.capsule(dx, -0.45, dx + sx, -0.04, 0.045, 0.035), col, gloss=gloss)
        fr.c.fill(fr.ellipse(dx + sx + 0.03, -0.02, 0.055, 0.025), pal.shoes, gloss=gloss)
    if skirt:
        fr.c.fill(fr.polygon([(-0.1, -0.62), (0.1, -0.62), (0.17, -0.35), (-0.17, -0.35)]), pal.bottom, bump=0.03,
                  gloss=gloss)
    fr.c.fill(fr.box(0.0, -0.6, 0.22, 0.34, r=0.06), pal.top, bump=0.06, gloss=gloss)
    for side, a in ((-1, arm_l), (1, arm_r)):
        sx, sy = side * 0.11, -0.73
        ex, ey = sx + side * 0.18 * math.sin(a * 0.5 + 0.2), sy + 0.18 * math.cos(a * 0.5 + 0.2)
        hx, hy = ex + side * 0.17 * math.sin(a), ey + 0.17 * math.cos(a)
        fr.c.fill(fr.capsule(sx, sy, ex, ey, 0.038, 0.034), pal.top, gloss=gloss)
        fr.c.fill(fr.capsule(ex, ey, hx, hy, 0.032, 0.028), pal.skin, gloss=gloss)
        fr.c.fill(fr.circle(hx, hy, 0.035), pal.skin, gloss=gloss)
    fr.c.fill(fr.capsule(0.0, -0.78, 0.0, -0.84, 0.035), pal.skin, gloss=gloss)
    fr.c.fill(fr.ellipse(0.0, -0.93, 0.085, 0.1), pal.skin, bump=0.05, gloss=gloss)
    fr.c.fill(fr.ellipse(0.0, -0.99, 0.09, 0.06), pal.hair, bump=0.03, gloss=gloss)
    if rng.random() < 0.4:
        fr.c.fill(fr.ellipse(0.0, -0.9, 0.1, 0.12).maximum(fr.box(0.0, -0.92, 0.3, 0.14)), pal.hair, gloss=gloss)
    if eyes:
        for dx in (-0.03, 0.03):
            fr.c.fill(fr.circle(dx, -0.93, 0.011), (0.1, 0.08, 0.06), shade=0.0)
        fr.c.fill(fr.capsule(-0.02, -0.87, 0.02, -0.87, 0.006), (0.6, 0.3, 0.3), shade=0.0)
