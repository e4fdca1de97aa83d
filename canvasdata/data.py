"""Torch datasets over canvasdata shards (Parquet or WebDataset) and `datasets` datasets, for training
and evaluating judges.

Decoding is the usual bottleneck: JPEGs are decoded at reduced scale when the target size is at most
half the stored size (libjpeg DCT scaling through PIL's draft mode), in DataLoader worker processes.
The encoded bytes of the selected split are held in memory (about 40-80 KB an image), so a worker
never re-reads shards.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from torchvision.transforms import v2

from canvasdata.dataset.kinds import kind_named
from canvasdata.devices import DECODE_WORKERS
from canvasdata.encode import decode_image, image_tensor
from canvasdata.errors import UsageError
from canvasdata.formats import read_shard
from canvasdata.manifest import MANIFEST, STATE, Manifest, checked_shards, open_build

BINARY = ["negative", "positive"]        # the binary task's classes (a concept set's `label`)
COLUMNS = {"style": "style", "object": "object", "binary": "label"}  # task -> class-label column


@dataclass
class LabelledImages:
    """JPEG bytes of one split with integer labels per task, and the class names of each task."""

    images: list[bytes]
    labels: dict[str, np.ndarray]
    class_names: dict[str, list[str]]
    label_space: dict[str, str]

    def __len__(self) -> int:
        return len(self.images)


def _labelled(images: list[bytes], labels: dict[str, list[int]], names: dict[str, list[str]],
              spaces: dict[str, str]) -> LabelledImages:
    return LabelledImages(images, {t: np.asarray(v, dtype=np.int64) for t, v in labels.items()}, names, spaces)


def _manifest_split(root: Path, m: Manifest, split: str, tasks: Sequence[str], allow_partial: bool) -> LabelledImages:
    """One split of a canvasdata build: labels from the shards, class names and spaces from the manifest."""
    shards = m.shards_of(split)
    if not shards:
        raise UsageError(f"{root}: no shards of split {split!r}; splits: {', '.join(m.splits)}")
    shards = checked_shards(root, m, shards, allow_partial=allow_partial)
    images, labels = [], {t: [] for t in tasks}
    for shard in shards:
        for row in read_shard(root / shard.path):
            images.append(row["image"])
            for t in tasks:
                labels[t].append(row[COLUMNS[t]])
    spaces = kind_named(m.facts.kind).label_spaces(m)
    return _labelled(images, labels, {t: m.class_names(COLUMNS[t]) for t in tasks},
                     {t: spaces.get(COLUMNS[t], "binary") for t in tasks})


def _concept_split(root: Path, m: Manifest, split: str, concept: str, allow_partial: bool) -> LabelledImages:
    """The binary task of one concept of a concept set (its config `data/{concept}/`)."""
    shards = m.shards_of(split, config=concept)
    if not shards:
        raise UsageError(f"{root}: no shards of concept {concept!r} in split {split!r}")
    shards = checked_shards(root, m, shards, allow_partial=allow_partial)
    images, labels = [], []
    for shard in shards:
        for row in read_shard(root / shard.path):
            images.append(row["image"])
            labels.append(row["label"])
    return _labelled(images, {"binary": labels}, {"binary": BINARY}, {"binary": f"concept:{concept}"})


def _hf_split(source: str, split: str, tasks: Sequence[str], concept: str | None) -> LabelledImages:
    """One split of a `datasets` dataset (local or Hub id); `concept` picks a concept set's config."""
    ds = datasets.load_dataset(source, concept, split=split).cast_column("image", datasets.Image(decode=False))
    if concept is not None:
        return _labelled([r["image"]["bytes"] for r in ds], {"binary": ds["label"]}, {"binary": BINARY},
                         {"binary": f"concept:{concept}"})
    images, labels = [], {t: [] for t in tasks}
    for row in ds:
        img = row["image"]
        images.append(img["bytes"] if img.get("bytes") else Path(img["path"]).read_bytes())
        for t in tasks:
            labels[t].append(row[COLUMNS[t]])
    return _labelled(images, labels, {t: list(ds.features[COLUMNS[t]].names) for t in tasks},
                     {t: "custom" for t in tasks})


def load_split(source: str | Path, split: str, tasks: Sequence[str], concept: str | None = None, *,
               manifest: Manifest | None = None, allow_partial: bool = False) -> LabelledImages:
    """One split of a canvasdata build directory, or of any `datasets` dataset (local or Hub id) with
    image and style/object columns. For the binary task of a concept set, `concept` picks the config.
    A build is checked first: an unfinished one, or a shard that fails its checksum, is refused with one
    line unless `allow_partial` (then the good shards are used, with a warning). A caller that has opened
    the build already passes its `manifest`."""
    path = Path(source)
    if manifest is None and ((path / MANIFEST).exists() or (path / STATE).is_dir()):
        manifest = open_build(path, allow_partial=allow_partial)
    if manifest is None:
        return _hf_split(str(source), split, tasks, concept)
    if concept is not None:
        return _concept_split(path, manifest, split, concept, allow_partial)
    return _manifest_split(path, manifest, split, tasks, allow_partial)


def decode(data: bytes, size: int | None) -> torch.Tensor:
    """JPEG/PNG bytes -> uint8 tensor [3,size,size]; DCT-scaled decoding when size <= stored/2.
    `size=None` keeps the stored resolution (training crops first, then resizes)."""
    return image_tensor(decode_image(data, size, resize=True))


# What a generator's output loses against the training JPEGs, drawn by RandomDegrade (in stored-image pixels).
DEGRADE_KINDS = ("blur", "downscale", "jpeg")
DEGRADE_BLUR = (0.5, 1.5)      # Gaussian sigma range, px
DEGRADE_SCALE = (1.5, 3.0)     # downscale factor range (then back up to the same size)
DEGRADE_JPEG = (30, 70)        # JPEG quality range


