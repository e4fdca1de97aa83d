"""Backgrounds shared by every class, and the scene facts objects need (ground line, light, scale).

Backgrounds are drawn from their own random stream, so a scene rendered without its object (the
concept-removed twin) is pixel-identical to the full scene outside the object and its shadow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from canvasdata.content.raster import Canvas, darker, hsv, jitter, lighter

BACKGROUNDS = ("sky", "grass", "forest", "indoor", "street", "night", "beach", "underwater")
LAND = ("sky", "grass", "forest", "indoor", "street", "night", "beach")
OUTDOOR = ("sky", "grass", "forest", "street", "night", "beach")


@dataclass
class Scene:
    """What an object needs to know about the background it stands in."""

    kind: str
    ground: float          # y of the ground line (objects stand on or below it)
    night: bool = False
    underwater: bool = False


def _sky(c: Canvas, rng: np.random.Generator, night: bool, horizon: float) -> None:
    if night:
        top, bottom = jitter(rng, (0.02, 0.03, 0.10)), jitter(rng, (0.10, 0.12, 0.28))
    else:
        hue = rng.uniform(0.55, 0.62)
        top, bottom = hsv(hue, rng.uniform(0.35, 0.6), rng.uniform(0.75, 0.95)), hsv(hue - 0.03, 0.15, 0.97)
        if rng.random() < 0.25:  # golden hour
            bottom = jitter(rng, (0.98, 0.78, 0.55))
    c.img = c.gradient(top, bottom, 0.0, horizon)
    clouds = c.noise(3, 3).clamp(min=0) * (0.15 if night else 0.55)
    c.img = c.img + (1 - c.img) * clouds * (horizon + 0.05 > c.Y).float()
    if night:
        stars = torch.from_numpy((rng.random((160, 160)) > 0.992) * rng.uniform(0.5, 1.0, (160, 160))).float()
        stars = torch.nn.functional.interpolate(stars[None, None].to(c.device), size=(c.size, c.size), mode="bilinear",
                                                align_corners=False)[0, 0]
        c.img = c.img + 1.5 * stars * (horizon > c.Y).float()
        mx, my = rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.22)
        c.fill(c.circle(mx, my, 0.045), (0.95, 0.93, 0.8), shade=0.1)
    elif rng.random() < 0.5:
        sx, sy = rng.uniform(0.1, 0.9), rng.uniform(0.06, 0.25)
        glow = (0.25 - c.dist(sx, sy)).clamp(0, 0.25) * 2
        c.img = c.img + (1 - c.img) * glow * 0.6


def _ground(c: Canvas, rng: np.random.Generator, horizon: float, near: tuple, far: tuple, cells: int = 12) -> None:
    grad = c.gradient(far, near, horizon, 1.0)
    tex = 1 + 0.12 * c.noise(cells, 3)
    d = horizon - c.Y
    cov = c.coverage(d, soft=2.0)
    c.img = c.img * (1 - cov) + (grad * tex).clamp(0, 1) * cov


def _underwater(c: Canvas, rng: np.random.Generator) -> Scene:
    """Deep water with light rays, a sandy floor and weeds."""
    deep, light = jitter(rng, (0.02, 0.18, 0.35)), jitter(rng, (0.20, 0.55, 0.70))
    c.img = c.gradient(light, deep, 0.0, 1.0)
    rays = (c.noise(6, 2) * 0.5 + 0.5).pow(3) * (1 - c.Y) * 0.35
    c.img = (c.img + rays).clamp(0, 1)
    sand = 1 - c.coverage(c.Y - (0.88 + 0.03 * c.noise(4, 2)), soft=2)
    c.img = c.img * (1 - sand) + c.gradient((0.55, 0.5, 0.38), (0.45, 0.4, 0.3), 0.85, 1.0) * sand
    for _ in range(rng.integers(2, 5)):
        x = rng.uniform(0, 1)
        pts = [(x + 0.02 * np.sin(i * 1.3 + x * 9), 1.0 - i * 0.05) for i in range(int(rng.integers(3, 7)))]
        c.fill(c.chain(pts, 0.012, 0.006), jitter(rng, (0.15, 0.45, 0.25)), shade=0.3)
    return Scene("underwater", 0.9, underwater=True)


def _indoor(c: Canvas, rng: np.random.Generator, horizon: float) -> Scene:
    """A wall (with a window, sometimes) over a tiled or wooden floor."""
    wall = hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.35), rng.uniform(0.6, 0.9))
    c.img = c.gradient(lighter(wall, 0.1), darker(wall, 0.85), 0, horizon)
    if rng.random() < 0.6:  # a window
        wx, wy = rng.uniform(0.15, 0.85), rng.uniform(0.12, 0.25)
        c.fill(c.box(wx, wy, 0.22, 0.2, r=0.01), (0.92, 0.9, 0.85), shade=0.2)
        c.fill(c.box(wx, wy, 0.19, 0.17), c.gradient((0.55, 0.75, 0.95), (0.85, 0.92, 0.98), wy - 0.1, wy + 0.1),
               shade=0.0)
    floor = jitter(rng, [(0.55, 0.38, 0.22), (0.6, 0.58, 0.55), (0.45, 0.3, 0.25)][int(rng.integers(3))])
    _ground(c, rng, horizon + 0.08, darker(floor, 0.8), floor, cells=4)
    return Scene("indoor", horizon + 0.08)


def _outdoor(c: Canvas, rng: np.random.Generator, kind: str, horizon: float) -> Scene:
    """Sky over forest, street, beach, night or meadow ground; night scenes get a pool of lamplight."""
    night = kind == "night"
    _sky(c, rng, night, horizon)
    if kind == "forest":
        for layer in range(2):
            for _ in range(9):
                x = rng.uniform(-0.05, 1.05)
                h = rng.uniform(0.15, 0.3) * (0.7 + 0.3 * layer)
                col = jitter(rng, (0.12, 0.3 + 0.1 * layer, 0.15))
                c.fill(c.polygon([(x - 0.07, horizon + 0.01), (x + 0.07, horizon + 0.01), (x, horizon - h)]),
                       darker(col, 0.8 + 0.2 * layer), shade=0.3)
        _ground(c, rng, horizon, (0.25, 0.42, 0.18), (0.18, 0.32, 0.14))
    elif kind == "street":
        for _ in range(7):
            x, w = rng.uniform(-0.05, 1.0), rng.uniform(0.1, 0.22)
            h = rng.uniform(0.15, 0.35)
            col = hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.25), rng.uniform(0.45, 0.8))
            c.fill(c.box(x, horizon - h / 2, w, h), col, shade=0.2)
        _ground(c, rng, horizon, (0.38, 0.38, 0.4), (0.3, 0.3, 0.32), cells=20)
        c.fill(c.box(0.5, horizon + (1 - horizon) * 0.55, 1.2, 0.012), (0.9, 0.9, 0.8), shade=0.0, alpha=0.7)
    elif kind == "beach":
        sea = c.coverage(horizon - c.Y, soft=2)
        c.img = c.img * (1 - sea) + c.gradient((0.15, 0.4, 0.6), (0.3, 0.6, 0.7), horizon, horizon + 0.06) * sea
        _ground(c, rng, horizon + 0.06, (0.92, 0.84, 0.62), (0.82, 0.74, 0.55), cells=24)
        horizon += 0.06
    elif night:
        _ground(c, rng, horizon, (0.08, 0.12, 0.08), (0.05, 0.07, 0.1))
    if night:  # a pool of lamplight where objects stand, so they read against the dark
        glow = (-(c.dist(float(rng.uniform(0.4, 0.6)), horizon + 0.05) / 0.32).pow(2)).exp()
        lamp = torch.as_tensor(jitter(rng, (0.75, 0.65, 0.45)), device=c.device).view(3, 1, 1)
        c.img = c.img + (1 - c.img) * glow * lamp
    elif kind in ("sky", "grass"):  # a meadow under the sky (forest, street and beach keep their own ground)
        hills = horizon - 0.04 * (1 + c.noise(2, 1))
        cov = c.coverage(hills - c.Y, soft=2)
        c.img = c.img * (1 - cov) + torch.as_tensor(jitter(rng, (0.35, 0.55, 0.3)), device=c.device).view(3, 1, 1) * cov
        _ground(c, rng, horizon, jitter(rng, (0.3, 0.55, 0.2)), jitter(rng, (0.45, 0.62, 0.3)))
    return Scene(kind, horizon, night=night)


def draw_background(c: Canvas, rng: np.random.Generator, kind: str) -> Scene:
    """Paint a background of `kind` and return the scene facts."""
    horizon = float(rng.uniform(0.45, 0.62))
    if kind == "underwater":
        return _underwater(c, rng)
    if kind == "indoor":
        return _indoor(c, rng, horizon)
    return _outdoor(c, rng, kind, horizon)


def finish(c: Canvas, rng: np.random.Generator, scene: Scene) -> None:
    """Photo-like finish: vignette, a slight tone curve and sensor grain (own random stream)."""
    r = torch.hypot(c.X - 0.5, c.Y - 0.5)
    c.img = c.img * (1 - 0.25 * (r / 0.71).pow(2))
    if scene.night:
        c.img = c.img * torch.tensor([0.8, 0.85, 1.05], device=c.device).view(3, 1, 1)
    grain = torch.from_numpy(rng.normal(0, 0.018, (1, 256, 256)).astype(np.float32)).to(c.device)
    grain = torch.nn.functional.interpolate(grain[None], size=(c.size, c.size), mode="bilinear", align_corners=False)[0]
    c.img = (c.img + grain).clamp(0, 1)

