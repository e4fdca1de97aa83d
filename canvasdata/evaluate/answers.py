"""Answer sets: the images an (unlearned) model generated for the protocol's prompts, with the style
and object each prompt named. Read from the original's folder layout, or from canvasdata builds
(a manifest, or any `data/*.parquet` carrying the `datasets` feature metadata).

An answer set holds one image per (style, object, seed): the same answer twice (`.jpg` and `.png`) is
an error naming both, and so is an answer-named file in a format not read (`.bmp`, `.gif`, ...); other
files (reports, JSON) are left alone. Every image's header is read up front: an unreadable image or a
decompression bomb is an error naming it, and images that are not RGB are named by mode in one warning
(they are converted to RGB when judged)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from canvasdata.encode import image_mode
from canvasdata.errors import UsageError
from canvasdata.formats import read_shard
from canvasdata.manifest import MANIFEST, STATE, checked_shards, open_build
from canvasdata.taxonomy import MAX_LISTED, OBJECTS, UC60

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SEED_RE = re.compile(r"_seed(\d+)$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """One image and the labels of the prompt that produced it. `seed` is the seed in the file name,
    or the content index for images read from a build. The image is a file (`path`) or bytes (`data`)."""

    style: str
    object: str
    seed: int
    path: Path | None = None
    data: bytes | None = None

    @property
    def name(self) -> str:
        """How errors name this image."""
        return str(self.path) if self.path is not None else f"{self.style}/{self.object}/{self.seed}"

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes an answer one of a kind: (style, object, seed)."""
        return self.style, self.object, self.seed


def listed(names: Sequence[str], shown: int = MAX_LISTED) -> str:
    """'a, b, c' with at most `shown` names, then how many more."""
    more = f", ... ({len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_unique(answers: Sequence[Answer], where: Path | str) -> None:
    """One answer per (style, object, seed): a second one is an error naming both images."""
    first: dict[tuple[str, str, int], Answer] = {}
    twice = []
    for a in answers:
        if a.key in first:
            twice.append(f"{first[a.key].name} and {a.name}")
        first.setdefault(a.key, a)
    if twice:
        raise UsageError(f"{where}: {len(twice)} answer(s) given twice (one image per style, object and seed; "
                         f"keep one of each): {listed(twice)}")


def check_images(answers: Sequence[Answer], where: Path | str) -> None:
    """Read every image's header: unreadable images and decompression bombs are errors naming them;
    images that are not RGB are counted by mode in one warning (judging converts them to RGB)."""
    modes = Counter(image_mode(a.data if a.data is not None else a.path, a.name) for a in answers)
    other = {mode: n for mode, n in sorted(modes.items()) if mode != "RGB"}
    if other:
        log.warning("%s: %d of %d images are not RGB and are converted to RGB (%s)", where, sum(other.values()),
                    len(answers), ", ".join(f"{mode}: {n}" for mode, n in other.items()))


def parse_answer_name(name: str, styles: Sequence[str] = UC60,
                      objects: Sequence[str] = OBJECTS) -> tuple[str, str, int]:
    """`{style}_{object}_seed{seed}.jpg` -> (style, object, seed). Style names contain underscores, so
    the name is matched against the label spaces (the longest known style followed by `_` and a
    known object), never split on `_`."""
    stem = Path(name).stem
    m = SEED_RE.search(stem)
    if not m:
        raise UsageError(f"{name}: expected '{{style}}_{{object}}_seed{{N}}'")
    head = stem[:m.start()]
    for style in sorted(styles, key=len, reverse=True):
        if head.startswith(style + "_") and head[len(style) + 1:] in objects:
            return style, head[len(style) + 1:], int(m.group(1))
    raise UsageError(f"{name}: no known style and object in {head!r}")


