"""Horses: long legs with hooves, a long arched neck with a mane, a long head, a hanging tail."""

from __future__ import annotations

from canvasdata.content.objects._kit import eye, pick, place
from canvasdata.content.raster import darker, jitter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR

COATS = [(0.45, 0.25, 0.12), (0.62, 0.33, 0.15), (0.1, 0.08, 0.08), (0.88, 0.87, 0.84), (0.82, 0.65, 0.38),
         (0.55, 0.5, 0.48)]


@register_object("Horses", backgrounds=OUTDOOR)
def draw(c, rng, scene) -> None:
    fr = place(c, rng, scene, (0.42, 0.52), height=1.4)
    coat = jitter(rng, pick(rng, COATS))
    mane = darker(coat, 0.35) if rng.random() < 0.7 else (0.92, 0.9, 0.85)
    stride = rng.uniform(-0.12, 0.12)
    fr.ground_shadow(0.55)
    fr.c.fill(fr.chain([(-0.45, -0.72), (-0.55, -0.55), (-0.58, -0.32)], 0.04, 0.07), mane)
    for i, (x, shade) in enumerate(((-0.32, 0.75), (0.3, 0.75), (-0.24, 1.0), (0.38, 1.0))):
        sx = stride if i % 2 == 0 else -stride
        fr.c.fill(fr.chain([(x, -0.62), (x + sx * 0.5, -0.3), (x + sx, -0.05)], 0.055, 0.03), darker(coat, shade))
        fr.c.fill(fr.box(x + sx, -0.025, 0.07, 0.05, r=0.01), (0.15, 0.12, 0.1))
    fr.c.fill(fr.ellipse(0.0, -0.7, 0.46, 0.17), coat, bump=0.1)
    fr.c.fill(fr.capsule(0.32, -0.75, 0.55, -1.1, 0.11, 0.07), coat, bump=0.06)
    fr.c.fill(fr.chain([(0.27, -0.82), (0.42, -1.05), (0.52, -1.17)], 0.035), mane, shade=0.4)
    fr.c.fill(fr.ellipse(0.7, -1.05, 0.19, 0.075, angle=0.55), coat, bump=0.05)
    fr.c.fill(fr.polygon([(0.5, -1.15), (0.56, -1.15), (0.52, -1.27)]), coat)
    fr.c.fill(fr.ellipse(0.82, -0.93, 0.025, 0.018), (0.05, 0.05, 0.05), shade=0.0)
    if rng.random() < 0.4:
        fr.c.fill(fr.ellipse(0.68, -1.07, 0.08, 0.018, angle=0.55), (0.95, 0.95, 0.95), shade=0.2)
    eye(fr, 0.6, -1.1, 0.022)
