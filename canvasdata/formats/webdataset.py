"""WebDataset tar shards: member `{key}.jpg` holds the image, `{key}.json` every other field.

Tars are byte-reproducible (fixed mtime, owner and mode), keys carry no dots (webdataset splits the
key at the first dot), and `webdataset.WebDataset` and `datasets.load_dataset` both read them.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import datasets

from canvasdata.formats.common import FormatError, LabelCounter, ShardRecord, atomic_writer, sha256_file

MTIME = 946684800  # 2000-01-01: a fixed timestamp, so the same rows give the same bytes


def sample_key(row: dict, label_names: dict[str, list[str]]) -> str:
    """A dot-free key unique in its shard: split, the class names of the row, and its index or pair id."""
    parts = [row.get("split", "")] + [names[row[col]] for col, names in label_names.items()]
    parts += [f"{row[k]:06d}" for k in ("index", "pair_id") if k in row]
    key = "_".join(p for p in parts if p)
    if "." in key:
        raise FormatError(f"sample key {key!r} contains a dot; webdataset would split it")
    return key


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), MTIME, 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_tar(path: Path, rows: Iterable[dict], features: datasets.Features) -> ShardRecord:
    """Write rows as a tar shard, atomically."""
    counter = LabelCounter(features)
    with atomic_writer(path) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for row in rows:
            key = sample_key(row, counter.names)
            fields = {k: v for k, v in row.items() if k != "image"}
            _member(tar, f"{key}.jpg", row["image"])
            _member(tar, f"{key}.json", json.dumps(fields, sort_keys=True).encode())
            counter.add(row)
    return ShardRecord(path=str(path), rows=counter.rows, bytes=path.stat().st_size, sha256=sha256_file(path),
                       counts=counter.result())


def read_tar(path: Path) -> Iterator[dict]:
    """Rows in the flat schema, in the order written."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            pending: dict[str, dict] = {}
            for member in tar:
                key, _, ext = member.name.partition(".")
                data = tar.extractfile(member).read()
                row = pending.setdefault(key, {})
                if ext == "jpg":
                    row["image"] = data
                elif ext == "json":
                    row["__json__"] = json.loads(data)
                if "image" in row and "__json__" in row:
                    done = pending.pop(key)
                    yield {"image": done["image"], **done["__json__"]}
            if pending:
                raise FormatError(f"{path}: incomplete samples {sorted(pending)[:3]}")
    except (tarfile.TarError, OSError, json.JSONDecodeError, EOFError) as e:
        raise FormatError(f"{path}: unreadable tar shard ({e})") from e
