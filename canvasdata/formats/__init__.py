"""Shard writers and readers (Parquet, WebDataset) and the folder-layout export.

Every format writes atomically: rows go to a temporary file inside the output directory, which is
fsynced and renamed to its final name only when complete. A full disk removes the temporary file and
raises a FormatError that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from canvasdata.formats.common import FormatError, ShardRecord, atomic_writer, sha256_file
from canvasdata.formats.schema import ROW_FIELDS, features_for

EXTENSIONS = {"parquet": ".parquet", "webdataset": ".tar"}


def shard_filename(split: str, i: int, n: int, fmt: str) -> str:
    """`data/{split}-{i:05d}-of-{n:05d}.{ext}`: the Hub infers split names from it."""
    return f"data/{split}-{i:05d}-of-{n:05d}{EXTENSIONS[fmt]}"


def write_shard(fmt: str, path: Path, rows: Iterable[dict], features, **options) -> ShardRecord:
    """Write one shard of rows in `fmt`, atomically; returns its checksum record."""
    if fmt == "parquet":
        from canvasdata.formats.parquet import write_parquet

        return write_parquet(path, rows, features, **options)
    if fmt == "webdataset":
        from canvasdata.formats.webdataset import write_tar

        return write_tar(path, rows, features)
    raise FormatError(f"unknown format {fmt!r}; allowed: {', '.join(EXTENSIONS)}")


def read_shard(path: Path, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of a shard in the flat sample schema (labels as class ids), whatever its format."""
    if path.suffix == ".parquet":
        from canvasdata.formats.parquet import read_parquet

        return read_parquet(path, columns)
    if path.suffix == ".tar":
        from canvasdata.formats.webdataset import read_tar

        return read_tar(path)
    raise FormatError(f"{path}: not a canvasdata shard (expected .parquet or .tar)")


__all__ = [
    "EXTENSIONS", "FormatError", "ROW_FIELDS", "ShardRecord", "atomic_writer", "features_for",
    "read_shard", "sha256_file", "shard_filename", "write_shard",
]
