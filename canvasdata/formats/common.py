"""What every format (and every build file) shares: atomic writes, atomic JSON, checksums, the shard record."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from datasets import ClassLabel, Features
from PIL import Image

from canvasdata.errors import CanvasdataError
from canvasdata.folders import temp_path


class FormatError(CanvasdataError, RuntimeError):
    """A shard that cannot be written or read; the message names the file."""


@dataclass
class ShardRecord:
    """What the manifest keeps of a shard: where, how big, its checksum and label counts."""

    path: str
    rows: int
    bytes: int
    sha256: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class LabelCounter:
    """Counts rows per class name of every class-label column, and per split."""

    def __init__(self, features: Features) -> None:
        self.names = {k: v.names for k, v in features.items() if isinstance(v, ClassLabel)}
        self.rows = 0
        self.counts: dict[str, Counter] = {k: Counter() for k in [*self.names, "split"]}

    def add(self, row: dict) -> None:
        self.rows += 1
        for column, names in self.names.items():
            self.counts[column][names[row[column]]] += 1
        if "split" in row:
            self.counts["split"][row["split"]] += 1

    def result(self) -> dict[str, dict[str, int]]:
        return {k: dict(sorted(v.items())) for k, v in self.counts.items() if v}


def fsync_file(path: Path) -> None:
    """Flush a written file to the disk (before it is renamed into place)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: Path, error: type[Exception] = FormatError) -> Iterator[Path]:
    """A temporary sibling (`.NAME.PID.tmp`: `folders.temp_path`) to write `path` through, for writers that
    take a path (torch, safetensors, PIL); on success it is fsynced and renamed to `path`, so no partial file
    ever stands under a final name. On any failure the temporary file is removed; a full disk becomes `error`
    saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise error(f"{path}: disk full while writing; the partial file was removed. "
                        "Free some space and rerun the same command to resume.") from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary file object that becomes `path` only when the block succeeds (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def read_json(path: Path, error: type[Exception], missing: str) -> Any:
    """Read a JSON file of an artifact; a missing file raises `error(missing)` and malformed JSON
    `error` naming the file, so every artifact reader fails in one line with its own error type."""
    if not path.exists():
        raise error(missing)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{path}: unreadable ({e})") from None


def write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text (reports, cards): a reader never sees half a file."""
    with atomic_writer(path) as f:
        f.write(text.encode("utf-8"))


def save_image(img: Image.Image, path: Path, **params: Any) -> None:
    """Atomically save a picture (contact sheets, figures) in the format its file name says (.png, .jpg,
    ...); `params` go to PIL's `save`. An extension PIL does not know is a FormatError naming the file."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None:
        raise FormatError(f"{path}: not an image file name PIL can write (use .png or .jpg)")
    with atomic_path(Path(path)) as tmp:
        img.save(tmp, format=fmt, **params)


def write_json(path: Path, data: object) -> None:
    """Atomically write pretty JSON (two-space indent, keys in insertion order, a final newline)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
