"""Colour operators: grading, hue, duotone and gradient maps, palettes and quantisation."""

from __future__ import annotations

import torch

from canvasdata.styles.base import blend, color, hsv_to_rgb, luma, rgb_to_hsv
from canvasdata.styles.registry import C_, CS_, F_, I_, S_, operator


@operator("grade", brightness=F_(0.0, -1, 1), contrast=F_(1.0, 0, 3), saturation=F_(1.0, 0, 3),
          gamma=F_(1.0, 0.2, 5), temperature=F_(0.0, -1, 1), tint=F_(0.0, -1, 1))
def grade(x, rngs, brightness, contrast, saturation, gamma, temperature, tint):
    """Brightness, contrast, saturation, gamma and warm/cold temperature in one pass."""
    y = x.clamp(1e-6, 1) ** (1 / gamma)
    y = (y - 0.5) * contrast + 0.5 + brightness
    g = luma(y)
    y = g + (y - g) * saturation
    shift = torch.tensor([temperature * 0.15, tint * 0.1, -temperature * 0.15], device=x.device).view(1, 3, 1, 1)
    return (y + shift).clamp(0, 1)


@operator("hue_shift", degrees=F_(0.0, -360, 360), saturation=F_(1.0, 0, 3))
def hue_shift(x, rngs, degrees, saturation):
    """Rotate hues (and scale saturation) in HSV."""
    h = rgb_to_hsv(x)
    h = torch.stack([(h[:, 0] + degrees / 360) % 1.0, (h[:, 1] * saturation).clamp(0, 1), h[:, 2]], 1)
    return hsv_to_rgb(h).clamp(0, 1)


@operator("gradient_map", colors=CS_([[0, 0, 0], [1, 1, 1]]), mix=F_(1.0, 0, 1), contrast=F_(1.0, 0.2, 3))
def gradient_map(x, rngs, colors, mix, contrast):
    """Map luminance through a multi-stop colour gradient (duotones, tritones, sepia, neon ramps)."""
    g = ((luma(x) - 0.5) * contrast + 0.5).clamp(0, 1)
    stops = torch.tensor(colors, device=x.device, dtype=x.dtype)
    n = len(colors) - 1
    t = g * n
    i = t.floor().clamp(0, n - 1).long()
    f = t - i
    a = stops[i.squeeze(1)].permute(0, 3, 1, 2)
    b = stops[(i + 1).clamp(max=n).squeeze(1)].permute(0, 3, 1, 2)
    return blend(x, a * (1 - f) + b * f, mix).clamp(0, 1)


@operator("palette", colors=CS_([[0, 0, 0], [1, 1, 1]]), softness=F_(0.0, 0, 1))
def palette(x, rngs, colors, softness):
    """Quantise every pixel to the nearest colour of a fixed palette (flat, poster-like areas)."""
    pal = torch.tensor(colors, device=x.device, dtype=x.dtype).view(-1, 1, 3, 1, 1)
    q, best = pal[0].expand_as(x), ((x - pal[0]) ** 2).sum(1, keepdim=True)
    for c in pal[1:]:
        d = ((x - c) ** 2).sum(1, keepdim=True)
        less = d < best
        q = torch.where(less, c, q)
        best = torch.where(less, d, best)
    return blend(q, x, softness)


@operator("posterize", levels=I_(6, 2, 64))
def posterize(x, rngs, levels):
    """Round each channel to a few levels."""
    return (x * (levels - 1)).round() / (levels - 1)


@operator("tint", color=C_([1, 0.5, 0.3]), amount=F_(0.3, 0, 1), mode=S_("multiply", "screen", "overlay", "mix"))
def tint(x, rngs, color, amount, mode):
    """Wash the image with a colour (multiply, screen, overlay or plain mix)."""
    c = torch.tensor(list(color), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    if mode == "multiply":
        y = x * c
    elif mode == "screen":
        y = 1 - (1 - x) * (1 - c)
    elif mode == "overlay":
        y = torch.where(x < 0.5, 2 * x * c, 1 - 2 * (1 - x) * (1 - c))
    else:
        y = c.expand_as(x)
    return blend(x, y, amount).clamp(0, 1)


@operator("invert", amount=F_(1.0, 0, 1))
def invert(x, rngs, amount):
    """Negative image (blended)."""
    return blend(x, 1 - x, amount)


@operator("channel_swap", order=S_("rgb", "rbg", "grb", "gbr", "brg", "bgr"))
def channel_swap(x, rngs, order):
    """Permute colour channels (surreal, false-colour looks)."""
    idx = ["rgb".index(ch) for ch in order]
    return x[:, idx]


@operator("vignette", amount=F_(0.3, 0, 1), color=C_([0, 0, 0]), radius=F_(0.75, 0.2, 1.5))
def vignette(x, rngs, amount, color, radius):
    """Darken (or tint) towards the corners."""
    h, w = x.shape[-2:]
    ys = torch.linspace(-1, 1, h, device=x.device).view(-1, 1)
    xs = torch.linspace(-1, 1, w, device=x.device).view(1, -1)
    r = (torch.sqrt(xs ** 2 + ys ** 2) / (radius * 1.414)).clamp(0, 1) ** 2
    c = torch.tensor(list(color), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return blend(x, c, amount * r)


@operator("split_tone", shadows=C_([0.1, 0.2, 0.5]), highlights=C_([1, 0.8, 0.5]), amount=F_(0.4, 0, 1))
def split_tone(x, rngs, shadows, highlights, amount):
    """Tint shadows and highlights with two colours (cold/warm contrast)."""
    g = luma(x)
    tone = blend(color(shadows, x), color(highlights, x), g)
    return blend(x, x * 0.5 + tone * 0.5 + (x - 0.5) * 0.3, amount).clamp(0, 1)
