"""Vector rasterisation with signed distance fields: anti-aliased, shaded, resolution-independent.

Coordinates are normalised: x and y in [0, 1], y pointing down, so a scene drawn from the same
parameters looks the same at 64 or 1024 px. A `Canvas` holds one image being painted back to front;
every `fill` composites a shape given by its signed distance (negative inside) with soft lighting
derived from the distance field (a rounded bump lit from the scene's light direction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

Color = Sequence[float]
FAR = 10.0       # the value of a distance field outside the box it was evaluated in
MARGIN = 0.03    # default evaluation margin around a shape (covers anti-aliasing and soft shadows)


def rot(x: torch.Tensor, y: torch.Tensor, cx: float, cy: float, angle: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates relative to (cx, cy), rotated by -angle (so shapes rotate by +angle)."""
    dx, dy = x - cx, y - cy
    if angle == 0:
        return dx, dy
    c, s = math.cos(angle), math.sin(angle)
    return c * dx + s * dy, -s * dx + c * dy


class Canvas:
    """One image [3,H,W] in [0,1], painted back to front, plus the object's coverage mask."""

    def __init__(self, size: int, device: torch.device, rng: np.random.Generator, light: tuple[float, float]) -> None:
        self.size = size
        self.device = device
        self.px = 1.0 / size
        coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
        self.Y, self.X = torch.meshgrid(coords, coords, indexing="ij")
        self.img = torch.zeros(3, size, size, device=device)
        self.mask = torch.zeros(size, size, device=device)
        self.rng = rng
        lx, ly = light
        lz = 0.75
        n = math.sqrt(lx * lx + ly * ly + lz * lz)
        self.light = (lx / n, ly / n, lz / n)
        self.drawing_object = False

    # ---- signed distance functions (negative inside) --------------------------------------------
    # Each is evaluated only inside its bounding box (plus `margin`, in canvas units) and is FAR outside
    # it: shapes are small, so this keeps rendering fast at 512-1024 px. Pass a larger margin when the
    # field is used beyond the shape's edge (soft shadows, glows).
    def _field(self, x0: float, y0: float, x1: float, y1: float, margin: float, fn) -> torch.Tensor:
        m = max(margin, 3 * self.px)
        i0, i1 = max(0, int((y0 - m) * self.size)), min(self.size, int(math.ceil((y1 + m) * self.size)))
        j0, j1 = max(0, int((x0 - m) * self.size)), min(self.size, int(math.ceil((x1 + m) * self.size)))
        d = torch.full((self.size, self.size), FAR, device=self.device)
        if i1 > i0 and j1 > j0:
            d[i0:i1, j0:j1] = fn(self.X[i0:i1, j0:j1], self.Y[i0:i1, j0:j1])
            d._window = (i0, i1, j0, j1)  # where the field is finite: fill() need not scan for it
        return d

    def dist(self, cx: float, cy: float) -> torch.Tensor:
        """Distance to a point over the whole canvas (glows, vignettes)."""
        return torch.hypot(self.X - cx, self.Y - cy)

    def circle(self, cx: float, cy: float, r: float, margin: float = MARGIN) -> torch.Tensor:
        return self._field(cx - r, cy - r, cx + r, cy + r, margin, lambda X, Y: torch.hypot(X - cx, Y - cy) - r)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
                margin: float = MARGIN) -> torch.Tensor:
        R = max(rx, ry)

        def fn(X, Y):
            x, y = rot(X, Y, cx, cy, angle)
            return (torch.hypot(x / rx, y / ry) - 1.0) * min(rx, ry)

        return self._field(cx - R, cy - R, cx + R, cy + R, margin, fn)

    def box(self, cx: float, cy: float, w: float, h: float, angle: float = 0.0, r: float = 0.0,
            margin: float = MARGIN) -> torch.Tensor:
        R = math.hypot(w, h) / 2 if angle else None

        def fn(X, Y):
            x, y = rot(X, Y, cx, cy, angle)
            qx, qy = x.abs() - (w / 2 - r), y.abs() - (h / 2 - r)
            return torch.hypot(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0) - r

        if R is None:
            return self._field(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, margin, fn)
        return self._field(cx - R, cy - R, cx + R, cy + R, margin, fn)

    def capsule(self, ax: float, ay: float, bx: float, by: float, r0: float, r1: float | None = None,
                margin: float = MARGIN) -> torch.Tensor:
        """A segment from a to b with radius r0 at a and r1 at b (a tapered limb)."""
        r1 = r0 if r1 is None else r1
        vx, vy = bx - ax, by - ay
        vv = max(vx * vx + vy * vy, 1e-12)
        R = max(r0, r1)

        def fn(X, Y):
            px, py = X - ax, Y - ay
            t = ((px * vx + py * vy) / vv).clamp(0, 1)
            return torch.hypot(px - t * vx, py - t * vy) - (r0 + (r1 - r0) * t)

        return self._field(min(ax, bx) - R, min(ay, by) - R, max(ax, bx) + R, max(ay, by) + R, margin, fn)

    def polygon(self, pts: Sequence[tuple[float, float]], margin: float = MARGIN) -> torch.Tensor:
        """A convex polygon (points in either winding order) as the max of its edges' half-planes."""
        area = sum(pts[i][0] * pts[(i + 1) % len(pts)][1] - pts[(i + 1) % len(pts)][0] * pts[i][1]
                   for i in range(len(pts)))
        sign = 1.0 if area > 0 else -1.0

        def fn(X, Y):
            d = None
            for i in range(len(pts)):
                (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % len(pts)]
                ex, ey = x1 - x0, y1 - y0
                ln = math.hypot(ex, ey) or 1e-9
                e = sign * ((X - x0) * ey - (Y - y0) * ex) / ln
                d = e if d is None else torch.maximum(d, e)
            return d

        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return self._field(min(xs), min(ys), max(xs), max(ys), margin, fn)

    def chain(self, pts: Sequence[tuple[float, float]], r0: float, r1: float | None = None) -> torch.Tensor:
        """A tapered polyline (tails, tentacles, stems) as a union of capsules."""
        r1 = r0 if r1 is None else r1
        n = len(pts) - 1
        d = None
        for i in range(n):
            a, b = pts[i], pts[i + 1]
            ra, rb = r0 + (r1 - r0) * i / n, r0 + (r1 - r0) * (i + 1) / n
            di = self.capsule(a[0], a[1], b[0], b[1], ra, rb)
            d = di if d is None else torch.minimum(d, di)
        return d

    @staticmethod
    def union(*ds: torch.Tensor, k: float = 0.0) -> torch.Tensor:
        """Union; with k > 0 a smooth union that blends shapes into one body."""
        d = ds[0]
        for e in ds[1:]:
            if k > 0:
                h = (0.5 + 0.5 * (e - d) / k).clamp(0, 1)
                d = e + (d - e) * h - k * h * (1 - h)
            else:
                d = torch.minimum(d, e)
        return d

    # ---- painting ---------------------------------------------------------------------------------
    def coverage(self, d: torch.Tensor, soft: float = 1.0) -> torch.Tensor:
        return (0.5 - d / (self.px * soft)).clamp(0, 1)

    @staticmethod
    def _window(region: torch.Tensor) -> tuple[int, int, int, int] | None:
        rows, cols = region.any(1), region.any(0)
        r, k = torch.nonzero(rows), torch.nonzero(cols)
        if len(r) == 0:
            return None
        return int(r[0]), int(r[-1]) + 1, int(k[0]), int(k[-1]) + 1

    def fill(self, d: torch.Tensor, color: Color | torch.Tensor, *, bump: float = 0.04, shade: float = 0.7,
             texture: torch.Tensor | None = None, alpha: float = 1.0, gloss: float = 0.0) -> None:
        """Composite a shape: coverage from d, colour lit as a rounded bump of height `bump`.

        Only the window where the shape has coverage is computed."""
        win = getattr(d, "_window", None) or self._window(d < self.px)
        if win is None:
            return
        i0, i1, j0, j1 = win
        d = d[i0:i1, j0:j1]
        cov = self.coverage(d) * alpha
        if isinstance(color, torch.Tensor):
            col = color[:, i0:i1, j0:j1] if color.dim() == 3 and color.shape[-1] == self.size else color
        else:
            col = torch.as_tensor(color, dtype=torch.float32, device=self.device).view(3, 1, 1)
        if shade > 0 and d.shape[0] > 1 and d.shape[1] > 1:
            depth = (-d / bump).clamp(0, 1)
            h = torch.sqrt(1 - (1 - depth) ** 2) * bump
            gx = torch.cat([h[:, 1:] - h[:, :-1], h[:, -1:] - h[:, -2:-1]], 1) * self.size
            gy = torch.cat([h[1:, :] - h[:-1, :], h[-1:, :] - h[-2:-1, :]], 0) * self.size
            lx, ly, lz = self.light
            lam = ((-gx * lx - gy * ly + lz) / torch.sqrt(gx * gx + gy * gy + 1)).clamp(0, 1)
            col = col * ((1 - shade) + shade * (0.35 + 0.85 * lam))
            if gloss > 0:
                col = col + gloss * lam.pow(12)
        if texture is not None:
            col = col * (texture[..., i0:i1, j0:j1] if texture.shape[-1] == self.size else texture)
        region = self.img[:, i0:i1, j0:j1]
        self.img[:, i0:i1, j0:j1] = region * (1 - cov) + col.clamp(0, 1) * cov
        if self.drawing_object:
            self.mask[i0:i1, j0:j1] = torch.maximum(self.mask[i0:i1, j0:j1], cov)

    def shadow(self, d: torch.Tensor, softness: float = 0.03, strength: float = 0.35) -> None:
        """Darken under a shape with a soft edge (cast shadows, contact shadows)."""
        win = self._window(d < softness / 2)
        if win is None:
            return
        i0, i1, j0, j1 = win
        s = (0.5 - d[i0:i1, j0:j1] / softness).clamp(0, 1)
        self.img[:, i0:i1, j0:j1] = self.img[:, i0:i1, j0:j1] * (1 - strength * s)

    def gradient(self, top: Color, bottom: Color, y0: float = 0.0, y1: float = 1.0) -> torch.Tensor:
        """A vertical colour gradient image [3,H,W]."""
        t = ((self.Y - y0) / max(y1 - y0, 1e-6)).clamp(0, 1)
        a = torch.as_tensor(top, dtype=torch.float32, device=self.device).view(3, 1, 1)
        b = torch.as_tensor(bottom, dtype=torch.float32, device=self.device).view(3, 1, 1)
        return a * (1 - t) + b * t

    def noise(self, cells: int, octaves: int = 3, seed: int | None = None) -> torch.Tensor:
        """Smooth value noise in [-1, 1] on a fixed grid of `cells` (resolution-independent).

        Built at most at 256 px, then upsampled: the noise has no detail finer than that."""
        rng = self.rng if seed is None else np.random.default_rng(seed)
        work = min(self.size, 256)
        out = torch.zeros(1, 1, work, work, device=self.device)
        amp, total = 1.0, 0.0
        for o in range(octaves):
            n = cells * 2 ** o
            grid = torch.from_numpy(rng.uniform(-1, 1, (1, 1, n + 1, n + 1)).astype(np.float32)).to(self.device)
            out += amp * F.interpolate(grid, size=(work, work), mode="bicubic", align_corners=True)
            total += amp
            amp *= 0.5
        if work != self.size:
            out = F.interpolate(out, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (out[0, 0] / total).clamp(-1, 1)

def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    """HSV (all in [0,1]) to RGB."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def jitter(rng: np.random.Generator, color: Color, amount: float = 0.06) -> tuple[float, float, float]:
    """A colour with a little natural variation."""
    c = np.clip(np.asarray(color, dtype=np.float64) * (1 + rng.normal(0, amount, 3)), 0, 1)
    return float(c[0]), float(c[1]), float(c[2])


def darker(color: Color, k: float = 0.7) -> tuple[float, float, float]:
    return tuple(float(c) * k for c in color)  # type: ignore[return-value]


def lighter(color: Color, k: float = 0.4) -> tuple[float, float, float]:
    return tuple(float(c) + (1 - float(c)) * k for c in color)  # type: ignore[return-value]
