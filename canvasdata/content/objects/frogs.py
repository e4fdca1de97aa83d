"""Frogs: a squat body, big bulging eyes on top of the head, a wide mouth, folded hind legs."""

from __future__ import annotations

from canvasdata.content.objects._kit import eye, pick, place
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

SKINS = [(0.3, 0.6, 0.2), (0.45, 0.5, 0.2), (0.5, 0.38, 0.22), (0.2, 0.55, 0.35), (0.75, 0.25, 0.15)]


@register_object("Frogs", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    fr = place(c, rng, scene, (0.62, 0.8), height=0.6)
    skin = jitter(rng, pick(rng, SKINS))
    belly = lighter(skin, 0.55)
    fr.ground_shadow(0.45)
    if rng.random() < 0.5:  # a lily pad or a stone to sit on
        fr.c.fill(fr.ellipse(0.0, 0.0, 0.55, 0.09), pick(rng, [(0.25, 0.5, 0.2), (0.5, 0.5, 0.5)]), bump=0.03)
    fr.c.fill(fr.ellipse(-0.22, -0.12, 0.2, 0.11, angle=-0.3), darker(skin, 0.85), bump=0.06)
    fr.c.fill(fr.ellipse(-0.12, -0.02, 0.22, 0.045), darker(skin, 0.8))
    fr.c.fill(fr.union(fr.ellipse(0.0, -0.2, 0.32, 0.17, angle=-0.2), fr.ellipse(0.25, -0.3, 0.17, 0.12), k=0.06),
              skin, bump=0.1)
    fr.c.fill(fr.ellipse(0.08, -0.1, 0.2, 0.07), belly, bump=0.04)
    fr.c.fill(fr.capsule(0.22, -0.16, 0.27, -0.02, 0.035), skin)
    fr.c.fill(fr.ellipse(0.31, -0.01, 0.06, 0.02), skin)
    for _ in range(int(rng.integers(0, 6))):
        fr.c.fill(fr.circle(rng.uniform(-0.2, 0.15), rng.uniform(-0.32, -0.2), rng.uniform(0.015, 0.035)),
                  darker(skin, 0.55), shade=0.2)
    fr.c.fill(fr.circle(0.24, -0.43, 0.075), skin, bump=0.05)
    eye(fr, 0.26, -0.44, 0.05, iris=pick(rng, [(0.7, 0.55, 0.1), (0.8, 0.2, 0.1), (0.2, 0.15, 0.1)]))
    fr.c.fill(fr.capsule(0.22, -0.26, 0.41, -0.28, 0.007), darker(skin, 0.4), shade=0.0)
