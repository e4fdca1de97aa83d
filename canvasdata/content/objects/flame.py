"""Flames: layered tongues of fire (red rim, orange body, yellow-white core) with a warm glow,
on a campfire of logs, a candle or a torch."""

from __future__ import annotations

import torch

from canvasdata.content.objects._kit import place
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND


def _tongues(fr, rng, width: float, height: float) -> list[torch.Tensor]:
    out = []
    for _ in range(int(rng.integers(3, 6))):
        x = rng.uniform(-width * 0.5, width * 0.5)
        h = height * rng.uniform(0.6, 1.0)
        w = width * rng.uniform(0.35, 0.6)
        lean = rng.uniform(-0.15, 0.15) * height
        out.append(fr.union(fr.circle(x, -w * 0.9, w), fr.polygon([(x - w, -w * 0.9), (x + w, -w * 0.9),
                                                                   (x + lean, -h)]), k=0.02))
    return out


@register_object("Flame", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    kind = int(rng.integers(3))
    if kind == 0:  # campfire
        fr = place(c, rng, scene, (0.4, 0.6))
        fr.ground_shadow(0.45, 0.3)
        for a in (-0.35, 0.35, 0.0):
            fr.c.fill(fr.box(0.0, -0.05, 0.7, 0.08, angle=a, r=0.035), (0.35, 0.22, 0.12), bump=0.03)
        base, width, height = -0.05, 0.4, 0.75
    elif kind == 1:  # candle
        fr = place(c, rng, scene, (0.45, 0.6))
        fr.c.fill(fr.box(0.0, -0.2, 0.16, 0.4, r=0.02), (0.95, 0.92, 0.85), bump=0.05)
        fr.c.fill(fr.capsule(0.0, -0.4, 0.0, -0.45, 0.006), (0.1, 0.1, 0.1), shade=0.0)
        base, width, height = -0.42, 0.09, 0.3
    else:  # torch on a pole
        fr = place(c, rng, scene, (0.5, 0.65))
        fr.c.fill(fr.capsule(0.0, 0.0, 0.0, -0.55, 0.03), (0.3, 0.2, 0.12))
        fr.c.fill(fr.polygon([(-0.1, -0.55), (0.1, -0.55), (0.05, -0.65), (-0.05, -0.65)]), (0.25, 0.25, 0.25))
        fr.c.fill(fr.polygon([(-0.1, -0.55), (0.1, -0.55), (0.06, -0.5), (-0.06, -0.5)]), (0.2, 0.2, 0.2))
        base, width, height = -0.55, 0.22, 0.55
    fx, fy = fr.p(0.0, base - height * 0.35)
    glow = (1 - c.dist(fx, fy) / (height * fr.s * 1.6)).clamp(0, 1).pow(2)
    c.img = c.img + (1 - c.img) * glow * torch.tensor([1.0, 0.55, 0.15], device=c.device).view(3, 1, 1) * 0.6
    fr.y += base * fr.s
    for scale, col in ((1.0, (0.85, 0.15, 0.05)), (0.75, (0.98, 0.5, 0.05)), (0.5, (1.0, 0.85, 0.3)),
                       (0.28, (1.0, 0.98, 0.85))):
        sub = type(fr)(c, fr.x, fr.y, fr.s * scale, fr.f)
        for d in _tongues(sub, rng, width, height):
            c.fill(d, col, shade=0.15, alpha=0.92)
