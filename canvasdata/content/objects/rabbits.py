"""Rabbits: long upright ears, a round crouching body, a white powder-puff tail and a big hind foot."""

from __future__ import annotations

from canvasdata.content.objects._kit import eye, pick, place
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

COATS = [(0.93, 0.92, 0.9), (0.6, 0.45, 0.32), (0.5, 0.48, 0.46), (0.25, 0.2, 0.18), (0.78, 0.65, 0.5)]


@register_object("Rabbits", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    fr = place(c, rng, scene, (0.58, 0.74), height=0.9)
    coat = jitter(rng, pick(rng, COATS))
    fr.ground_shadow(0.4)
    lean = rng.uniform(-0.25, 0.25)
    fr.c.fill(fr.ellipse(-0.05, -0.05, 0.2, 0.06), darker(coat, 0.85))
    fr.c.fill(fr.ellipse(0.0, -0.3, 0.33, 0.27), coat, bump=0.12)
    fr.c.fill(fr.circle(-0.32, -0.22, 0.08), lighter(coat, 0.8), bump=0.05)
    fr.c.fill(fr.capsule(0.24, -0.2, 0.26, -0.02, 0.04), coat)
    hx, hy = 0.28, -0.58
    for dx, tilt in ((-0.06, -0.15), (0.04, 0.1)):
        ang = tilt + lean
        fr.c.fill(fr.ellipse(hx + dx + 0.12 * ang, hy - 0.27, 0.055, 0.2, angle=ang), coat, bump=0.05)
        fr.c.fill(fr.ellipse(hx + dx + 0.12 * ang, hy - 0.25, 0.028, 0.15, angle=ang), (0.92, 0.68, 0.7), shade=0.2)
    fr.c.fill(fr.circle(hx, hy, 0.14), coat, bump=0.08)
    fr.c.fill(fr.circle(hx + 0.12, hy + 0.04, 0.02), (0.85, 0.5, 0.55), shade=0.0)
    eye(fr, hx + 0.05, hy - 0.02, 0.03)
