"""Pattern operators: dots (pointillism, sponge, halftone), cells (stained glass, mosaic, cubist facets,
tiles, bricks, cubes) and overlays (snow, meteors, petals, flames, neon lines, rain, sparkles, strings)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from canvasdata.styles.base import blend, coords, directional_blur, field, gaussian, luma, px, screen
from canvasdata.styles.base import color as rgb
from canvasdata.styles.registry import C_, CS_, F_, S_, operator


def _cells(x: torch.Tensor, rngs, n: int, jitter: float):
    """Nearest and second-nearest jittered grid points for every pixel (a Voronoi diagram).

    Returns (d1, d2, centre_x, centre_y, cell_id) with distances in cell units. A pixel's cell column
    depends only on its x and its row only on its y, so the nine candidate points are gathered with
    two 1-D index selects; squared distances are compared and the winner's index kept, and the
    centre and id are looked up once at the end."""
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    X, Y = coords(x)
    u, v = X[0] * n, Y[:, :1] * n
    ci, cj = u.floor().long(), v.floor().long()
    off = torch.from_numpy(np.stack([0.5 + jitter * (rng.random((n + 2, n + 2, 2)) - 0.5) for rng in rngs])
                           .astype(np.float32)).to(x.device)
    ox, oy = off[..., 0].contiguous(), off[..., 1].contiguous()
    d1 = torch.full((b, h, w), 1e18, device=x.device)
    d2 = d1.clone()
    best = torch.zeros((b, h, w), dtype=torch.uint8, device=x.device)
    steps = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)]
    for k, (di, dj) in enumerate(steps):
        gi = (ci + di).clamp(-1, n)
        gj = (cj + dj).clamp(-1, n)
        rows, cols = gj[:, 0] + 1, gi + 1
        dx = (u - gi.float()) - ox.index_select(1, rows).index_select(2, cols)
        dy = (v - gj.float()) - oy.index_select(1, rows).index_select(2, cols)
        d = dx * dx + dy * dy
        closer = d < d1
        d2 = torch.where(closer, d1, torch.minimum(d2, d))
        d1 = torch.where(closer, d, d1)
        best.masked_fill_(closer, k)
    di_k = torch.tensor([s[0] for s in steps], device=x.device)
    dj_k = torch.tensor([s[1] for s in steps], device=x.device)
    bl = best.long()
    gi = (ci + di_k[bl]).clamp(-1, n)
    gj = (cj + dj_k[bl]).clamp(-1, n)
    cid = (gj + 1) * (n + 2) + gi + 1
    flat = cid.view(b, -1)
    cx = gi.float() + ox.view(b, -1).gather(1, flat).view(b, h, w)
    cy = gj.float() + oy.view(b, -1).gather(1, flat).view(b, h, w)
    return d1.sqrt(), d2.sqrt(), cx / n, cy / n, cid


def _sample(x: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    grid = torch.stack([cx * 2 - 1, cy * 2 - 1], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@operator("pointillism", cells=F_(60, 10, 200), radius=F_(0.55, 0.2, 1.0), jitter=F_(0.8, 0, 1),
          paper=C_([0.96, 0.95, 0.9]), color_jitter=F_(0.08, 0, 0.4), layers=F_(2, 1, 3))
def pointillism(x, rngs, cells, radius, jitter, paper, color_jitter, layers):
    """Dots of pure colour sampled from the image on jittered grids, over paper."""
    out = rgb(paper, x).expand_as(x).clone()
    n = int(round(cells))
    for _ in range(int(round(layers))):
        d1, _, cx, cy, cid = _cells(x, rngs, n, jitter)
        col = _sample(x, cx, cy)
        hsvj = torch.from_numpy(np.stack([rng.normal(0, color_jitter, (3, (n + 2) ** 2)) for rng in rngs])
                                .astype(np.float32)).to(x.device)
        shift = torch.gather(hsvj, 2, cid.view(cid.shape[0], 1, -1).expand(-1, 3, -1)).view_as(col)
        col = (col * (1 + shift)).clamp(0, 1)
        dot = ((radius - d1) * n * 1.5 / max(1, n / 64)).clamp(0, 1).unsqueeze(1)
        out = blend(out, col, dot)
    return out


@operator("sponge", cells=F_(30, 6, 120), radius=F_(0.75, 0.3, 1.2), roughness=F_(0.5, 0, 1),
          paper=C_([0.95, 0.93, 0.88]), opacity=F_(0.8, 0.1, 1))
def sponge(x, rngs, cells, radius, roughness, paper, opacity):
    """Irregular, porous dabs (a sponge pressed on the canvas), several overlapping layers."""
    out = rgb(paper, x).expand_as(x).clone()
    n = int(round(cells))
    b, _, h, w = x.shape
    for _ in range(3):
        d1, _, cx, cy, _ = _cells(x, rngs, n, 1.0)
        col = _sample(x, cx, cy)
        pores = field(rngs, (b, 1, h, w), n * 3, 2, x.device)
        edge = radius + roughness * 0.35 * pores[:, 0] - d1
        dab = (edge * 6).clamp(0, 1).unsqueeze(1) * opacity
        out = blend(out, col, dab)
    return out


@operator("halftone", cells=F_(70, 15, 250), angle=F_(15.0, -90, 90), mode=S_("luma", "cmy"),
          ink=C_([0.05, 0.05, 0.1]), paper=C_([0.98, 0.97, 0.93]), keep=F_(0.0, 0, 1))
def halftone(x, rngs, cells, angle, mode, ink, paper, keep):
    """Printed halftone dots whose size follows the darkness (one ink, or CMY screens)."""
    X, Y = coords(x)
    src = gaussian(x, px(x, 0.5 / cells))

    def screen_at(a_deg, tone):
        a = math.radians(a_deg)
        u = (X * math.cos(a) + Y * math.sin(a)) * cells
        v = (-X * math.sin(a) + Y * math.cos(a)) * cells
        d = torch.hypot(u - u.floor() - 0.5, v - v.floor() - 0.5)
        r = torch.sqrt(tone.clamp(0, 1)) * 0.62
        return ((r - d) * max(8.0, 1200 / cells) * 0.1).clamp(0, 1)

    base = rgb(paper, x).expand_as(x)
    if mode == "luma":
        dots = screen_at(angle, 1 - luma(src))
        y = blend(base, rgb(ink, x).expand_as(x), dots)
    else:
        y = base.clone()
        for ch, a in enumerate((angle, angle + 30, angle + 60)):
            dots = screen_at(a, 1 - src[:, ch:ch + 1])
            keep_ch = torch.ones_like(y)
            keep_ch[:, ch] = 0
            y = y * (1 - dots * (1 - keep_ch))
    return blend(y, x, keep)


@operator("voronoi", cells=F_(25, 4, 150), border=F_(0.06, 0, 0.4), lead=C_([0.08, 0.07, 0.06]),
          jitter=F_(1.0, 0, 1), shade=F_(0.15, 0, 1), glass=F_(0.0, 0, 1))
def voronoi(x, rngs, cells, border, lead, jitter, shade, glass):
    """Cells of flat colour (mosaic, stained glass with lead lines between the panes)."""
    n = int(round(cells))
    d1, d2, cx, cy, _ = _cells(x, rngs, n, jitter)
    col = _sample(gaussian(x, px(x, 0.3 / n)), cx, cy)
    col = col * (1 - shade * d1.unsqueeze(1))
    if glass > 0:
        col = blend(col, (col * 1.3).clamp(0, 1), glass * (1 - d1.unsqueeze(1)))
    line = ((border - (d2 - d1)) * n * 0.8).clamp(0, 1).unsqueeze(1) if border > 0 else 0.0
    return blend(col, rgb(lead, x).expand_as(x), line)


@operator("facets", cells=F_(12, 3, 60), shift=F_(0.04, 0, 0.2), shade=F_(0.3, 0, 1), edge=F_(0.03, 0, 0.3))
def facets(x, rngs, cells, shift, shade, edge):
    """Cubist facets: each cell shows the image from a slightly shifted view, shaded as a plane."""
    n = int(round(cells))
    b = x.shape[0]
    d1, d2, cx, cy, cid = _cells(x, rngs, n, 1.0)
    X, Y = coords(x)
    tab = np.stack([rng.uniform(-1, 1, (3, (n + 2) ** 2)) for rng in rngs]).astype(np.float32)
    tab = torch.from_numpy(tab).to(x.device)
    per = torch.gather(tab, 2, cid.view(b, 1, -1).expand(-1, 3, -1)).view(b, 3, *cid.shape[1:])
    sx, sy = X + shift * per[:, 0], Y + shift * per[:, 1]
    y = _sample(x, sx, sy)
    y = y * (1 + shade * 0.5 * per[:, 2:3]) * (1 - shade * 0.5 * d1.unsqueeze(1))
    line = ((edge - (d2 - d1)) * n * 0.5).clamp(0, 1).unsqueeze(1) if edge > 0 else 0.0
    return blend(y.clamp(0, 1), y * 0.35, line)


@operator("tiles", size=F_(0.03, 0.005, 0.15), grout=F_(0.12, 0, 0.4), grout_color=C_([0.85, 0.83, 0.78]),
          bevel=F_(0.3, 0, 1), offset=S_("grid", "bricks"))
def tiles(x, rngs, size, grout, grout_color, bevel, offset):
    """Square tiles (or a running bond of bricks) of the image's colours with grout lines and bevels."""
    X, Y = coords(x)
    tw, th = (size * 2, size) if offset == "bricks" else (size, size)
    row = (Y / th).floor()
    shiftx = (row % 2) * 0.5 * tw if offset == "bricks" else 0.0
    u, v = (X + shiftx) / tw, Y / th
    fu, fv = u - u.floor(), v - v.floor()
    cx = ((u.floor() + 0.5) * tw - shiftx).clamp(0, 1)
    cy = ((v.floor() + 0.5) * th).clamp(0, 1)
    col = _sample(gaussian(x, px(x, size / 4)), cx.expand(x.shape[0], -1, -1), cy.expand(x.shape[0], -1, -1))
    e = torch.minimum(torch.minimum(fu, 1 - fu) * tw, torch.minimum(fv, 1 - fv) * th) / size
    g = (grout / 2 - e).mul(x.shape[-1] * size).clamp(0, 1)
    bev = ((fu - 0.5) + (fv - 0.5)) * -bevel * 0.3
    col = (col * (1 + bev)).clamp(0, 1)
    return blend(col, rgb(grout_color, x).expand_as(x), g)


