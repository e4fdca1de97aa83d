"""Read a build's manifest, verify its shards against it, and summarise it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from canvasdata.encode import decode_image
from canvasdata.formats import FormatError, read_shard, sha256_file
from canvasdata.formats.common import LabelCounter


class ManifestError(RuntimeError):
    """A directory without a readable canvasdata manifest."""


def read_manifest(root: Path | str) -> dict:
    path = Path(root) / "manifest.json"
    if not path.exists():
        raise ManifestError(f"{root}: no manifest.json; is this a canvasdata build directory?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: unreadable manifest ({e})") from None


def class_names(manifest: dict, column: str) -> list[str]:
    """Names of a class-label column, from the manifest's features."""
    return list(manifest["features"][column]["names"])


@dataclass
class VerifyReport:
    """What `verify` found: one problem per bad shard (or other damage)."""

    root: Path
    shards: int = 0
    rows: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.shards} shards, {self.rows} rows verified in {self.root}"
        lines = [f"FAILED: {len(self.problems)} problem(s) in {self.root}"]
        lines += [f"  {path}: {msg}" for path, msg in self.problems]
        return "\n".join(lines)


def verify(root: Path | str, decode: bool = False) -> VerifyReport:
    """Recompute every shard's sha256, row count and label counts; with `decode`, decode every image."""
    root = Path(root)
    manifest = read_manifest(root)
    report = VerifyReport(root)
    features = datasets.Features.from_dict(manifest["features"])
    total = LabelCounter(features)
    columns = None if decode else [*total.names, *(["split"] if "split" in features else [])]
    for shard in manifest["shards"]:
        report.shards += 1
        path = root / shard["path"]
        if not path.exists():
            report.problems.append((shard["path"], "missing"))
            continue
        if path.stat().st_size != shard["bytes"]:
            report.problems.append((shard["path"], f"size {path.stat().st_size} != {shard['bytes']} in the manifest "
                                    "(truncated or replaced)"))
            continue
        if sha256_file(path) != shard["sha256"]:
            report.problems.append((shard["path"], "sha256 does not match the manifest (corrupt)"))
            continue
        n = 0
        try:
            for row in read_shard(path, columns):
                n += 1
                total.add(row)
                if decode:
                    decode_image(row["image"]).load()
        except (FormatError, OSError, ValueError) as e:
            report.problems.append((shard["path"], f"unreadable: {e}"))
            continue
        if n != shard["rows"]:
            report.problems.append((shard["path"], f"{n} rows, manifest says {shard['rows']}"))
        report.rows += n
    if report.ok:
        counts = total.result()
        for key, expected in manifest["counts"].items():
            if counts.get(key, {}) != expected:
                report.problems.append(("manifest.json", f"{key} counts differ from the shards"))
    listed = {s["path"] for s in manifest["shards"]}
    for extra in sorted(p for p in (root / "data").rglob("*") if p.is_file()) if (root / "data").exists() else ():
        rel = extra.relative_to(root).as_posix()
        if rel not in listed:
            report.problems.append((rel, "not listed in the manifest"))
    return report


def info(root: Path | str) -> str:
    """A human summary of a build."""
    m = read_manifest(root)
    r = m["recipe"]
    lines = [
        f"{root}: canvasdata build of recipe {m['recipe_name']!r} (hash {m['recipe_hash'][:12]})",
        f"  built with canvasdata {m['canvasdata_version']}, torch {m['torch_version']}, device {m['device']}",
        f"  {m['num_rows']:,} images, {m['num_bytes'] / 1e6:,.1f} MB in {len(m['shards'])} {m['format']} shards",
        f"  {len(r['styles'])} styles (space {r['style_space']['name']}) x {len(r['objects'])} objects x "
        f"{r['images_per_cell']} images at {r['resolution']} px",
    ]
    lines += [f"  split {name}: {s['rows']:,} rows, {s['shards']} shards" for name, s in m["splits"].items()]
    lines.append(f"  regenerate: {m['command']}")
    return "\n".join(lines)
