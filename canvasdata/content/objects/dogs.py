"""Dogs: a long snout with a black nose, floppy ears hanging down, sturdy legs, a wagging tail."""

from __future__ import annotations

from canvasdata.content.objects._kit import Frame, eye, pick, place
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

COATS = [(0.82, 0.62, 0.3), (0.45, 0.28, 0.15), (0.12, 0.1, 0.1), (0.92, 0.9, 0.85), (0.7, 0.5, 0.35),
         (0.55, 0.5, 0.45)]


@register_object("Dogs", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    fr = place(c, rng, scene, (0.46, 0.58), height=1.0)
    coat = jitter(rng, pick(rng, COATS))
    ear_col = darker(coat, rng.uniform(0.5, 0.9))
    sitting = rng.random() < 0.35
    fr.ground_shadow(0.55)
    wag = rng.uniform(-0.15, 0.15)
    if sitting:
        fr.c.fill(fr.chain([(-0.25, -0.1), (-0.42, -0.2), (-0.5, -0.35 + wag)], 0.05, 0.03), coat)
        fr.c.fill(fr.ellipse(-0.05, -0.3, 0.26, 0.3, angle=-0.3), coat, bump=0.09)
        fr.c.fill(fr.capsule(0.15, -0.35, 0.18, -0.02, 0.065), coat)
        fr.c.fill(fr.ellipse(-0.12, -0.07, 0.2, 0.08), coat)
        hx, hy = 0.15, -0.72
    else:
        fr.c.fill(fr.chain([(-0.42, -0.6), (-0.55, -0.75), (-0.58, -0.9 + wag)], 0.05, 0.025), coat)
        for x, shade in ((-0.3, 0.8), (0.25, 0.8), (-0.2, 1.0), (0.34, 1.0)):
            fr.c.fill(fr.capsule(x, -0.5, x, -0.03, 0.075, 0.065), darker(coat, shade))
            fr.c.fill(fr.ellipse(x + 0.04, -0.03, 0.07, 0.03), darker(coat, shade))
        fr.c.fill(fr.ellipse(0.0, -0.56, 0.44, 0.22), coat, bump=0.09)
        if rng.random() < 0.3:
            for _ in range(3):
                fr.c.fill(fr.circle(rng.uniform(-0.3, 0.3), -0.55 + rng.uniform(-0.08, 0.05), rng.uniform(0.04, 0.08)),
                          (0.12, 0.1, 0.1), shade=0.3)
        hx, hy = 0.48, -0.82
    collar = pick(rng, [(0.85, 0.1, 0.12), (0.1, 0.3, 0.85), (0.1, 0.6, 0.2)])
    hf = Frame(c, *fr.p(hx, hy), fr.s * 1.3, fr.f)  # the head drawn larger: its features name the animal
    hf.c.fill(hf.ellipse(0.0, 0.0, 0.16, 0.15), coat, bump=0.08)
    hf.c.fill(hf.box(0.18, 0.05, 0.24, 0.12, r=0.05), lighter(coat, 0.15), bump=0.05)
    hf.c.fill(hf.ellipse(0.3, 0.01, 0.045, 0.035), (0.05, 0.05, 0.05), gloss=0.4)
    hf.c.fill(hf.capsule(0.1, 0.11, 0.27, 0.11, 0.008), (0.2, 0.1, 0.08), shade=0.0)
    if rng.random() < 0.5:
        hf.c.fill(hf.ellipse(0.2, 0.16, 0.04, 0.05), (0.9, 0.4, 0.45), shade=0.3)
    hf.c.fill(hf.ellipse(-0.08, 0.08, 0.075, 0.2, angle=0.25), ear_col, bump=0.04)
    eye(hf, 0.04, -0.04, 0.032)
    fr.c.fill(fr.capsule(hx - 0.2, hy + 0.12, hx - 0.04, hy + 0.26, 0.035), collar, gloss=0.3)  # dogs wear collars
