"""Answer sets: the images an (unlearned) model generated for the protocol's prompts, with the style
and object each prompt named. Read from the original's folder layout or from canvasdata shards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from canvasdata.taxonomy import OBJECTS, UC60

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SEED_RE = re.compile(r"_seed(\d+)$")


@dataclass(frozen=True)
class Answer:
    """One generated image and the prompt's labels."""

    style: str
    object: str
    seed: int
    path: Path | None = None
    data: bytes | None = None


def parse_answer_name(name: str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS) -> tuple[str, str, int]:
    """`{style}_{object}_seed{seed}.jpg` -> (style, object, seed). Style names contain underscores, so
    the name is matched against the label spaces (longest style first), never split on `_`."""
    stem = Path(name).stem
    m = SEED_RE.search(stem)
    if not m:
        raise ValueError(f"{name}: expected '{{style}}_{{object}}_seed{{N}}'")
    head = stem[:m.start()]
    for style in sorted(styles, key=len, reverse=True):
        if head.startswith(style + "_") and head[len(style) + 1:] in objects:
            return style, head[len(style) + 1:], int(m.group(1))
    raise ValueError(f"{name}: no known style and object in {head!r}")


def read_answer_folder(folder: Path | str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS,
                       strict: bool = True) -> list[Answer]:
    """Every `{style}_{object}_seed{seed}.*` image of a folder (files of other names raise unless not strict)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such answer folder")
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            s, o, seed = parse_answer_name(p.name, styles, objects)
        except ValueError:
            if strict:
                raise
            continue
        out.append(Answer(s, o, seed, path=p))
    if not out:
        raise ValueError(f"{folder}: no answer images named {{style}}_{{object}}_seed{{N}}.jpg")
    return out


def read_answer_shards(root: Path | str, split: str | None = None) -> list[Answer]:
    """A canvasdata build used as an answer set (e.g. as the real reference set)."""
    from canvasdata.formats import read_shard
    from canvasdata.manifest import class_names, read_manifest

    root = Path(root)
    m = read_manifest(root)
    styles, objects = class_names(m, "style"), class_names(m, "object")
    out = []
    for shard in m["shards"]:
        if split and shard["split"] != split:
            continue
        for row in read_shard(root / shard["path"]):
            out.append(Answer(styles[row["style"]], objects[row["object"]], int(row["index"]), data=row["image"]))
    return out


def read_answers(source: Path | str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS) -> list[Answer]:
    """A folder of `{style}_{object}_seed{seed}` images, or a canvasdata build directory."""
    source = Path(source)
    if (source / "manifest.json").exists():
        return read_answer_shards(source)
    return read_answer_folder(source, styles, objects)


def read_reference_folder(root: Path | str, exclude_style: str | None = None, exclude_object: str | None = None,
                          indices: Sequence[int] = range(1, 6)) -> list[Answer]:
    """Real images for Frechet distance: images `indices` of every cell of an UnlearnCanvas-layout
    folder `{style}/{object}/{k}.jpg` or a canvasdata build, except the forgotten concept's cells."""
    root = Path(root)
    keep = set(indices)
    if (root / "manifest.json").exists():
        items = [a for a in read_answer_shards(root) if a.seed in keep]
    else:
        items = []
        for style_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for obj_dir in sorted(p for p in style_dir.iterdir() if p.is_dir()):
                for k in sorted(keep):
                    for suffix in IMAGE_SUFFIXES:
                        p = obj_dir / f"{k}{suffix}"
                        if p.exists():
                            items.append(Answer(style_dir.name, obj_dir.name, k, path=p))
                            break
    items = [a for a in items if a.style != exclude_style and a.object != exclude_object]
    if not items:
        raise ValueError(f"{root}: no reference images (indices {sorted(keep)})")
    return items
