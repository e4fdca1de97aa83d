"""Statues: a human figure carved in one material (marble, bronze, granite) standing on a stone pedestal."""

from __future__ import annotations

from canvasdata.content.objects._figure import Palette, draw_figure
from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR

MATERIALS = [((0.92, 0.91, 0.88), 0.15), ((0.35, 0.5, 0.42), 0.35), ((0.55, 0.4, 0.22), 0.45),
             ((0.55, 0.55, 0.55), 0.1), ((0.75, 0.7, 0.6), 0.1)]


@register_object("Statues", backgrounds=OUTDOOR + ("indoor",))
def draw(c, rng, scene) -> None:
    s = float(rng.uniform(0.5, 0.62))
    base_y = float(min(0.97, scene.ground + rng.uniform(0.12, 0.3)))
    x = float(rng.uniform(0.35, 0.65))
    stone = jitter(rng, pick(rng, [(0.7, 0.68, 0.64), (0.55, 0.52, 0.5), (0.8, 0.76, 0.68)]))
    ped_h = float(rng.uniform(0.18, 0.3)) * s
    c.shadow(c.box(x + 0.03, base_y, 0.4 * s, 0.04), 0.03, 0.3)
    c.fill(c.box(x, base_y - ped_h / 2, 0.36 * s, ped_h), stone, bump=0.03, texture=1 + 0.06 * c.noise(30, 2))
    c.fill(c.box(x, base_y - ped_h, 0.42 * s, 0.03 * s), lighter(stone, 0.15), bump=0.01)
    col, gloss = pick(rng, MATERIALS)
    col = jitter(rng, col, 0.03)
    fr = Frame(c, x, base_y - ped_h - 0.015 * s, s * 0.85, 1 if rng.random() < 0.5 else -1)
    pal = Palette(skin=col, hair=darker(col, 0.92), top=darker(col, 0.96), bottom=darker(col, 0.94),
                  shoes=darker(col, 0.9))
    draw_figure(fr, rng, pal, eyes=False, gloss=gloss)
