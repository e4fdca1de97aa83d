"""Birds: a round body with a folded wing, a pointed beak, a fanned tail, thin legs on a branch, or in flight."""

from __future__ import annotations

from canvasdata.content.objects._kit import Frame, eye, pick
from canvasdata.content.raster import darker, jitter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import OUTDOOR

# (body, breast, wing)
PLUMAGE = [((0.45, 0.32, 0.22), (0.9, 0.45, 0.2), (0.35, 0.25, 0.18)),
           ((0.2, 0.4, 0.8), (0.85, 0.75, 0.6), (0.15, 0.3, 0.65)),
           ((0.8, 0.1, 0.1), (0.85, 0.15, 0.12), (0.6, 0.08, 0.08)),
           ((0.55, 0.45, 0.35), (0.85, 0.8, 0.7), (0.4, 0.3, 0.22)),
           ((0.2, 0.65, 0.25), (0.9, 0.85, 0.2), (0.1, 0.45, 0.6)),
           ((0.95, 0.85, 0.2), (0.98, 0.9, 0.3), (0.15, 0.15, 0.15))]


def _bird(fr: Frame, rng, flying: bool) -> None:
    body, breast, wing = (jitter(rng, col) for col in pick(rng, PLUMAGE))
    tail = [(-0.2, -0.05), (-0.55, -0.02 + (0.1 if flying else 0.15)), (-0.5, 0.12 + (0.0 if flying else 0.12))]
    fr.c.fill(fr.polygon(tail),
              darker(wing, 0.9))
    if not flying:
        for dx in (-0.03, 0.06):
            fr.c.fill(fr.capsule(dx, 0.1, dx, 0.3, 0.012), (0.3, 0.25, 0.2), shade=0.0)
    fr.c.fill(fr.ellipse(0.0, 0.0, 0.3, 0.17, angle=-0.15), body, bump=0.08)
    fr.c.fill(fr.ellipse(0.12, 0.06, 0.16, 0.1, angle=-0.2), breast, bump=0.05)
    fr.c.fill(fr.circle(0.24, -0.15, 0.12), body, bump=0.06)
    beak = pick(rng, [(0.95, 0.7, 0.1), (0.2, 0.18, 0.15)])
    fr.c.fill(fr.polygon([(0.32, -0.18), (0.32, -0.1), (0.47, -0.13)]), beak)
    eye(fr, 0.27, -0.17, 0.025)
    if flying:
        flap = rng.uniform(-0.6, 0.3)
        fr.c.fill(fr.polygon([(-0.12, -0.05), (0.12, -0.08), (-0.05 + 0.1 * flap, -0.55 + 0.3 * abs(flap))]), wing)
    else:
        fr.c.fill(fr.ellipse(-0.06, -0.02, 0.2, 0.1, angle=0.2), wing, bump=0.05)


@register_object("Birds", backgrounds=OUTDOOR)
def draw(c, rng, scene) -> None:
    n = int(rng.integers(1, 3))
    if rng.random() < 0.55:  # perched on a branch
        y = float(rng.uniform(0.35, 0.65))
        c.fill(c.capsule(-0.05, y + 0.05, 1.05, y - 0.05 + rng.uniform(-0.1, 0.1), 0.018, 0.01), (0.35, 0.24, 0.15))
        xs = sorted(rng.uniform(0.3, 0.7, n)) if n > 1 else [float(rng.uniform(0.4, 0.6))]
        for x in xs:
            s = float(rng.uniform(0.34, 0.46)) * (1.0 if n == 1 else 0.8)
            fr = Frame(c, float(x), y - 0.23 * 0.25 - 0.02, s, 1 if rng.random() < 0.5 else -1)
            fr.y = y - 0.3 * fr.s
            _bird(fr, rng, flying=False)
    else:
        for _ in range(n):
            fr = Frame(c, float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.34, 0.48)),
                       1 if rng.random() < 0.5 else -1)
            _bird(fr, rng, flying=True)