@operator("cubes", size=F_(0.06, 0.015, 0.2), shade=F_(0.35, 0, 1))
def cubes(x, rngs, size, shade):
    """An isometric cube pattern: each cell split into top, left and right faces, lit differently."""
    X, Y = coords(x)
    s = size
    u = X / (s * math.sqrt(3) / 2)
    v = Y / s - 0.5 * (u.floor() % 2)
    fu, fv = u - u.floor(), v - v.floor()
    top = fv < 0.25 + 0.25 * (1 - 2 * torch.abs(fu - 0.5))
    left = (~top) & (fu < 0.5)
    face = torch.where(top, torch.tensor(1.0 + shade * 0.6, device=x.device),
                       torch.where(left, torch.tensor(1.0 - shade * 0.2, device=x.device),
                                   torch.tensor(1.0 - shade * 0.7, device=x.device)))
    cx = ((u.floor() + 0.5) * s * math.sqrt(3) / 2).clamp(0, 1)
    cy = ((v.floor() + 0.5 * (u.floor() % 2) + 0.5) * s).clamp(0, 1)
    col = _sample(gaussian(x, px(x, s / 3)), cx.expand(x.shape[0], -1, -1), cy.expand(x.shape[0], -1, -1))
    edge = (torch.minimum(torch.minimum(fu, 1 - fu), torch.minimum(fv, 1 - fv)) < 0.03).float()
    return ((col * face) * (1 - 0.6 * edge)).clamp(0, 1)


