"""What a text-to-image model learns from: the images and captions of a build's split, decoded once
into one tensor (builds for models are small; a 2,048-image 64 px split is 100 MB as float32), with
each row's style and object names; `exclude` leaves out a style, an object or a combination (a model
that never saw a concept: the retrained reference)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from canvasdata.encode import decode_image, image_tensor
from canvasdata.errors import UsageError
from canvasdata.formats import read_shard
from canvasdata.manifest import Manifest, checked_shards, open_build
from canvasdata.taxonomy import unknown_message


@dataclass
class Captioned:
    """Images in [-1, 1] ([N,3,S,S] float32), their captions and labels."""

    images: torch.Tensor
    prompts: list[str]
    styles: list[str]
    objects: list[str]
    source: str
    recipe_name: str
    recipe_hash: str

    def __len__(self) -> int:
        return len(self.prompts)


def open_model_data(data: Path | str, allow_partial: bool = False) -> Manifest:
    """The manifest of a finished grid build (what `model train` reads); one line naming the problem."""
    root = Path(data)
    if not root.is_dir():
        raise UsageError(f"{root}: no such build directory")
    m = open_build(root, allow_partial=allow_partial)
    if m is None or m.facts.kind != "grid":
        raise UsageError(f"{root}: `model train` needs a finished grid build (style x object images with prompts)")
    return m


def matches(spec: tuple[str, str] | None, style: str, obj: str) -> bool:
    """Whether a row of (style, object) falls under an exclusion ('style', NAME) / ('object', NAME) /
    ('cell', 'STYLE+OBJECT')."""
    if spec is None:
        return False
    domain, name = spec
    if domain == "cell":
        return f"{style}+{obj}" == name
    return (style if domain == "style" else obj) == name


def parse_exclude(spec: str | None, m: Manifest) -> tuple[str, str] | None:
    """'style:NAME', 'object:NAME' or 'style:NAME+object:NAME' checked against the build's classes."""
    if not spec:
        return None
    parts = dict(p.partition(":")[::2] for p in spec.split("+"))
    built = {"style": m.facts.styles, "object": m.facts.objects}
    if not parts or set(parts) - set(built) or len(parts) != len(spec.split("+")):
        raise UsageError(f"exclude {spec!r}: expected style:NAME, object:NAME or style:NAME+object:NAME")
    for domain, name in parts.items():
        if name not in built[domain]:
            raise UsageError(f"exclude {spec!r}: " + unknown_message(name, built[domain], f"{domain}s of the build"))
    if len(parts) == 2:
        return "cell", f"{parts['style']}+{parts['object']}"
    return next(iter(parts.items()))


def load_captioned(data: Path | str, m: Manifest, split: str, resolution: int, exclude: tuple[str, str] | None = None,
                   allow_partial: bool = False, progress: bool = True) -> Captioned:
    """Decode one split of a build at `resolution` with its captions (rows under `exclude` left out)."""
    root = Path(data)
    shards = m.shards_of(split)
    if not shards:
        raise UsageError(f"{root}: no shards of split {split!r}; splits: {', '.join(m.splits)}")
    style_names, object_names = m.class_names("style"), m.class_names("object")
    images, prompts, styles, objects = [], [], [], []
    rows = sum(s.rows for s in shards)
    with tqdm(total=rows, unit="img", desc="decode", disable=not progress) as bar:
        for shard in checked_shards(root, m, shards, allow_partial=allow_partial):
            for row in read_shard(root / shard.path):
                bar.update()
                s, o = style_names[row["style"]], object_names[row["object"]]
                if matches(exclude, s, o):
                    continue
                img = decode_image(row["image"], resolution, resize=True, name=f"{shard.path} row")
                images.append(image_tensor(img))
                prompts.append(row["prompt"])
                styles.append(s)
                objects.append(o)
    if not images:
        raise UsageError(f"{root}: no images left in split {split!r}")
    x = torch.stack(images).float().div_(127.5).sub_(1.0)
    return Captioned(x, prompts, styles, objects, str(root.resolve()), m.recipe_name, m.recipe_hash)


def cell_prompts(data: Captioned, names: Sequence[tuple[str, str]]) -> list[str]:
    """One caption of each (style, object) cell, as the build wrote it."""
    first = {}
    for p, s, o in zip(data.prompts, data.styles, data.objects, strict=True):
        first.setdefault((s, o), p)
    missing = [c for c in names if c not in first]
    if missing:
        raise UsageError(f"no training caption for cells {missing[:3]}")
    return [first[c] for c in names]


def grid_cells(data: Captioned, count: int) -> list[tuple[str, str]]:
    """`count` cells for a sample grid: each style once, objects rotating (a diagonal of the grid)."""
    styles = list(dict.fromkeys(data.styles))
    objects = list(dict.fromkeys(data.objects))
    have = set(zip(data.styles, data.objects, strict=True))
    cells = [(s, objects[(i + k) % len(objects)]) for k in range(len(objects)) for i, s in enumerate(styles)]
    return [c for c in dict.fromkeys(cells) if c in have][:count]


def index_batch(n: int, batch: int, seed: int) -> np.ndarray:
    """`batch` row indices drawn from `seed` alone (so any step's batch is known without its history)."""
    return np.random.default_rng(seed).integers(0, n, size=batch)