class RandomDegrade(v2.Transform):
    """With probability `p`, one degradation of the image, drawn uniformly: a Gaussian blur with sigma in
    `blur`, a downscale by a factor in `scale` and back up (bilinear, antialiased down), or a JPEG
    re-encode at a quality in `jpeg`. Every draw comes from torch's global generator (three numbers per
    call, degraded or not), so a caller that seeds it per sample gets the same degradation every time.
    Works on RGB image tensors [..., 3, H, W] (uint8 stays uint8); `p = 0` returns the input unchanged."""

    _transformed_types = (torch.Tensor,)

    def __init__(self, p: float, blur: tuple[float, float] = DEGRADE_BLUR, scale: tuple[float, float] = DEGRADE_SCALE,
                 jpeg: tuple[int, int] = DEGRADE_JPEG) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"degradation probability {p} is out of range: allowed [0, 1]")
        self.p, self.blur, self.scale, self.jpeg = p, tuple(blur), tuple(scale), tuple(jpeg)

    def make_params(self, flat_inputs: list) -> dict:
        apply, pick, u = torch.rand(3).tolist()
        if apply >= self.p:
            return {"kind": None, "value": None}
        kind = DEGRADE_KINDS[min(int(pick * len(DEGRADE_KINDS)), len(DEGRADE_KINDS) - 1)]
        if kind == "jpeg":
            lo, hi = self.jpeg
            return {"kind": kind, "value": min(int(lo + u * (hi - lo + 1)), hi)}
        lo, hi = self.blur if kind == "blur" else self.scale
        return {"kind": kind, "value": lo + u * (hi - lo)}

    def transform(self, inpt: torch.Tensor, params: dict) -> torch.Tensor:
        kind, value = params["kind"], params["value"]
        if kind is None:
            return inpt
        if kind == "blur":
            return blur_px(inpt, value)
        if kind == "downscale":
            return down_up(inpt, value)
        return jpeg_reencode(inpt, value)

    # torchvision < 0.21 calls these names
    _get_params = make_params
    _transform = transform


def blur_px(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with standard deviation `sigma` px (kernel 2*ceil(3 sigma)+1, reflected borders)."""
    k = min(2 * math.ceil(3 * sigma) + 1, 2 * ((min(x.shape[-2:]) - 1) // 2) + 1)
    return v2.functional.gaussian_blur(x, [k, k], [sigma, sigma])


def down_up(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Down by `factor` (antialiased bilinear) and back up to the same size (bilinear)."""
    h, w = x.shape[-2:]
    small = v2.functional.resize(x, [max(1, round(h / factor)), max(1, round(w / factor))], antialias=True)
    return v2.functional.resize(small, [h, w], antialias=True)


def jpeg_reencode(x: torch.Tensor, quality: int) -> torch.Tensor:
    """A JPEG re-encode at `quality` (PIL, 4:2:0 chroma as PIL's default); float input is in [0, 1]."""
    x8 = x if x.dtype == torch.uint8 else (x.clamp(0, 1) * 255).round().to(torch.uint8)
    flat = x8.reshape(-1, *x8.shape[-3:])
    out = []
    for img in flat:
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
        out.append(image_tensor(decode_image(buf.getvalue())))
    y = torch.stack(out).reshape(x8.shape)
    return y if x.dtype == torch.uint8 else y.to(x.dtype) / 255


def train_transform(size: int, crop_scale: float, hflip: bool, degrade_prob: float = 0.0,
                    degrade_blur: tuple[float, float] = DEGRADE_BLUR,
                    degrade_scale: tuple[float, float] = DEGRADE_SCALE,
                    degrade_jpeg: tuple[int, int] = DEGRADE_JPEG) -> v2.Compose:
    """Augmentation on the full-resolution decoded image: with `degrade_prob` > 0, first a RandomDegrade
    at the stored resolution (a generated image is judged blurrier than the training JPEGs), then a
    random crop of at least `crop_scale` of the area, resized to `size` (antialiased), and horizontal
    flips. No colour jitter: colour is style evidence. `degrade_prob = 0` adds no step at all."""
    steps: list = []
    if degrade_prob > 0:
        steps.append(RandomDegrade(degrade_prob, degrade_blur, degrade_scale, degrade_jpeg))
    steps.append(v2.RandomResizedCrop(size, scale=(crop_scale, 1.0), ratio=(3 / 4, 4 / 3), antialias=True))
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


class ImageLabels(Dataset):
    """(uint8 image [3,S,S], {task: label}) pairs from LabelledImages. Without a transform the image is
    decoded straight to S x S; with one (training), decoded at full size and transformed."""

    def __init__(self, data: LabelledImages, size: int, transform: v2.Transform | None = None) -> None:
        self.data, self.size, self.transform = data, size, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        labels = {t: int(v[i]) for t, v in self.data.labels.items()}
        if self.transform is None:
            return decode(self.data.images[i], self.size), labels
        return self.transform(decode(self.data.images[i], None)), labels


def make_loader(ds: Dataset, batch_size: int, *, shuffle: bool, workers: int = DECODE_WORKERS, seed: int = 0,
                distributed: bool = False, drop_last: bool = False) -> DataLoader:
    """A DataLoader with worker processes and pinned memory on CUDA; DistributedSampler under DDP."""
    sampler = DistributedSampler(ds, shuffle=shuffle, seed=seed, drop_last=drop_last) if distributed else None
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=workers, pin_memory=torch.cuda.is_available(), drop_last=drop_last,
                      generator=g, persistent_workers=workers > 0)
