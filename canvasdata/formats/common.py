"""What every format shares: atomic writes, checksums, the shard record."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator


class FormatError(RuntimeError):
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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def count_labels(rows_meta: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    """Counts per style, object and split from (style name, object name, split) triples."""
    keys = ("style", "object", "split")
    return {k: dict(sorted(Counter(t[i] for t in rows_meta).items())) for i, k in enumerate(keys)}


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary sibling for writing; on success fsync and rename it to `path`.

    On any failure the temporary file is removed, so no partial file ever stands under a final name.
    A full disk becomes a FormatError that says what happened.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise FormatError(f"{path}: disk full while writing; the partial file was removed. "
                              "Free some space and rerun the same command to resume.") from e
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
