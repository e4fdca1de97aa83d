"""People: standing figures with a head, hair, torso, arms and legs, in varied skin tones and clothes."""

from __future__ import annotations

from canvasdata.content.objects._figure import Palette, draw_figure
from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import hsv, jitter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

SKINS = [(0.96, 0.8, 0.68), (0.87, 0.66, 0.5), (0.7, 0.5, 0.35), (0.5, 0.34, 0.22), (0.35, 0.24, 0.17)]
HAIR = [(0.1, 0.08, 0.06), (0.35, 0.22, 0.12), (0.8, 0.65, 0.35), (0.55, 0.25, 0.1), (0.75, 0.75, 0.75)]


@register_object("Human", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    n = 1 if rng.random() < 0.7 else 2
    for i in range(n):
        fr = Frame(c, float(rng.uniform(0.3, 0.7)) if n == 1 else 0.3 + 0.4 * i + float(rng.uniform(-0.05, 0.05)),
                   float(min(0.97, scene.ground + rng.uniform(0.15, 0.35))), float(rng.uniform(0.55, 0.72)),
                   1 if rng.random() < 0.5 else -1)
        fr.ground_shadow(0.2)
        pal = Palette(skin=jitter(rng, pick(rng, SKINS), 0.04), hair=jitter(rng, pick(rng, HAIR)),
                      top=hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.8), rng.uniform(0.35, 0.9)),
                      bottom=hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.6), rng.uniform(0.15, 0.6)),
                      shoes=jitter(rng, (0.15, 0.12, 0.1)))
        draw_figure(fr, rng, pal)
