"""Building blocks shared by the style operators: blurs, gradients, noise fields, warps, compositing.

All functions take images [B,3,H,W] (or maps [B,1,H,W]) in [0,1] and work on CPU or CUDA. Sizes are
given as fractions of the image side, so a style looks the same at 256, 512 or 1024 px. Random fields
are drawn per sample from that sample's numpy generator: a sample never depends on its batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)


def px(x: torch.Tensor, frac: float) -> float:
    """A length given as a fraction of the image side, in pixels."""
    return frac * x.shape[-1]


def luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


WIDE_BLUR_PX = 6.0   # from this sigma on, `gaussian` blurs at reduced resolution


def gaussian_exact(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding at full resolution; sigma in pixels."""
    if sigma_px < 0.3:
        return x
    r = max(1, int(math.ceil(3 * sigma_px)))
    r = min(r, x.shape[-1] // 2 - 1, x.shape[-2] // 2 - 1)
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma_px) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def gaussian(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Gaussian blur; sigma in pixels. A wide one (sigma >= WIDE_BLUR_PX) is computed on a grid f times
    coarser (f a power of two with sigma >= 3f): an f x f mean, the blur of sigma' = sqrt(sigma^2 - f^2/4)/f
    (the mean and the bilinear way back add f^2/12 + f^2/6 of variance), then bilinear upsampling: f^3 times
    fewer multiply-adds; painted styles stay within 6 of 255 levels of the full-resolution blur (mean under
    0.07 levels, below JPEG q95's own error; bench/styles.py). Where exact gradients matter (the structure
    tensor) use `gaussian_exact`."""
    h, w = x.shape[-2:]
    f = 2 ** int(math.floor(math.log2(sigma_px / 3))) if sigma_px >= WIDE_BLUR_PX else 1
    if f < 2 or h % f or w % f or min(h, w) // f < 8:
        return gaussian_exact(x, sigma_px)
    coarse = gaussian_exact(F.avg_pool2d(x, f), math.sqrt(sigma_px ** 2 - f * f / 4) / f)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over every k x k window (no padding), as two 1-D depthwise convolutions: 2k multiply-adds
    a pixel instead of k*k, and on the CPU far faster than avg_pool2d."""
    c = x.shape[1]
    w = torch.full((c, 1, k, 1), 1.0 / k, device=x.device, dtype=x.dtype)
    return F.conv2d(F.conv2d(x, w, groups=c), w.view(c, 1, 1, k), groups=c)


def box_blur(x: torch.Tensor, r: int) -> torch.Tensor:
    if r < 1:
        return x
    return box_mean(F.pad(x, (r, r, r, r), mode="reflect"), 2 * r + 1)


def sobel(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients (gx, gy) of a map [B,1,H,W]."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=m.device, dtype=m.dtype) / 8
    p = F.pad(m, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(p, k.view(1, 1, 3, 3)), F.conv2d(p, k.t().contiguous().view(1, 1, 3, 3))


def orientation(x: torch.Tensor, sigma_frac: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit tangent (along edges) of the smoothed structure tensor: the direction strokes follow."""
    gx, gy = sobel(luma(x))
    s = px(x, sigma_frac)
    jxx, jyy, jxy = gaussian_exact(gx * gx, s), gaussian_exact(gy * gy, s), gaussian_exact(gx * gy, s)
    theta = 0.5 * torch.atan2(2 * jxy, jxx - jyy) + math.pi / 2
    return torch.cos(theta), torch.sin(theta)


def field(rngs: Sequence[np.random.Generator], shape: tuple[int, int, int, int], cells: int, octaves: int = 1,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """Smooth per-sample noise [B,C,H,W] in about [-1, 1], built on a grid of `cells` per side."""
    b, c, h, w = shape
    work = min(h, 256), min(w, 256)
    out = torch.zeros(b, c, *work, device=device)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = max(1, cells * 2 ** o)
        grid = np.stack([rng.uniform(-1, 1, (c, n + 1, n + 1)) for rng in rngs]).astype(np.float32)
        out += amp * F.interpolate(torch.from_numpy(grid).to(device), size=work, mode="bicubic", align_corners=True)
        total += amp
        amp *= 0.5
    out = out / total
    if work != (h, w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out


def white(rngs: Sequence[np.random.Generator], shape: tuple[int, int, int, int], res: int = 512,
          device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-sample fine noise in [0,1] drawn at a fixed `res` and resized (resolution-independent grain)."""
    b, c, h, w = shape
    grid = np.stack([rng.random((c, res, res)) for rng in rngs]).astype(np.float32)
    t = torch.from_numpy(grid).to(device)
    return t if (h, w) == (res, res) else F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)


def _base_grid(x: torch.Tensor) -> torch.Tensor:
    """Identity sampling grid [1,H,W,2] for grid_sample (align_corners=True)."""
    h, w = x.shape[-2:]
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, h, device=x.device), torch.linspace(-1, 1, w, device=x.device),
                            indexing="ij")
    return torch.stack([gx, gy], -1)[None]


def _resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def warp(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Sample x at (p + (dx, dy)), displacements in fractions of the image side."""
    return _resample(x, _base_grid(x) + 2 * torch.stack([dx[:, 0], dy[:, 0]], -1))


def directional_blur(x: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor, length_frac: float,
                     steps: int = 7) -> torch.Tensor:
    """Average along the tangent field: paint smeared along the image's structure (stroke look).
    The identity grid and the tangent step are built once for all steps."""
    acc = torch.zeros_like(x)
    base = _base_grid(x)
    step = 2 * torch.stack([tx[:, 0], ty[:, 0]], -1)
    for k in range(steps):
        t = (k / (steps - 1) - 0.5) * length_frac
        acc = acc + _resample(x, base + step * t)
    return acc / steps


def coords(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised pixel-centre coordinates (X, Y) in [0,1], shape [H,W]."""
    h, w = x.shape[-2:]
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w
    return torch.meshgrid(ys, xs, indexing="ij")[::-1]


def color(c: Sequence[float], x: torch.Tensor) -> torch.Tensor:
    """An RGB triple as a [1,3,1,1] tensor on x's device."""
    return torch.tensor(list(c), device=x.device, dtype=x.dtype).view(1, 3, 1, 1)


def blend(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    return a * (1 - t) + b * t


def screen(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - (1 - a) * (1 - b)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    mx, _ = x.max(1)
    mn, _ = x.min(1)
    d = mx - mn
    h = torch.zeros_like(mx)
    safe = d.clamp(min=1e-6)
    h = torch.where(mx == r, ((g - b) / safe) % 6, h)
    h = torch.where(mx == g, (b - r) / safe + 2, h)
    h = torch.where(mx == b, (r - g) / safe + 4, h)
    h = torch.where(d < 1e-6, torch.zeros_like(h), h) / 6
    s = torch.where(mx > 1e-6, d / mx.clamp(min=1e-6), torch.zeros_like(mx))
    return torch.stack([h % 1.0, s, mx], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x[:, 0] * 6, x[:, 1], x[:, 2]
    k = lambda n: (n + h) % 6  # noqa: E731
    f = lambda n: v - v * s * torch.clamp(torch.minimum(k(n), 4 - k(n)), 0, 1)  # noqa: E731
    return torch.stack([f(5), f(3), f(1)], 1)