def read_answer_folder(folder: Path | str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS,
                       strict: bool = True) -> list[Answer]:
    """Every `{style}_{object}_seed{seed}.*` image of a folder, sorted by name; an image file of any
    other name is an error unless `strict` is False (then it is skipped). An answer given twice (any
    extensions) and answer-named files in a format not read (`IMAGE_SUFFIXES`) are errors naming them;
    images are checked as `check_images` says."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such answer folder")
    out, unsupported = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            if SEED_RE.search(p.stem):
                unsupported.append(p.name)
            continue
        try:
            s, o, seed = parse_answer_name(p.name, styles, objects)
        except ValueError:
            if strict:
                raise
            continue
        out.append(Answer(s, o, seed, path=p))
    if unsupported:
        raise UsageError(f"{folder}: {len(unsupported)} answer file(s) in a format not read (allowed: "
                         f"{', '.join(IMAGE_SUFFIXES)}; convert them to PNG): {listed(unsupported)}")
    if not out:
        raise UsageError(f"{folder}: no answer images named {{style}}_{{object}}_seed{{N}}.jpg")
    check_unique(out, folder)
    check_images(out, folder)
    return out


Keep = Callable[[str, str, int], bool]


def _feature_names(schema: pa.Schema, path: Path) -> dict[str, list[str]]:
    """Class names of the `style` and `object` columns (both in `schema`), as `datasets` reads a Parquet
    file's features (`Features.from_arrow_schema`, from the schema's `huggingface` metadata)."""
    # the label columns alone: another column may have no datasets type (a map) and is not needed here
    labels = pa.schema([schema.field(c) for c in ("style", "object")], metadata=schema.metadata)
    try:
        feats = datasets.Features.from_arrow_schema(labels)
    except (KeyError, TypeError, ValueError) as e:  # metadata that is not datasets' features
        reason = str(e).partition("\n")[0] or type(e).__name__
        raise UsageError(f"{path}: unreadable datasets features in the Parquet schema metadata ({reason})") from None
    if not all(isinstance(feats.get(c), datasets.ClassLabel) for c in ("style", "object")):
        seen = ", ".join(f"{c} is {feats.get(c)!r}" for c in ("style", "object"))
        raise UsageError(f"{path}: no class names for 'style' and 'object' in the Parquet schema metadata ({seen}); "
                         "write it with datasets.Features(...).arrow_schema (as canvasdata builds do)")
    return {c: list(feats[c].names) for c in ("style", "object")}


def _read_parquet(path: Path, names: dict[str, list[str]] | None, keep: Keep | None) -> list[Answer]:
    """Rows of one Parquet file; the labels are read first and only the kept rows' images loaded."""
    try:
        pf = pq.ParquetFile(path)
        cols = [c for c in ("style", "object", "index") if c in pf.schema_arrow.names]
        if cols[:2] != ["style", "object"] or "image" not in pf.schema_arrow.names:
            raise UsageError(f"{path}: expected columns image, style and object, found {pf.schema_arrow.names}")
        names = names or _feature_names(pf.schema_arrow, path)
        labels = pf.read(columns=cols).to_pydict()
        index = labels.get("index", range(1, pf.metadata.num_rows + 1))
        rows = [(i, names["style"][s], names["object"][o], int(k))
                for i, (s, o, k) in enumerate(zip(labels["style"], labels["object"], index, strict=True))]
        rows = [r for r in rows if keep is None or keep(r[1], r[2], r[3])]
        if not rows:
            return []
        images = pf.read(columns=["image"]).column("image").take([r[0] for r in rows]).to_pylist()
    except OSError as e:
        raise UsageError(f"{path}: unreadable Parquet file ({e})") from None
    out = []
    for (_, s, o, k), img in zip(rows, images, strict=True):
        if isinstance(img, dict) and img.get("bytes") is not None:
            out.append(Answer(s, o, k, data=img["bytes"]))
        elif isinstance(img, dict) and img.get("path"):
            out.append(Answer(s, o, k, path=Path(img["path"])))
        else:
            raise UsageError(f"{path}: row {k} of {s}/{o} has neither image bytes nor a path")
    return out


