"""Torch datasets over canvasdata shards (Parquet or WebDataset) and `datasets` datasets, for training
and evaluating judges.

Decoding is the usual bottleneck: JPEGs are decoded at reduced scale when the target size is at most
half the stored size (libjpeg DCT scaling through PIL's draft mode), in DataLoader worker processes.
The encoded bytes of the selected split are held in memory (about 40-80 KB an image), so a worker
never re-reads shards.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from canvasdata.formats import read_shard


@dataclass
class LabelledImages:
    """JPEG bytes of one split with integer labels per task, and the class names of each task."""

    images: list[bytes]
    labels: dict[str, np.ndarray]
    class_names: dict[str, list[str]]
    label_space: dict[str, str]

    def __len__(self) -> int:
        return len(self.images)


def _manifest_split(root: Path, split: str, tasks: Sequence[str]) -> LabelledImages:
    from canvasdata.manifest import read_manifest

    m = read_manifest(root)
    shards = [s for s in m["shards"] if s["split"] == split]
    if not shards:
        raise ValueError(f"{root}: no shards of split {split!r}; splits: {', '.join(m['splits'])}")
    kind = m["recipe"].get("kind", "grid")
    columns = {"style": "style", "object": "object", "binary": "label"}
    images, labels = [], {t: [] for t in tasks}
    for shard in shards:
        for row in read_shard(root / shard["path"]):
            images.append(row["image"])
            for t in tasks:
                labels[t].append(row[columns[t]])
    names, spaces = {}, {}
    for t in tasks:
        feat = m["features"][columns[t]]
        names[t] = list(feat["names"])
        if t == "binary":
            spaces[t] = f"concept:{m['recipe']['concepts'][0]['name']}" if kind == "concepts" else "binary"
        else:
            spaces[t] = m["recipe"][f"{t}_space"]["name"]
    return LabelledImages(images, {t: np.asarray(v, dtype=np.int64) for t, v in labels.items()}, names, spaces)


def _hf_split(source: str, split: str, tasks: Sequence[str]) -> LabelledImages:
    import datasets

    ds = datasets.load_dataset(source, split=split)
    ds = ds.cast_column("image", datasets.Image(decode=False))
    images, labels = [], {t: [] for t in tasks}
    for row in ds:
        img = row["image"]
        images.append(img["bytes"] if img.get("bytes") else Path(img["path"]).read_bytes())
        for t in tasks:
            labels[t].append(row[t if t != "binary" else "label"])
    names = {t: list(ds.features[t if t != "binary" else "label"].names) for t in tasks}
    return LabelledImages(images, {t: np.asarray(v, dtype=np.int64) for t, v in labels.items()}, names,
                          {t: "custom" for t in tasks})


def load_split(source: str | Path, split: str, tasks: Sequence[str], concept: str | None = None) -> LabelledImages:
    """One split of a canvasdata build directory, or of any `datasets` dataset (local or Hub id) with
    image and style/object columns. For the binary task of a concept set, `concept` picks the config."""
    path = Path(source)
    if (path / "manifest.json").exists():
        if concept is not None:
            data = _concept_split(path, split, concept)
            return data
        return _manifest_split(path, split, tasks)
    if concept is not None:
        import datasets

        ds = datasets.load_dataset(str(source), concept, split=split).cast_column("image", datasets.Image(decode=False))
        return LabelledImages([r["image"]["bytes"] for r in ds], {"binary": np.asarray(ds["label"], dtype=np.int64)},
                              {"binary": ["negative", "positive"]}, {"binary": f"concept:{concept}"})
    return _hf_split(str(source), split, tasks)


def _concept_split(root: Path, split: str, concept: str) -> LabelledImages:
    from canvasdata.manifest import read_manifest

    m = read_manifest(root)
    shards = [s for s in m["shards"] if s["split"] == split and s["path"].startswith(f"data/{concept}/")]
    if not shards:
        raise ValueError(f"{root}: no shards of concept {concept!r} in split {split!r}")
    images, labels = [], []
    for shard in shards:
        for row in read_shard(root / shard["path"]):
            images.append(row["image"])
            labels.append(row["label"])
    return LabelledImages(images, {"binary": np.asarray(labels, dtype=np.int64)},
                          {"binary": ["negative", "positive"]}, {"binary": f"concept:{concept}"})


def decode(data: bytes, size: int | None) -> torch.Tensor:
    """JPEG/PNG bytes -> uint8 tensor [3,size,size]; DCT-scaled decoding when size <= stored/2.
    `size=None` keeps the stored resolution (training crops first, then resizes)."""
    img = Image.open(io.BytesIO(data))
    if size is not None and img.format == "JPEG":
        img.draft("RGB", (size, size))
    img = img.convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC, reducing_gap=None)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def train_transform(size: int, crop_scale: float, hflip: bool) -> v2.Compose:
    """Augmentation on the full-resolution decoded image: a random crop of at least `crop_scale` of the
    area, resized to `size` (antialiased), and horizontal flips. No colour jitter: colour is style evidence."""
    steps: list = [v2.RandomResizedCrop(size, scale=(crop_scale, 1.0), ratio=(3 / 4, 4 / 3), antialias=True)]
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


def make_loader(ds: Dataset, batch_size: int, *, shuffle: bool, workers: int = 2, seed: int = 0,
                distributed: bool = False, drop_last: bool = False) -> DataLoader:
    """A DataLoader with worker processes and pinned memory on CUDA; DistributedSampler under DDP."""
    sampler = None
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(ds, shuffle=shuffle, seed=seed, drop_last=drop_last)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=workers, pin_memory=torch.cuda.is_available(), drop_last=drop_last,
                      generator=g, persistent_workers=workers > 0)
