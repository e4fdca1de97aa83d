"""`source = "photos"`: content from a folder of photographs, `{object}/*.{jpg,jpeg,png,webp}`.

Image k of an object is the k-th usable file of its folder in sorted file-name order. Files are
centre-cropped to a square and resized (antialiased), EXIF orientation honoured. Unreadable files,
non-image files and images smaller than `min_size` are reported by name; they are skipped only when
the recipe says `skip_bad = true`. Photos carry no segmentation, so masks are all ones and concept
sets with object targets cannot use this source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from canvasdata.recipes import Recipe
from canvasdata.sources import register_source

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _field(recipe: Recipe, key: str, kind: type, default=...):
    value = recipe.content.option(key, None)
    if value is None:
        if default is ...:
            raise ValueError(f"{recipe.source}: field 'content.{key}': is required for source = "
                             f"{recipe.content.source!r}")
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{recipe.source}: field 'content.{key}': expected {names}, got {value!r}")
    return value


def load_photo(path: Path, size: int) -> np.ndarray:
    """Open, upright (EXIF), centre-crop to a square and resize to size x size; uint8 HxWx3."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        return np.asarray(img.resize((size, size), Image.LANCZOS))


class PhotoContent:
    """Photos from `content.path`/{object}/, checked before any work starts."""

    supports_removal = False

    def __init__(self, recipe: Recipe) -> None:
        root = Path(_field(recipe, "path", str))
        if not root.is_absolute() and Path(recipe.source).exists():
            root = Path(recipe.source).resolve().parent / root
        self.root = root
        self.min_size = _field(recipe, "min_size", int, 64)
        skip_bad = _field(recipe, "skip_bad", bool, False)
        self.files: dict[str, list[Path]] = {}
        self.skipped: list[str] = []
        bad: list[str] = []
        for obj in recipe.objects:
            folder = root / obj
            if not folder.is_dir():
                raise ValueError(f"{recipe.source}: field 'content.path': no folder {folder} for object {obj!r}")
            usable = []
            for p in sorted(folder.iterdir()):
                if p.is_dir() or p.name.startswith("."):
                    continue
                problem = self._check(p)
                if problem:
                    bad.append(f"{p}: {problem}")
                else:
                    usable.append(p)
            if len(usable) < recipe.images_per_cell and (skip_bad or not bad):
                raise ValueError(f"{recipe.source}: {folder} has {len(usable)} usable photos; images_per_cell is "
                                 f"{recipe.images_per_cell}")
            self.files[obj] = usable
        if bad and not skip_bad:
            raise ValueError(f"{recipe.source}: {len(bad)} unusable file(s) (set content.skip_bad = true to skip "
                             "them):\n  " + "\n  ".join(bad))
        self.skipped = bad

    def _check(self, p: Path) -> str:
        if p.suffix.lower() not in SUFFIXES:
            return f"not an image file (allowed: {', '.join(SUFFIXES)})"
        try:
            with Image.open(p) as img:
                img.verify()
            with Image.open(p) as img:
                w, h = ImageOps.exif_transpose(img).size
        except (OSError, ValueError, SyntaxError) as e:
            return f"unreadable ({e})"
        if min(w, h) < self.min_size:
            return f"too small ({w}x{h} < min_size {self.min_size})"
        return ""

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int, device: torch.device,
               *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        if not draw_object:
            raise ValueError("photos cannot be rendered without their object")
        arr = np.stack([load_photo(self.files[obj][k - 1], size) for k in indices])
        images = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255).to(device)
        return images, torch.ones(len(indices), 1, size, size, device=device)

    def describe(self) -> dict:
        return {"source": "photos", "path": str(self.root), "min_size": self.min_size,
                "photos": {o: len(f) for o, f in self.files.items()}, "skipped": self.skipped}


register_source("photos")(PhotoContent)
