"""`source = "photos"`: content from a folder of photographs, `{object}/*.{jpg,jpeg,png,webp}`.

Image k of an object is the k-th usable file of its folder in sorted file-name order. Files are
centre-cropped to a square and resized (antialiased), EXIF orientation honoured. Unreadable files,
non-image files and images smaller than `min_size` are reported by name; they are skipped only when
the recipe says `skip_bad = true`. Photos carry no segmentation, so masks are all ones and concept
sets with object targets cannot use this source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from canvasdata.encode import ImageError, decode_image, opened_image
from canvasdata.fields import RecipeError
from canvasdata.formats.common import sha256_file
from canvasdata.recipes import Recipe
from canvasdata.recipes.options import PhotoOptions, read_options

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def load_photo(path: Path, size: int) -> np.ndarray:
    """Open, upright (EXIF), centre-crop to a square and resize to size x size; uint8 HxWx3."""
    return np.asarray(decode_image(path, size, draft=False, upright=True, crop_square=True, resize=True,
                                   resample=Image.Resampling.LANCZOS))


class PhotoContent:
    """Photos from `content.path`/{object}/, checked before any work starts."""

    options = PhotoOptions
    name = options.backend
    supports_removal = False

    def __init__(self, recipe: Recipe) -> None:
        opts = read_options(PhotoOptions, recipe.content.fields(recipe.source))
        root = Path(opts.path)   # made absolute against the recipe file when it was read (recipes.load)
        self.root = root
        self.min_size = opts.min_size
        skip_bad = opts.skip_bad
        self.files: dict[str, list[Path]] = {}
        self.skipped: list[str] = []
        bad: list[str] = []
        for obj in recipe.objects:
            folder = root / obj
            if not folder.is_dir():
                raise RecipeError(f"{recipe.source}: field 'content.path': no folder {folder} for object {obj!r}")
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
                raise RecipeError(f"{recipe.source}: {folder} has {len(usable)} usable photos; images_per_cell is "
                                 f"{recipe.images_per_cell}")
            self.files[obj] = usable
        if bad and not skip_bad:
            raise RecipeError(f"{recipe.source}: {len(bad)} unusable file(s) (set content.skip_bad = true to skip "
                             "them):\n  " + "\n  ".join(bad))
        self.skipped = bad

    def _check(self, p: Path) -> str:
        """Why a file cannot be used ("" when it can): suffix, readability, size."""
        if p.suffix.lower() not in SUFFIXES:
            return f"not an image file (allowed: {', '.join(SUFFIXES)})"
        try:
            with opened_image(p) as img:
                img.verify()
            with opened_image(p) as img:
                w, h = ImageOps.exif_transpose(img).size
        except ImageError as e:
            return str(e).removeprefix(f"{p}: ")
        except (OSError, ValueError, SyntaxError) as e:
            return f"unreadable ({e})"
        if min(w, h) < self.min_size:
            return f"too small ({w}x{h} < min_size {self.min_size})"
        return ""

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int, device: torch.device,
               *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Photo k of the object's folder for content index k; masks are all ones."""
        if not draw_object:
            raise RecipeError("photos cannot be rendered without their object")
        arr = np.stack([load_photo(self.files[obj][k - 1], size) for k in indices])
        images = torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255).to(device)
        return images, torch.ones(len(indices), 1, size, size, device=device)

    def fingerprint(self) -> dict:
        """sha256 over every photo used (its path under the folder and its own sha256), so an edited, added or
        removed photo changes it."""
        h = hashlib.sha256()
        for obj, files in sorted(self.files.items()):
            for p in files:
                h.update(f"{obj}/{p.name}\0{sha256_file(p)}\n".encode())
        return {"photos_sha256": h.hexdigest(), "photos": sum(map(len, self.files.values()))}

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        return {"source": self.name, "path": str(self.root), "min_size": self.min_size,
                "photos": {o: len(f) for o, f in self.files.items()}, "skipped": self.skipped}
