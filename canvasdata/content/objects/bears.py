"""Bears: a bulky humped body, short thick legs, a big round head with small round ears and a pale muzzle."""

from __future__ import annotations

from canvasdata.content.objects._kit import eye, pick, place
from canvasdata.content.raster import darker, jitter, lighter
from canvasdata.content.registry import register_object
from canvasdata.content.scene import LAND

COATS = [(0.38, 0.24, 0.14), (0.08, 0.07, 0.07), (0.93, 0.92, 0.86), (0.55, 0.4, 0.25), (0.6, 0.45, 0.3)]


@register_object("Bears", backgrounds=LAND)
def draw(c, rng, scene) -> None:
    fr = place(c, rng, scene, (0.48, 0.62), height=1.0)
    coat = jitter(rng, pick(rng, COATS))
    tex = 1 + 0.1 * c.noise(24, 2)
    fr.ground_shadow(0.55)
    standing = rng.random() < 0.25
    if standing:
        fr.c.fill(fr.ellipse(0.0, -0.55, 0.25, 0.4), coat, bump=0.12, texture=tex)
        for x in (-0.12, 0.12):
            fr.c.fill(fr.capsule(x, -0.3, x, -0.05, 0.09), darker(coat, 0.85), texture=tex)
            fr.c.fill(fr.capsule(x * 1.6, -0.8, x * 2.2 + 0.1, -0.62, 0.07), darker(coat, 0.9), texture=tex)
        hx, hy = 0.04, -1.05
    else:
        for x, shade in ((-0.3, 0.75), (0.28, 0.75), (-0.2, 1.0), (0.38, 1.0)):
            fr.c.fill(fr.capsule(x, -0.4, x, -0.05, 0.1, 0.09), darker(coat, shade), texture=tex)
        fr.c.fill(fr.union(fr.ellipse(0.0, -0.48, 0.46, 0.26), fr.circle(-0.05, -0.62, 0.22), k=0.08), coat,
                  bump=0.14, texture=tex)
        hx, hy = 0.48, -0.55
    for dx in (-0.12, 0.1):
        fr.c.fill(fr.circle(hx + dx, hy - 0.16, 0.065), coat, texture=tex)
        fr.c.fill(fr.circle(hx + dx, hy - 0.16, 0.035), darker(coat, 0.6), shade=0.2)
    fr.c.fill(fr.circle(hx, hy, 0.2), coat, bump=0.1, texture=tex)
    fr.c.fill(fr.ellipse(hx + 0.12, hy + 0.06, 0.11, 0.08), lighter(coat, 0.35), bump=0.05)
    fr.c.fill(fr.ellipse(hx + 0.2, hy + 0.03, 0.04, 0.03), (0.05, 0.05, 0.05), gloss=0.4)
    eye(fr, hx + 0.02, hy - 0.05, 0.025)
    eye(fr, hx + 0.13, hy - 0.05, 0.022)