def _splat(x, rngs, count: int, size: float, stretch: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """A map [B,1,H,W] of `count` soft blobs of radius `size` at random places (per sample)."""
    b, _, h, w = x.shape
    m = torch.zeros(b, 1, h, w, device=x.device)
    for i, rng in enumerate(rngs):
        ys = torch.from_numpy(rng.integers(0, h, count)).to(x.device)
        xs = torch.from_numpy((rng.random(count) * w).astype(np.int64)).to(x.device)
        vals = torch.from_numpy(rng.uniform(0.5, 1.0, count).astype(np.float32)).to(x.device)
        m[i, 0, ys, xs] = vals
    rx = max(1.0, px(x, size) * stretch[0])
    ry = max(1.0, px(x, size) * stretch[1])
    kx, ky = int(math.ceil(rx)) + 1, int(math.ceil(ry)) + 1
    yy, xx = torch.meshgrid(torch.arange(-ky, ky + 1, device=x.device, dtype=x.dtype),
                            torch.arange(-kx, kx + 1, device=x.device, dtype=x.dtype), indexing="ij")
    disc = ((1 - torch.sqrt((xx / rx) ** 2 + (yy / ry) ** 2)) * min(rx, ry) + 0.5).clamp(0, 1)
    # The blob map is m convolved with the (symmetric) disc. A GPU convolves fast; on the CPU a dense
    # convolution is slow, and adding the disc at each of the few points (one index_add) is the
    # same sum.
    if x.device.type == "cuda":
        return F.conv2d(m, disc.view(1, 1, *disc.shape), padding=(ky, kx)).clamp(0, 1)
    hp, wp = h + 2 * ky, w + 2 * kx
    nz = torch.nonzero(m[:, 0])
    vals = m[nz[:, 0], 0, nz[:, 1], nz[:, 2]]
    start = nz[:, 0] * (hp * wp) + nz[:, 1] * wp + nz[:, 2]
    kidx = (torch.arange(2 * ky + 1, device=x.device)[:, None] * wp
            + torch.arange(2 * kx + 1, device=x.device)[None, :]).flatten()
    out = torch.zeros(b * hp * wp, device=x.device, dtype=x.dtype)
    out.index_add_(0, (start[:, None] + kidx[None, :]).flatten(), (vals[:, None] * disc.flatten()[None, :]).flatten())
    out = out.view(b, 1, hp, wp)
    return out[:, :, ky:ky + h, kx:kx + w].clamp(0, 1)


@operator("snow", density=F_(0.5, 0, 2), size=F_(0.006, 0.001, 0.03), color=C_([1.0, 1.0, 1.0]), chill=F_(0.3, 0, 1))
def snow(x, rngs, density, size, color, chill):
    """Falling snowflakes over a chilled image."""
    y = blend(x, (x * rgb([0.85, 0.92, 1.05], x) + 0.08).clamp(0, 1), chill)
    flakes = _splat(x, rngs, int(400 * density), size)
    return blend(y, rgb(color, x).expand_as(x), flakes.clamp(0, 1))


@operator("petals", count=F_(60, 0, 400), size=F_(0.012, 0.003, 0.05), colors=CS_([[0.98, 0.7, 0.8], [1, 0.9, 0.95]]),
          stretch=F_(1.6, 1, 4))
def petals(x, rngs, count, size, colors, stretch):
    """Scattered petals or leaves (blossoms, autumn leaves) in a few colours."""
    y = x
    k = len(colors)
    for i, c in enumerate(colors):
        m = _splat(x, [np.random.default_rng([int(r.integers(2**31)), i]) for r in rngs], max(1, int(count / k)),
                   size, (stretch, 1.0))
        y = blend(y, rgb(c, x).expand_as(x), m.clamp(0, 1) * 0.95)
    return y


@operator("meteors", count=F_(12, 0, 80), length=F_(0.25, 0.02, 0.8), angle=F_(35.0, -90, 90),
          color=C_([1.0, 0.95, 0.8]), night=F_(0.5, 0, 1))
def meteors(x, rngs, count, length, angle, color, night):
    """Bright streaks across a darkened sky."""
    y = blend(x, x * rgb([0.35, 0.4, 0.65], x), night)
    pts = _splat(x, rngs, int(count), 0.002)
    a = math.radians(angle)
    tx = torch.full_like(pts, math.cos(a))
    ty = torch.full_like(pts, math.sin(a))
    trail = directional_blur(pts, tx, ty, length, steps=24) * 6
    stars = _splat(x, rngs, int(count * 8), 0.0015) * 0.8
    return screen(y, rgb(color, x) * (trail + stars).clamp(0, 1))


@operator("flames", height=F_(0.45, 0.1, 1), intensity=F_(0.8, 0, 1.5))
def flames(x, rngs, height, intensity):
    """Fire rising from the bottom of the picture, with an orange glow."""
    b, _, h, w = x.shape
    X, Y = coords(x)
    n = field(rngs, (b, 1, h, w), 6, 3, x.device)
    n2 = F.interpolate(field(rngs, (b, 1, max(8, h // 4), w), 10, 2, x.device), size=(h, w), mode="bilinear")
    heat = ((Y - (1 - height)) / height + 0.45 * n + 0.35 * n2).clamp(0, 1) * intensity
    fire = torch.cat([heat.clamp(0, 1), (heat - 0.35).clamp(0, 1) * 1.4, (heat - 0.75).clamp(0, 1) * 2], 1).clamp(0, 1)
    warm = (x * rgb([1.1, 0.8, 0.55], x)).clamp(0, 1)
    return screen(warm, fire)


@operator("lines", count=F_(6, 1, 60), width=F_(0.004, 0.0005, 0.03), colors=CS_([[1, 0.2, 0.8], [0.2, 1, 1]]),
          glow=F_(0.6, 0, 2), darken=F_(0.5, 0, 1), waves=F_(2.0, 0.2, 8))
def lines(x, rngs, count, width, colors, glow, darken, waves):
    """Smooth glowing curves across the image (neon tubes, vibrating strings)."""
    X, Y = coords(x)
    y = x * (1 - darken)
    acc = torch.zeros_like(x)
    for i, rng in enumerate(rngs):
        for k in range(int(round(count))):
            y0, amp = rng.uniform(0.05, 0.95), rng.uniform(0.02, 0.2)
            f, ph = rng.uniform(0.5, waves), rng.uniform(0, 6.28)
            curve = y0 + amp * torch.sin(2 * math.pi * f * X + ph)
            d = (Y - curve).abs()
            core = (1 - d / width).clamp(0, 1)
            halo = torch.exp(-(d / (width * 6)) ** 2) * glow
            c = torch.tensor(colors[k % len(colors)], device=x.device).view(3, 1, 1)
            acc[i] = torch.maximum(acc[i], c * (core + halo).clamp(0, 1))
    return screen(y, acc)


@operator("rain", density=F_(0.5, 0, 2), angle=F_(75.0, 30, 90), strength=F_(0.4, 0, 1))
def rain(x, rngs, density, angle, strength):
    """Rain streaks and a washed, cooler image."""
    pts = _splat(x, rngs, int(800 * density), 0.001)
    a = math.radians(angle)
    streak = directional_blur(pts, torch.full_like(pts, math.cos(a)), torch.full_like(pts, math.sin(a)), 0.06, 9) * 5
    y = blend(x, x * rgb([0.8, 0.88, 1.0], x) + 0.05, 0.5)
    return screen(y, streak.clamp(0, 1) * strength)


@operator("sparkles", count=F_(40, 0, 300), size=F_(0.004, 0.001, 0.02), color=C_([1, 1, 0.9]))
def sparkles(x, rngs, count, size, color):
    """Small four-pointed glints."""
    pts = _splat(x, rngs, int(count), size * 0.5)
    r = max(1, int(round(px(x, size) * 3)))
    cross = torch.maximum(F.max_pool2d(pts, (1, 2 * r + 1), stride=1, padding=(0, r)),
                          F.max_pool2d(pts, (2 * r + 1, 1), stride=1, padding=(r, 0)))
    return screen(x, rgb(color, x) * gaussian(cross, 0.8).clamp(0, 1))
