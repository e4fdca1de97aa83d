"""Cats: pointed triangular ears, slit-pupil eyes, whiskers, a long thin tail held up."""

from __future__ import annotations

from canvasdata.content.objects._kit import Frame, eye, pick, place
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

COATS = [(0.85, 0.52, 0.22), (0.15, 0.14, 0.14), (0.55, 0.55, 0.57), (0.93, 0.91, 0.87), (0.45, 0.32, 0.22),
         (0.75, 0.68, 0.6)]


@register_object("Cats", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    fr = place(c, rng, scene, (0.46, 0.58), height=1.05)
    coat = jitter(rng, pick(rng, COATS))
    dark = darker(coat, 0.6)
    sitting = rng.random() < 0.4
    fr.ground_shadow(0.5)
    tail_up = rng.uniform(-0.2, 0.2)
    if sitting:
        fr.c.fill(fr.chain([(-0.25, -0.05), (-0.5, -0.05), (-0.62, -0.2 + tail_up)], 0.035, 0.03), coat)
        body = fr.ellipse(-0.05, -0.32, 0.24, 0.32, angle=-0.25)
        fr.c.fill(body, coat, bump=0.08)
        fr.c.fill(fr.capsule(0.12, -0.35, 0.16, -0.02, 0.05), coat)
        fr.c.fill(fr.ellipse(-0.12, -0.08, 0.18, 0.09), coat)
        hx, hy = 0.1, -0.72
    else:
        fr.c.fill(fr.chain([(-0.4, -0.5), (-0.6, -0.62), (-0.68, -0.85 + tail_up), (-0.6, -1.0 + tail_up)],
                           0.035, 0.028), coat)
        for x, shade in ((-0.3, 0.8), (0.28, 0.8), (-0.22, 1.0), (0.36, 1.0)):
            fr.c.fill(fr.capsule(x, -0.45, x + 0.02, -0.02, 0.036, 0.03), darker(coat, shade))
            fr.c.fill(fr.ellipse(x + 0.04, -0.02, 0.05, 0.025), darker(coat, shade))
        fr.c.fill(fr.ellipse(0.0, -0.5, 0.42, 0.15), coat, bump=0.08)
        hx, hy = 0.45, -0.72
    if rng.random() < 0.5:  # tabby stripes
        for k in range(4):
            x = (-0.25 + 0.15 * k) if not sitting else -0.1
            y = -0.5 if not sitting else -0.45 + 0.1 * k
            fr.c.fill(fr.ellipse(x, y, 0.025 if not sitting else 0.12, 0.1 if not sitting else 0.02), dark, shade=0.2,
                      alpha=0.6)
    hf = Frame(c, *fr.p(hx, hy), fr.s * 1.3, fr.f)  # the head drawn larger: its features name the animal
    for dx in (-0.1, 0.09):
        hf.c.fill(hf.polygon([(dx - 0.07, -0.1), (dx + 0.07, -0.1), (dx + 0.01, -0.3)]),
                  coat)
        hf.c.fill(hf.polygon([(dx - 0.035, -0.12), (dx + 0.04, -0.12), (dx + 0.01, -0.24)]),
                  (0.9, 0.6, 0.62), shade=0.2)
    hf.c.fill(hf.ellipse(0.0, 0.0, 0.17, 0.15), coat, bump=0.07)
    hf.c.fill(hf.ellipse(0.06, 0.06, 0.08, 0.055), lighter(coat, 0.3), shade=0.3)
    iris = pick(rng, [(0.55, 0.75, 0.2), (0.85, 0.7, 0.15), (0.3, 0.55, 0.75)])
    eye(hf, -0.03, -0.02, 0.035, iris, slit=True)
    eye(hf, 0.09, -0.02, 0.035, iris, slit=True)
    hf.c.fill(hf.polygon([(0.04, 0.04), (0.09, 0.04), (0.065, 0.07)]), (0.85, 0.45, 0.5),
              shade=0.0)
    for k in (-1, 0, 1):
        for side in (-1, 1):
            hf.c.fill(hf.capsule(0.065 + side * 0.05, 0.08, 0.065 + side * 0.26, 0.07 + k * 0.05,
                                 0.004), (0.95, 0.95, 0.95), shade=0.0, alpha=0.85)
