"""Trees: a tapering trunk and branches under a leafy crown (broadleaf, autumn, blossom) or a tiered conifer."""

from __future__ import annotations

from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR

CROWNS = [(0.2, 0.48, 0.18), (0.35, 0.55, 0.2), (0.85, 0.45, 0.1), (0.75, 0.2, 0.1), (0.95, 0.75, 0.8),
          (0.85, 0.7, 0.2)]


@register_object("Trees", backgrounds=OUTDOOR)
def draw(c, rng, scene) -> None:
    n = int(rng.integers(1, 4))
    for i in range(n):
        s = float(rng.uniform(0.5, 0.7)) * (1.0 if i == 0 else 0.7)
        fr = Frame(c, float(rng.uniform(0.2, 0.8)), float(min(0.97, scene.ground + rng.uniform(0.05, 0.3))), s)
        bark = jitter(rng, (0.35, 0.24, 0.15))
        fr.ground_shadow(0.35)
        if rng.random() < 0.3:  # conifer
            fr.c.fill(fr.capsule(0, 0, 0, -0.3, 0.04, 0.03), bark)
            green = jitter(rng, (0.12, 0.35, 0.18))
            for k in range(4):
                y = -0.25 - k * 0.17
                w = 0.32 - k * 0.06
                fr.c.fill(fr.polygon([(-w, y), (w, y), (0, y - 0.3)]), darker(green, 0.85 + 0.05 * k), bump=0.04)
            continue
        fr.c.fill(fr.capsule(0, 0, 0, -0.55, 0.06, 0.035), bark, bump=0.03)
        for side in (-1, 1):
            fr.c.fill(fr.capsule(0, -0.4, side * 0.2, -0.62, 0.025, 0.012), bark)
        crown = jitter(rng, pick(rng, CROWNS))
        tex = 1 + 0.18 * c.noise(16, 3)
        blobs = [fr.circle(rng.uniform(-0.25, 0.25), rng.uniform(-0.85, -0.6), rng.uniform(0.15, 0.22))
                 for _ in range(int(rng.integers(4, 8)))]
        d = fr.union(*blobs, k=0.05)
        fr.c.fill(d, crown, bump=0.12, texture=tex)
        for _ in range(6):
            fr.c.fill(fr.circle(rng.uniform(-0.2, 0.2), rng.uniform(-0.85, -0.65), rng.uniform(0.03, 0.06)),
                      lighter(crown, 0.25), shade=0.3, alpha=0.5)
