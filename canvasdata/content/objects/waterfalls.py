"""Waterfalls: a curtain of white water falling over a rocky cliff into a foaming pool, with mist."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from canvasdata.content.raster import darker, jitter
from canvasdata.content.registry import register_object


@register_object("Waterfalls", backgrounds=("sky", "forest", "night", "grass"))
def draw(c, rng, scene) -> None:
    top = float(rng.uniform(0.15, 0.35))
    x0 = float(rng.uniform(0.35, 0.55))
    w = float(rng.uniform(0.12, 0.3))
    pool = float(rng.uniform(0.72, 0.82))
    rock = jitter(rng, (0.38, 0.35, 0.32))
    tex = 1 + 0.25 * c.noise(10, 3)
    for side in (-1, 1):
        edge = x0 if side < 0 else x0 + w
        outer = 0.5 + side * 0.9
        pts = [(edge, top - 0.02), (edge, 1.0), (outer, 1.0), (outer, top + rng.uniform(-0.1, 0.05))]
        c.fill(c.polygon(pts), darker(rock, 0.9 + 0.1 * side), bump=0.05, texture=tex)
    for _ in range(5):
        c.fill(c.circle(rng.uniform(0, 1), rng.uniform(top, 0.7), rng.uniform(0.03, 0.07)),
               (0.18, 0.4, 0.18), texture=tex, alpha=0.9)
    streak_noise = torch.from_numpy(rng.uniform(0, 1, (1, 1, 6, 64)).astype("float32")).to(c.device)
    streaks = F.interpolate(streak_noise, size=(c.size, c.size), mode="bicubic", align_corners=True)[0, 0]
    fall = c.box(x0 + w / 2, (top + pool) / 2, w, pool - top)
    water = torch.stack([0.75 + 0.25 * streaks, 0.85 + 0.15 * streaks, 0.9 + 0.1 * streaks]).clamp(0, 1)
    c.fill(fall, water, shade=0.3, bump=0.1)
    c.fill(c.box(x0 + w / 2, top, w * 1.05, 0.02, r=0.01), (0.85, 0.92, 0.95), shade=0.2)
    c.fill(c.box(0.5, (pool + 1) / 2 + 0.02, 1.2, 1 - pool + 0.04), jitter(rng, (0.2, 0.42, 0.5)),
           texture=1 + 0.15 * c.noise(12, 2), shade=0.1)
    foam = c.ellipse(x0 + w / 2, pool + 0.02, w * 0.9 + 0.05, 0.05)
    c.fill(foam, (0.93, 0.96, 0.97), bump=0.03, texture=1 + 0.1 * c.noise(24, 2))
    mist = (1 - (c.ellipse(x0 + w / 2, pool - 0.02, w + 0.15, 0.12, margin=0.12) / 0.1).clamp(0, 1)) * 0.35
    c.img = c.img + (1 - c.img) * mist
