"""Parquet shards: the Hub default. The schema carries the `datasets` feature metadata, so
`load_dataset` returns typed columns (Image, ClassLabel with names) without any script."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from canvasdata.formats.common import FormatError, LabelCounter, ShardRecord, atomic_writer, sha256_file

MAX_ROW_GROUP_BYTES = 100 * 1024 * 1024


def _table(batch: list[dict], schema: pa.Schema) -> pa.Table:
    cols = {name: [r[name] for r in batch] for name in schema.names}
    cols["image"] = [{"bytes": r["image"], "path": None} for r in batch]
    return pa.Table.from_pydict(cols, schema=schema)


def write_parquet(path: Path, rows: Iterable[dict], features: datasets.Features, row_group_rows: int = 500,
                  max_row_group_bytes: int = MAX_ROW_GROUP_BYTES) -> ShardRecord:
    """Write rows (flat schema, image as JPEG bytes) in row groups of at most `row_group_rows` rows
    and about `max_row_group_bytes` bytes (the dataset viewer refuses row groups over ~286 MiB)."""
    schema = features.arrow_schema
    counter = LabelCounter(features)
    with (atomic_writer(path) as f,
          pq.ParquetWriter(f, schema, compression="snappy", use_dictionary=["source", "split"]) as writer):
        batch: list[dict] = []
        size = 0
        for row in rows:
            batch.append(row)
            counter.add(row)
            size += len(row["image"])
            if len(batch) >= row_group_rows or size >= max_row_group_bytes:
                writer.write_table(_table(batch, schema))
                batch, size = [], 0
        if batch:
            writer.write_table(_table(batch, schema))
    return ShardRecord(path=str(path), rows=counter.rows, bytes=path.stat().st_size, sha256=sha256_file(path),
                       counts=counter.result())


def read_parquet(path: Path, columns: list[str] | None = None) -> Iterator[dict]:
    """Rows in the flat schema; the image as JPEG bytes."""
    try:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=256, columns=columns):
            for row in batch.to_pylist():
                if "image" in row and isinstance(row["image"], dict):
                    row["image"] = row["image"]["bytes"]
                yield row
    except (pa.ArrowInvalid, OSError) as e:
        raise FormatError(f"{path}: unreadable Parquet shard ({e})") from e
