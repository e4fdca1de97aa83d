"""Fishes: a streamlined body with a forked tail fin, dorsal and pectoral fins, an eye and stripes, under water."""

from __future__ import annotations

import torch

from canvasdata.content.objects._kit import Frame, eye, pick
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object

# (body, fins, stripes or None)
KINDS = [((0.95, 0.45, 0.1), (0.95, 0.45, 0.1), (0.97, 0.97, 0.95)),
         ((0.15, 0.35, 0.85), (0.95, 0.85, 0.15), None),
         ((0.95, 0.85, 0.15), (0.9, 0.75, 0.1), None),
         ((0.7, 0.75, 0.8), (0.55, 0.6, 0.7), (0.4, 0.45, 0.55)),
         ((0.85, 0.3, 0.35), (0.9, 0.5, 0.5), None),
         ((0.3, 0.55, 0.4), (0.25, 0.45, 0.35), (0.15, 0.3, 0.2))]


@register_object("Fishes", backgrounds=("underwater",))
def draw(c, rng, scene) -> None:
    n = int(rng.integers(1, 4))
    body, fins, stripes = (None if col is None else jitter(rng, col) for col in pick(rng, KINDS))
    for i in range(n):
        s = float(rng.uniform(0.45, 0.62)) * (1.0 if i == 0 else 0.6)
        fr = Frame(c, float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.3, 0.7)), s, 1 if rng.random() < 0.5 else -1)
        fr.c.fill(fr.polygon([(-0.35, 0.0), (-0.62, -0.2), (-0.55, 0.0), (-0.62, 0.2)]), fins, bump=0.02)
        fr.c.fill(fr.polygon([(-0.15, -0.13), (0.12, -0.15), (-0.1, -0.3)]), fins)
        fr.c.fill(fr.polygon([(-0.05, 0.13), (0.1, 0.14), (-0.05, 0.24)]), darker(fins, 0.9))
        body_d = fr.ellipse(0.0, 0.0, 0.4, 0.17)
        fr.c.fill(body_d, body, bump=0.09, gloss=0.25)
        fr.c.fill(fr.ellipse(0.05, 0.07, 0.3, 0.07), lighter(body, 0.35), shade=0.3, alpha=0.7)
        if stripes is not None:
            for x in (-0.18, 0.05, 0.22):
                fr.c.fill(torch.maximum(fr.ellipse(x, 0.0, 0.035, 0.2), body_d), stripes, shade=0.3, alpha=0.9)
        fr.c.fill(fr.capsule(0.27, -0.12, 0.27, 0.12, 0.006), darker(body, 0.6), shade=0.0)
        fr.c.fill(fr.ellipse(0.12, 0.05, 0.07, 0.03, angle=0.5), darker(fins, 0.9))
        eye(fr, 0.3, -0.03, 0.035)
        fr.c.fill(fr.capsule(0.36, 0.06, 0.4, 0.05, 0.006), darker(body, 0.5), shade=0.0)
