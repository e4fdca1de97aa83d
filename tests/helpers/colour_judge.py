"""A rule-based judge with the judges' contract (tests of scoring arithmetic): it reads the style class id
from an image's red level and the object class id from its green level, and `colour_image` draws the image
it reads as a given (style, object)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from canvasdata.taxonomy import OBJECTS, UC50

STYLE_STEP, OBJECT_STEP = 5, 12  # the fake judge reads class ids from the red and green levels


class ColourJudge:
    """A deterministic judge with the judges' contract: style = round(red / 5), object = round(green / 12)."""

    tasks = ["style", "object"]
    class_names = {"style": list(UC50), "object": list(OBJECTS)}
    label_space = {"style": "uc50", "object": "objects"}
    image_size = 16
    mean = std = (0.5, 0.5, 0.5)

    def logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        assert x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1
        m = x.mean((2, 3)) * 255
        s = (m[:, 0] / STYLE_STEP).round().long().clamp(0, 50)
        o = (m[:, 1] / OBJECT_STEP).round().long().clamp(0, 19)
        return {"style": F.one_hot(s, 51).float(), "object": F.one_hot(o, 20).float()}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.std((2, 3)), x.amax((2, 3))], 1)


def colour_image(style: str, obj: str, noise: int = 0) -> Image.Image:
    """An image the ColourJudge classifies as (style, obj); `noise` varies it for FD."""
    rng = np.random.default_rng(noise)
    a = np.zeros((16, 16, 3), np.uint8)
    a[..., 0], a[..., 1] = UC50.index(style) * STYLE_STEP, OBJECTS.index(obj) * OBJECT_STEP
    a[..., 2] = rng.integers(0, 255)
    return Image.fromarray(a)
