"""Painting operators: smoothing (Kuwahara), lines (XDoG, outlines, hatching), brush strokes along the
image's structure, impasto relief, watercolour, warps, paper and canvas grain."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from canvasdata.styles.base import (
    blend,
    box_blur,
    box_mean,
    coords,
    directional_blur,
    field,
    gaussian,
    luma,
    orientation,
    px,
    sobel,
    warp,
    white,
)
from canvasdata.styles.base import color as rgb
from canvasdata.styles.registry import C_, F_, S_, operator


@operator("blur", sigma=F_(0.004, 0, 0.05))
def blur(x, rngs, sigma):
    """Gaussian blur (sigma as a fraction of the image side)."""
    return gaussian(x, px(x, sigma))


@operator("kuwahara", radius=F_(0.01, 0.002, 0.04))
def kuwahara(x, rngs, radius):
    """Edge-preserving smoothing: each pixel takes the mean of its least-varied quadrant (flat painted patches)."""
    r = max(1, int(round(px(x, radius))))
    k = r + 1
    mean = box_mean(F.pad(x, (r, r, r, r), mode="reflect"), k)
    sq = box_mean(F.pad(x * x, (r, r, r, r), mode="reflect"), k)
    var = (sq - mean * mean).sum(1, keepdim=True)
    h, w = x.shape[-2:]
    # Keep the first quadrant of least variance (a running minimum: an argmin across a stacked
    # leading dimension is far slower on the CPU, with the same choice).
    out, best = mean[..., :h, :w], var[..., :h, :w]
    for a, b in [(0, r), (r, 0), (r, r)]:
        v = var[..., a:a + h, b:b + w]
        less = v < best
        out = torch.where(less, mean[..., a:a + h, b:b + w], out)
        best = torch.where(less, v, best)
    return out


@operator("sharpen", amount=F_(0.5, 0, 3), sigma=F_(0.003, 0.001, 0.02))
def sharpen(x, rngs, amount, sigma):
    """Unsharp mask."""
    return (x + amount * (x - gaussian(x, px(x, sigma)))).clamp(0, 1)


@operator("pixelate", block=F_(0.02, 0.004, 0.1))
def pixelate(x, rngs, block):
    """Blocky pixels of a fixed fraction of the image side."""
    h, w = x.shape[-2:]
    n = max(2, int(round(1 / block)))
    small = F.interpolate(x, size=(n, n), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


def _xdog(x, sigma, k, tau, phi, eps):
    g = autolevel(luma(x))
    s = max(0.8, px(x, sigma))
    d = gaussian(g, s) - tau * gaussian(g, s * k)
    return torch.where(d >= eps, torch.ones_like(d), 1 + torch.tanh(phi * (d - eps)))


@operator("xdog", sigma=F_(0.0015, 0.0005, 0.01), k=F_(1.6, 1.1, 4), tau=F_(0.98, 0.8, 1.0), phi=F_(40.0, 1, 200),
          eps=F_(0.0, -0.2, 0.2), mode=S_("multiply", "lines", "paper"), ink=C_([0.05, 0.05, 0.05]),
          paper=C_([0.97, 0.95, 0.9]), strength=F_(1.0, 0, 1))
def xdog(x, rngs, sigma, k, tau, phi, eps, mode, ink, paper, strength):
    """Extended difference-of-Gaussians lines: over the image, or ink on paper."""
    e = _xdog(x, sigma, k, tau, phi, eps).clamp(0, 1)
    if mode == "multiply":
        y = x * blend(rgb(ink, x), torch.ones_like(x), e)
    else:
        base = rgb(paper, x).expand_as(x) if mode == "paper" else x
        y = blend(rgb(ink, x).expand_as(x), base, e)
    return blend(x, y, strength)


def edges(x: torch.Tensor, threshold: float, sigma: float = 0.003) -> torch.Tensor:
    """Soft edge map [B,1,H,W]: where luminance steps by more than `threshold` (resolution-independent)."""
    s = max(1.0, px(x, sigma))
    gx, gy = sobel(gaussian(luma(x), s))
    step = torch.sqrt(gx * gx + gy * gy) * 8 * s * 1.25
    return ((step - threshold) / max(threshold, 1e-3) * 2).clamp(0, 1)


@operator("outline", width=F_(0.003, 0.001, 0.02), threshold=F_(0.3, 0.02, 0.8), ink=C_([0.02, 0.02, 0.02]),
          strength=F_(1.0, 0, 1))
def outline(x, rngs, width, threshold, ink, strength):
    """Bold contour lines where the image has strong edges (comic and cartoon inking)."""
    e = edges(x, threshold, 0.004)
    r = int(round(px(x, width) / 2))
    if r >= 1:
        e = F.max_pool2d(e, 2 * r + 1, stride=1, padding=r)
    return blend(x, rgb(ink, x).expand_as(x), gaussian(e, 0.7) * strength)


def autolevel(g: torch.Tensor) -> torch.Tensor:
    """Stretch a luminance map to its 2nd..98th percentiles (dark night scenes still read)."""
    flat = g.flatten(1)
    lo = flat.quantile(0.02, dim=1).view(-1, 1, 1, 1)
    hi = flat.quantile(0.98, dim=1).view(-1, 1, 1, 1)
    return ((g - lo) / (hi - lo).clamp(min=0.05)).clamp(0, 1)


@operator("hatching", spacing=F_(0.016, 0.008, 0.05), angle=F_(45.0, -90, 90), layers=F_(3, 1, 4),
          ink=C_([0.1, 0.1, 0.12]), paper=C_([0.97, 0.96, 0.93]), width=F_(0.35, 0.1, 0.9), keep=F_(0.0, 0, 1),
          wobble=F_(0.3, 0, 2))
def hatching(x, rngs, spacing, angle, layers, ink, paper, width, keep, wobble):
    """Pen hatching: parallel lines whose layers cross where the image is darker."""
    X, Y = coords(x)
    g = autolevel(luma(gaussian(x, px(x, 0.003))))
    wob = field(rngs, (x.shape[0], 1, *x.shape[-2:]), 6, 2, x.device) * spacing * wobble
    dark = torch.zeros_like(g)
    n = int(round(layers))
    for i in range(n):
        a = math.radians(angle + i * 180 / (n + 1) * (1 if i % 2 == 0 else -1) + i * 15)
        u = (X * math.cos(a) + Y * math.sin(a)) / spacing + wob[:, :1] / spacing
        line = (torch.cos(u * 2 * math.pi) > 1 - 2 * width).float()
        on = (g < 1 - (i + 1) / (n + 1)).float()
        dark = torch.maximum(dark, line * on)
    dark = gaussian(dark, 0.6)
    base = blend(rgb(paper, x).expand_as(x), x, keep)
    return blend(base, rgb(ink, x).expand_as(x), dark * 0.9)


@operator("strokes", length=F_(0.03, 0.005, 0.12), texture=F_(0.25, 0, 1), scale=F_(0.006, 0.002, 0.03),
          flow=S_("image", "swirl", "fixed"), angle=F_(0.0, -90, 90), swirl=F_(3.0, 1, 12))
def strokes(x, rngs, length, texture, scale, flow, angle, swirl):
    """Brush strokes: paint smeared along a flow (the image's structure, swirls, or one direction),
    with bristle streaks from line-integral-convolved noise."""
    b, _, h, w = x.shape
    if flow == "image":
        tx, ty = orientation(x, 0.012)
    elif flow == "swirl":
        f = field(rngs, (b, 1, h, w), int(swirl), 2, x.device) * math.pi * 2
        tx, ty = torch.cos(f), torch.sin(f)
    else:
        a = math.radians(angle)
        tx = torch.full((b, 1, h, w), math.cos(a), device=x.device)
        ty = torch.full((b, 1, h, w), math.sin(a), device=x.device)
    y = directional_blur(x, tx, ty, length, steps=7)
    if texture > 0:
        grain = white(rngs, (b, 1, h, w), res=max(64, int(1 / scale)), device=x.device)
        streak = directional_blur(grain, tx, ty, length * 1.2, steps=9)
        streak = (streak - streak.mean((2, 3), keepdim=True)) * 4
        y = (y * (1 + texture * streak)).clamp(0, 1)
    return y


@operator("impasto", relief=F_(0.5, 0, 2), scale=F_(0.01, 0.003, 0.05), light=F_(135.0, 0, 360))
def impasto(x, rngs, relief, scale, light):
    """Thick paint relief: emboss lighting from a height field of the paint and its strokes."""
    b, _, h, w = x.shape
    tx, ty = orientation(x, 0.01)
    noise = white(rngs, (b, 1, h, w), res=max(64, int(1 / scale)), device=x.device)
    height = directional_blur(noise, tx, ty, scale * 4, steps=7) + 0.5 * luma(x)
    gx, gy = sobel(gaussian(height, 1.0))
    a = math.radians(light)
    shade = (gx * math.cos(a) + gy * math.sin(a)) * relief * 12
    return (x * (1 + shade) + 0.15 * shade.clamp(min=0)).clamp(0, 1)


@operator("watercolor", blur=F_(0.006, 0, 0.03), pooling=F_(0.6, 0, 2), granulation=F_(0.25, 0, 1),
          bleed=F_(0.01, 0, 0.04), wash=F_(0.2, 0, 1), paper=C_([0.98, 0.97, 0.94]))
def watercolor(x, rngs, blur, pooling, granulation, bleed, wash, paper):
    """Watercolour: soft washes that bleed, pigment pooling at edges, granulation and paper showing through."""
    b, _, h, w = x.shape
    dx = field(rngs, (b, 1, h, w), 8, 2, x.device) * bleed
    dy = field(rngs, (b, 1, h, w), 8, 2, x.device) * bleed
    y = warp(gaussian(x, px(x, blur)), dx, dy)
    soft = gaussian(y, px(x, 0.01))
    edge = (luma(soft) - luma(y)).clamp(min=0) + (luma(y) - luma(soft)).abs() * 0.5
    y = y * (1 - pooling * edge * 3)
    gran = field(rngs, (b, 1, h, w), 64, 2, x.device)
    y = y * (1 + granulation * 0.15 * gran)
    y = blend(y, rgb(paper, x), wash * (luma(y) > 0.6).float() * 0.5 + wash * 0.3)
    return y.clamp(0, 1)


@operator("wave_warp", amplitude=F_(0.02, 0, 0.1), cells=F_(3, 1, 16))
def wave_warp(x, rngs, amplitude, cells):
    """Liquid distortion by a smooth random displacement field."""
    b, _, h, w = x.shape
    n = int(round(cells))
    dx = field(rngs, (b, 1, h, w), n, 2, x.device) * amplitude
    dy = field(rngs, (b, 1, h, w), n, 2, x.device) * amplitude
    return warp(x, dx, dy)


@operator("swirl_warp", strength=F_(2.0, -8, 8), radius=F_(0.5, 0.1, 1.0))
def swirl_warp(x, rngs, strength, radius):
    """Twist the image around a point near the centre (drawn per image)."""
    b, _, h, w = x.shape
    X, Y = coords(x)
    out = []
    for i, rng in enumerate(rngs):
        cx, cy = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65)
        dx, dy = X - cx, Y - cy
        r = torch.sqrt(dx * dx + dy * dy)
        a = strength * (1 - (r / radius).clamp(0, 1)) ** 2
        sx = cx + dx * torch.cos(a) - dy * torch.sin(a) - X
        sy = cy + dx * torch.sin(a) + dy * torch.cos(a) - Y
        out.append(warp(x[i:i + 1], sx[None, None], sy[None, None]))
    return torch.cat(out)


@operator("paper", strength=F_(0.08, 0, 0.5), fibers=F_(0.5, 0, 1), color=C_([0.96, 0.94, 0.88]), tint=F_(0.0, 0, 1))
def paper(x, rngs, strength, fibers, color, tint):
    """Paper grain: fibrous noise and an optional paper tone."""
    b, _, h, w = x.shape
    n = field(rngs, (b, 1, h, w), 96, 2, x.device) * (1 - fibers) + field(rngs, (b, 1, h, w), 24, 1, x.device) * fibers
    y = blend(x, x * rgb(color, x) / 0.96, tint)
    return (y * (1 + strength * n)).clamp(0, 1)


@operator("canvas", strength=F_(0.08, 0, 0.4), weave=F_(0.006, 0.002, 0.02))
def canvas(x, rngs, strength, weave):
    """Woven canvas texture: two crossing thread patterns."""
    X, Y = coords(x)
    t = torch.sin(X / weave * math.pi) * torch.sin(Y / weave * math.pi)
    jitter = field(rngs, (x.shape[0], 1, *x.shape[-2:]), 48, 1, x.device)
    return (x * (1 + strength * (0.6 * t + 0.4 * jitter))).clamp(0, 1)


@operator("grain", amount=F_(0.03, 0, 0.3), mono=S_("yes", "no"))
def grain(x, rngs, amount, mono):
    """Film grain."""
    c = 1 if mono == "yes" else 3
    n = white(rngs, (x.shape[0], c, *x.shape[-2:]), 384, x.device) - 0.5
    return (x + amount * 2 * n).clamp(0, 1)


@operator("emboss", strength=F_(0.5, 0, 3), light=F_(135.0, 0, 360), gray=F_(0.0, 0, 1))
def emboss(x, rngs, strength, light, gray):
    """Relief from the image itself (stone carving, metal plate)."""
    gx, gy = sobel(gaussian(luma(x), px(x, 0.002)))
    a = math.radians(light)
    shade = (gx * math.cos(a) + gy * math.sin(a)) * strength * 10
    base = blend(x, luma(x).expand_as(x), gray)
    return (base * (1 + shade)).clamp(0, 1)


@operator("glow", radius=F_(0.02, 0.002, 0.1), strength=F_(0.5, 0, 2), threshold=F_(0.6, 0, 1))
def glow(x, rngs, radius, strength, threshold):
    """Bloom: bright parts bleed light around them."""
    bright = (x - threshold).clamp(min=0) / max(1e-3, 1 - threshold)
    return (x + strength * gaussian(bright, px(x, radius))).clamp(0, 1)


@operator("smudge", radius=F_(0.01, 0.002, 0.05))
def smudge(x, rngs, radius):
    """Soft box smudge (chalk and pastel rubbing)."""
    return box_blur(x, max(1, int(round(px(x, radius)))))
