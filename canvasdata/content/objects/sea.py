"""The sea: open water to the horizon with rolling waves and white foam crests, sometimes a sail or a rock."""

from __future__ import annotations

import math

import torch

from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object


@register_object("Sea", backgrounds=("sky", "night", "beach", "grass"))
def draw(c, rng, scene) -> None:
    horizon = float(rng.uniform(0.35, 0.5))
    deep = jitter(rng, (0.05, 0.25, 0.45)) if not scene.night else (0.02, 0.06, 0.14)
    near = lighter(deep, 0.25)
    water = c.gradient(darker(deep, 0.8), near, horizon, 1.0)
    swell = c.noise(5, 3)
    water = water * (1 + 0.15 * swell)
    cov = c.coverage(horizon - c.Y, soft=1.0)
    c.img = c.img * (1 - cov) + water.clamp(0, 1) * cov
    c.mask = torch.maximum(c.mask, cov)
    phase = rng.uniform(0, 6.28)
    rows = int(rng.integers(5, 9))
    for k in range(rows):
        t = (k + 1) / (rows + 1)
        y = horizon + (1 - horizon) * t ** 1.3
        amp = 0.006 + 0.03 * t
        freq = 6 + 10 * (1 - t)
        crest = c.Y - (y + amp * torch.sin(c.X * freq * math.pi + phase + k * 1.7))
        band = c.coverage(crest.abs() - (0.002 + 0.01 * t))
        c.img = c.img * (1 - 0.85 * band) + 0.95 * 0.85 * band * (0.75 + 0.25 * (c.noise(20, 1) > 0).float())
    if rng.random() < 0.4:
        x = float(rng.uniform(0.2, 0.8))
        c.fill(c.polygon([(x - 0.05, horizon + 0.01), (x + 0.05, horizon + 0.01), (x + 0.035, horizon + 0.025),
                          (x - 0.035, horizon + 0.025)]), (0.4, 0.25, 0.15), shade=0.2)
        c.fill(c.polygon([(x, horizon - 0.1), (x, horizon + 0.005), (x + 0.05, horizon + 0.005)]), (0.97, 0.97, 0.95))
