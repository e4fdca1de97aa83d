"""How answer and reference images become judge and Inception inputs, one way per protocol option
(`canvasdata.evaluate.protocol`), as datasets that decode in DataLoader workers.

Judge inputs (`judge_resize`), uint8 [3, S, S] for each judge input size S:
- `torchvision-bilinear`: the fully decoded image through torchvision `Resize((S, S))` (on a PIL
  image: PIL bilinear, antialiased), as the original `accuracy.py` does before `ToTensor` and
  `Normalize` (the judge normalises itself).
- `pil-bicubic-draft`: JPEG draft decoding at the smallest scale of at least the largest S, then PIL
  bicubic: faster to decode, and the original never did it.

Inception inputs (`inception_pipeline`), float [3, 299, 299] in [0, 1]:
- `original`: as the original `fid.py`: the image resized to 512 x 512 (bilinear without antialias,
  rounded to 8 bits with halves up, as OpenCV's `cv2.resize` on the uint8 image; a 512 x 512 image is left as it is),
  scaled to [0, 1], then resized to 299 x 299 (bilinear on floats, as `cv2.resize` on float32).
  OpenCV computes the 8-bit step in fixed point, so for images of another size than 512 a pixel may
  differ from it by one level; answer sets and the UnlearnCanvas images are 512 x 512.
- `canvasdata`: JPEG draft decoding, then PIL bicubic to 299.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from canvasdata.encode import decode_image, image_tensor
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer
from canvasdata.evaluate.protocol import INCEPTION_PIPELINES, JUDGE_RESIZES

INCEPTION_SIZE = 299
ORIGINAL_LOAD_SIZE = 512  # fid.py resizes every image to 512 x 512 before its 299 x 299 resize


def open_image(answer: Answer, draft: int | None = None) -> Image.Image:
    """The answer's image as RGB (`encode.decode_image`); with `draft`, JPEG decoding at the smallest scale
    of at least draft x draft. A missing, unreadable or oversized image is one error naming the answer."""
    return decode_image(answer.data if answer.data is not None else answer.path, draft, draft=draft is not None,
                        name=answer.name)


def resize_for_judge(img: Image.Image, size: int, mode: str) -> torch.Tensor:
    """uint8 [3, size, size] from a decoded image, resized as `mode` says (see the module docstring)."""
    if mode == "torchvision-bilinear":
        return image_tensor(transforms.Resize((size, size))(img))
    if mode == "pil-bicubic-draft":
        return image_tensor(img.resize((size, size), Image.BICUBIC))
    raise UsageError(f"judge resize {mode!r}: allowed {', '.join(JUDGE_RESIZES)}")


def original_load(x: torch.Tensor) -> torch.Tensor:
    """float [N, 3, 512, 512] of uint8 levels as `fid.py`'s `cv2.resize(img, (512, 512))` gives them: bilinear
    without antialias, and halves rounded up as OpenCV's fixed-point uint8 path does (torch's `round` would
    take them to even: at 1024 -> 512 px one value in eight differed by one level)."""
    if x.shape[-2:] == (ORIGINAL_LOAD_SIZE, ORIGINAL_LOAD_SIZE):
        return x
    y = F.interpolate(x, size=(ORIGINAL_LOAD_SIZE, ORIGINAL_LOAD_SIZE), mode="bilinear", align_corners=False,
                      antialias=False)
    return torch.floor(y + 0.5).clamp(0, 255)


def original_inception_input(img: Image.Image) -> torch.Tensor:
    """float [3, 299, 299] in [0, 1] as the original `fid.py` prepares an image (module docstring)."""
    x = original_load(image_tensor(img).float().unsqueeze(0))
    x = F.interpolate(x / 255, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False,
                      antialias=False)
    return x[0]


def inception_input(answer: Answer, pipeline: str) -> torch.Tensor:
    """float [3, 299, 299] in [0, 1]: the Inception input of one image under `pipeline`."""
    if pipeline == "original":
        return original_inception_input(open_image(answer))
    if pipeline == "canvasdata":
        img = open_image(answer, draft=INCEPTION_SIZE).resize((INCEPTION_SIZE, INCEPTION_SIZE), Image.BICUBIC)
        return image_tensor(img).float() / 255
    raise UsageError(f"Inception pipeline {pipeline!r}: allowed {', '.join(INCEPTION_PIPELINES)}")


class JudgeInputs(Dataset):
    """Answer images as {size: uint8 [3, size, size]} for every judge input size, each resized from
    the decoded image as `mode` says."""

    def __init__(self, answers: Sequence[Answer], sizes: Sequence[int], mode: str) -> None:
        if mode not in JUDGE_RESIZES:
            raise UsageError(f"judge resize {mode!r}: allowed {', '.join(JUDGE_RESIZES)}")
        self.answers, self.sizes, self.mode = list(answers), sorted({int(s) for s in sizes}), mode

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> dict[int, torch.Tensor]:
        draft = max(self.sizes) if self.mode == "pil-bicubic-draft" else None
        img = open_image(self.answers[i], draft)
        return {s: resize_for_judge(img, s, self.mode) for s in self.sizes}


class InceptionInputs(Dataset):
    """Answer images as Inception inputs (float [3, 299, 299] in [0, 1]) under `pipeline`."""

    def __init__(self, answers: Sequence[Answer], pipeline: str) -> None:
        if pipeline not in INCEPTION_PIPELINES:
            raise UsageError(f"Inception pipeline {pipeline!r}: allowed {', '.join(INCEPTION_PIPELINES)}")
        self.answers, self.pipeline = list(answers), pipeline

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> torch.Tensor:
        return inception_input(self.answers[i], self.pipeline)
