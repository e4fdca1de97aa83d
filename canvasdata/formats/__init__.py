"""Shard formats: one registry (`FORMATS`) of the Parquet and WebDataset writers and readers.

Every other module asks the registry (names, file extensions, how the Hub sees a format) instead of
naming formats itself. Every format writes atomically: rows go to a temporary file inside the output
directory, which is fsynced and renamed to its final name only when complete. A full disk removes the
temporary file and raises a FormatError that says so. The folder-layout export is `formats.folder`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets

from canvasdata.formats.common import FormatError, ShardRecord, atomic_writer, sha256_file, write_json
from canvasdata.formats.parquet import read_parquet, write_parquet
from canvasdata.formats.schema import ROW_FIELDS, features_for, wds_features
from canvasdata.formats.webdataset import read_tar, write_tar
from canvasdata.recipes.types import DEFAULT_FORMAT
from canvasdata.taxonomy import unknown_message


@dataclass(frozen=True)
class Format:
    """A shard format: how it is written and read, and how the Hub's loaders see it."""

    name: str
    extension: str                                                   # with the dot: ".parquet"
    write: Callable[[Path, Iterable[dict], datasets.Features, int], ShardRecord]  # path, rows, features, row groups
    read: Callable[[Path, list[str] | None], Iterator[dict]]        # path, columns (None: all)
    hub_features: Callable[[datasets.Features], datasets.Features]  # the columns `load_dataset` shows
    card_note: str                                                   # a sentence for the dataset card


def _write_tar(path: Path, rows: Iterable[dict], features: datasets.Features, row_group_rows: int) -> ShardRecord:
    """Tars have no row groups: `row_group_rows` does not apply."""
    return write_tar(path, rows, features)


def _read_tar(path: Path, columns: list[str] | None) -> Iterator[dict]:
    """Tar members hold every column; `columns` does not narrow the read."""
    return read_tar(path)


def _same(features: datasets.Features) -> datasets.Features:
    return features


FORMATS: dict[str, Format] = {
    "parquet": Format(
        "parquet", ".parquet", write_parquet, read_parquet, _same,
        "Shards are Parquet files (`data/{split}-NNNNN-of-NNNNN.parquet`) whose schema carries the "
        "`datasets` feature metadata; row groups are at most 100 MB."),
    "webdataset": Format(
        "webdataset", ".tar", _write_tar, _read_tar, wds_features,
        "Shards are WebDataset tars (`data/{split}-NNNNN-of-NNNNN.tar`): member `KEY.jpg` is the image "
        "and `KEY.json` holds every other column. With `datasets.load_dataset` they appear as the "
        "columns `jpg` (Image) and `json` (a struct with the typed class labels), because the Hub's "
        "WebDataset builder types members by file extension; `canvasdata.data` flattens them."),
}  # exactly the names `recipes.types.SHARD_FORMATS` declares (what a recipe may name)


def get_format(name: str) -> Format:
    """The registered format `name`; an unknown name is a FormatError naming the registered ones."""
    if name not in FORMATS:
        raise FormatError(unknown_message(name, list(FORMATS), "shard formats"))
    return FORMATS[name]


def shard_filename(split: str, i: int, n: int, fmt: str, config: str = "") -> str:
    """`data/[{config}/]{split}-{i:05d}-of-{n:05d}.{ext}`: the Hub infers configs and splits from it."""
    folder = f"data/{config}/" if config else "data/"
    return f"{folder}{split}-{i:05d}-of-{n:05d}{get_format(fmt).extension}"


def write_shard(fmt: str, path: Path, rows: Iterable[dict], features: datasets.Features, *,
                row_group_rows: int = 500) -> ShardRecord:
    """Write one shard of rows in `fmt`, atomically; returns its checksum record."""
    return get_format(fmt).write(path, rows, features, row_group_rows)


def read_shard(path: Path, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows of a shard in the flat sample schema (labels as class ids), whatever its format."""
    by_extension = {f.extension: f for f in FORMATS.values()}
    if path.suffix not in by_extension:
        raise FormatError(f"{path}: not a canvasdata shard (expected {' or '.join(by_extension)})")
    return by_extension[path.suffix].read(path, columns)


__all__ = [
    "DEFAULT_FORMAT", "FORMATS", "Format", "FormatError", "ROW_FIELDS", "ShardRecord", "atomic_writer", "features_for",
    "get_format", "read_shard", "sha256_file", "shard_filename", "write_json", "write_shard",
]
