"""The content engine: procedural object scenes, the "seed images" that styles paint.

Each object class is a module under `canvasdata/content/objects/` that registers a drawing function
with `@register_object(name, backgrounds=...)`; adding a class means adding one module. A scene is
data drawn from the sample's seed (background, light, placement, pose, colours, counts), then
rasterised from signed distance fields, so the same seed gives the same scene at any resolution and a
sample never depends on the other samples of its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from canvasdata.content import objects  # noqa: F401  (importing it registers every object class)
from canvasdata.content.raster import Canvas
from canvasdata.content.registry import ObjectClass, UnknownObjectError, get_object, list_objects, register_object
from canvasdata.content.scene import draw_background, finish


def render_one(name: str, seed: int, size: int, device: torch.device | str = "cpu", *,
               draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One scene: image [3,H,W] in [0,1] and object mask [1,H,W]."""
    cls = get_object(name)
    dev = torch.device(device)
    bg_rng = np.random.default_rng([seed, 0])
    obj_rng = np.random.default_rng([seed, 1])
    light = (float(bg_rng.uniform(-0.8, 0.8)), float(bg_rng.uniform(-0.9, -0.3)))
    c = Canvas(size, dev, bg_rng, light)
    scene = draw_background(c, bg_rng, cls.backgrounds[int(bg_rng.integers(len(cls.backgrounds)))])
    if draw_object:
        c.rng, c.drawing_object = obj_rng, True
        cls.draw(c, obj_rng, scene)
        c.drawing_object = False
    fin_rng = np.random.default_rng([seed, 2])
    c.rng = fin_rng
    finish(c, fin_rng, scene)
    return c.img.clamp(0, 1), c.mask[None]


def render(object_name: str, seeds: Sequence[int], size: int, device: torch.device | str = "cpu", *,
           draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes of `object_name`, one per seed: images [B,3,size,size] in [0,1] and masks [B,1,size,size].

    `draw_object=False` renders the same scenes without the object (zero masks): the twins of
    concept sets differ from the full scenes only where the object and its shadow were.
    """
    get_object(object_name)
    if not 16 <= size <= 4096:
        raise ValueError(f"size {size} is out of range: allowed 16..4096")
    out = [render_one(object_name, int(s), size, device, draw_object=draw_object) for s in seeds]
    return torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out])


__all__ = ["ObjectClass", "UnknownObjectError", "get_object", "list_objects", "register_object", "render",
           "render_one"]
