"""Jellyfish: a translucent glowing bell with frilled oral arms and long trailing tentacles, under water."""

from __future__ import annotations

import math

import torch

from canvasdata.content.objects._kit import Frame, pick
from canvasdata.content.raster import hsv, lighter
from canvasdata.content.registry import register_object

HUES = (0.9, 0.8, 0.6, 0.08, 0.95)


@register_object("Jellyfish", backgrounds=("underwater",))
def draw(c, rng, scene) -> None:
    n = int(rng.integers(1, 3))
    for i in range(n):
        s = float(rng.uniform(0.42, 0.6)) * (1.0 if i == 0 else 0.6)
        fr = Frame(c, float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.2, 0.4)), s)
        col = hsv(float(pick(rng, HUES)) + rng.uniform(-0.03, 0.03), rng.uniform(0.35, 0.6), rng.uniform(0.8, 1.0))
        phase = rng.uniform(0, 6.28)
        for k in range(7):
            x0 = -0.2 + 0.4 * k / 6
            pts = [(x0 + 0.05 * math.sin(phase + j * 0.9 + k), 0.05 + j * 0.12) for j in range(8)]
            fr.c.fill(fr.chain(pts, 0.008, 0.003), lighter(col, 0.3), shade=0.0, alpha=0.7)
        for k in range(3):
            x0 = -0.08 + 0.08 * k
            pts = [(x0 + 0.06 * math.sin(phase + j * 1.3 + 2 * k), 0.05 + j * 0.09) for j in range(6)]
            fr.c.fill(fr.chain(pts, 0.035, 0.012), col, shade=0.4, alpha=0.8)
        bell = torch.maximum(fr.ellipse(0.0, 0.05, 0.3, 0.3), fr.box(0.0, -0.2, 0.8, 0.5) * 1.0)
        bell = torch.minimum(bell, fr.ellipse(0.0, 0.05, 0.3, 0.05))
        glow = (0.25 - c.dist(*fr.p(0.0, -0.05)) / s).clamp(0, 0.25) * 1.6
        c.img = c.img + (1 - c.img) * glow * torch.as_tensor(col, device=c.device).view(3, 1, 1) * 0.5
        fr.c.fill(bell, col, bump=0.1, alpha=0.8, gloss=0.3)
        fr.c.fill(fr.ellipse(-0.08, -0.1, 0.09, 0.05, angle=-0.4), lighter(col, 0.7), shade=0.0, alpha=0.6)