def read_answer_shards(root: Path | str, split: str | None = None, keep: Keep | None = None) -> list[Answer]:
    """A canvasdata build (or any directory of `data/*.parquet` with the `datasets` metadata) used as
    an answer or reference set; `keep(style, object, index)` selects rows before images are loaded. A build
    is checked first: an unfinished one, or a shard that fails its checksum, is refused in one line."""
    root = Path(root)
    out: list[Answer] = []
    m = open_build(root) if (root / MANIFEST).exists() or (root / STATE).is_dir() else None
    if m is not None:
        names = {c: m.class_names(c) for c in ("style", "object")}
        for shard in checked_shards(root, m, m.shards_of(split)):
            path = root / shard.path
            if path.suffix == ".parquet":
                out += _read_parquet(path, names, keep)
                continue
            for row in read_shard(path):
                a = Answer(names["style"][row["style"]], names["object"][row["object"]], int(row["index"]),
                           data=row["image"])
                if keep is None or keep(a.style, a.object, a.seed):
                    out.append(a)
        return out
    files = sorted((root / "data").rglob("*.parquet")) if (root / "data").is_dir() else []
    if not files:
        raise UsageError(f"{root}: neither a manifest.json nor data/*.parquet")
    for f in files:
        if split is None or f.name.startswith(f"{split}-"):
            out += _read_parquet(f, None, keep)
    return out


def is_build(path: Path | str) -> bool:
    """True for a canvasdata build or a directory of `data/*.parquet` shards."""
    path = Path(path)
    return (path / MANIFEST).exists() or ((path / "data").is_dir() and any((path / "data").rglob("*.parquet")))


def read_answers(source: Path | str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS,
                 split: str | None = None) -> list[Answer]:
    """A folder of `{style}_{object}_seed{seed}` images, or a build directory (see `read_answer_shards`;
    `split` takes one of its splits, e.g. the held-out images a judge never saw)."""
    if not is_build(source):
        if split is not None:
            raise UsageError(f"{source}: --split {split!r} applies to a build, and this is a folder of answers")
        return read_answer_folder(source, styles, objects)
    answers = read_answer_shards(source, split)
    if not answers:
        raise UsageError(f"{source}: no images in split {split!r}")
    check_unique(answers, source)
    check_images(answers, source)
    return answers


def _reference_folder(root: Path, keep: Keep) -> list[Answer]:
    """The kept images of an UnlearnCanvas-layout folder `{style}/{object}/{k}.jpg`; an image named
    `{k}` in a format not read is an error naming it."""
    items, unsupported = [], []
    for style_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for obj_dir in sorted(p for p in style_dir.iterdir() if p.is_dir()):
            for p in sorted(obj_dir.iterdir()):
                if not p.stem.isdigit() or p.name.startswith("."):
                    continue
                if p.suffix.lower() not in IMAGE_SUFFIXES:
                    unsupported.append(str(p.relative_to(root)))
                elif keep(style_dir.name, obj_dir.name, int(p.stem)):
                    items.append(Answer(style_dir.name, obj_dir.name, int(p.stem), path=p))
    if unsupported:
        raise UsageError(f"{root}: {len(unsupported)} reference image(s) in a format not read (allowed: "
                         f"{', '.join(IMAGE_SUFFIXES)}): {listed(unsupported)}")
    return items


def read_reference(root: Path | str, keep: Keep) -> list[Answer]:
    """Real images for Frechet distance and KID, selected by `keep(style, object, index)`: from an
    UnlearnCanvas-layout folder `{style}/{object}/{k}.jpg`, or from a build; checked as answers are
    (`check_unique`, `check_images`)."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: no such reference directory")
    items = read_answer_shards(root, keep=keep) if is_build(root) else _reference_folder(root, keep)
    if not items:
        raise UsageError(f"{root}: no reference images selected (expected {{style}}/{{object}}/{{k}}.jpg or a build)")
    check_unique(items, root)
    check_images(items, root)
    return items
