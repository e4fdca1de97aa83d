"""After the shards: manifest.json (checksums and counts), the kind's extra files, the dataset card and
preview.jpg."""

from __future__ import annotations

import platform
from collections import Counter
from pathlib import Path

import torch

import canvasdata
from canvasdata.card import write_dataset_card
from canvasdata.dataset.kinds import dataset_kind
from canvasdata.dataset.plan import ShardPlan
from canvasdata.dataset.preview import write_preview
from canvasdata.dataset.state import owned_files, read_record
from canvasdata.formats.common import atomic_writer
from canvasdata.manifest import MANIFEST, FileEntry, Manifest, ShardEntry, SplitStats, rebuild_command
from canvasdata.recipes import Recipe
from canvasdata.recipes.portable import portable_recipe
from canvasdata.sources import Backends, make_backends


def _totals(records: list[dict], shards: list[ShardPlan]
            ) -> tuple[list[ShardEntry], dict[str, SplitStats], dict[str, dict[str, int]]]:
    """Manifest entries of the shard records, rows/bytes/shards per split and label counts."""
    entries = [ShardEntry(r["path"], s.split, r["rows"], r["bytes"], r["sha256"]) for r, s in
               zip(records, shards, strict=True)]
    splits: dict[str, SplitStats] = {}
    for e in entries:
        sp = splits.setdefault(e.split, SplitStats())
        sp.rows += e.rows
        sp.bytes += e.bytes
        sp.shards += 1
    counts: dict[str, Counter] = {}
    for rec in records:
        for key, value in rec["counts"].items():
            counts.setdefault(key, Counter()).update(value)
    return entries, splits, {k: dict(sorted(v.items())) for k, v in counts.items()}


def _copy_recipe(recipe: Recipe, out: Path) -> list[str]:
    """Ship the recipe file beside the data (what the regenerate command reads), its relative locations made
    absolute (`recipes.portable`); a build from `out/recipe.toml` itself keeps it as it is. Returns the
    file's path in `out` (none: no recipe file)."""
    src, dst = Path(recipe.source), out / "recipe.toml"
    data = portable_recipe(recipe)
    if data is None:
        return []
    if not (dst.exists() and dst.samefile(src)):
        with atomic_writer(dst) as f:
            f.write(data)
    return [dst.name]


def finalize(recipe: Recipe, out: Path, shards: list[ShardPlan], device: torch.device | str,
             preview: bool = True, inputs: dict | None = None, backends: Backends | None = None) -> Manifest:
    """Collect the shard records, write the recipe copy, the kind's extra files, the preview and the card,
    then seal them all in manifest.json (written last: a directory with a manifest is a finished build).
    `backends`: the build's own (made here when not given)."""
    backends = backends or make_backends(recipe)
    records = [read_record(out, s.name) for s in shards]
    entries, splits, counts = _totals(records, shards)
    written = _copy_recipe(recipe, out)
    kind = dataset_kind(recipe)
    device_type = torch.device(device).type
    manifest = Manifest(
        canvasdata_version=canvasdata.__version__, torch_version=torch.__version__,
        python_version=platform.python_version(), device=device_type, recipe_name=recipe.name,
        recipe_hash=recipe.hash(), recipe=recipe.to_dict(),
        command=rebuild_command("recipe.toml", recipe.name, recipe.output.format, device_type),
        format=recipe.output.format, backends=backends.describe(),
        features=kind.features(recipe), num_rows=sum(e.rows for e in entries),
        num_bytes=sum(e.bytes for e in entries), splits=splits, counts=counts, shards=entries,
        prompt_files=kind.write_prompts(recipe, out) if kind.write_prompts else None, inputs=inputs,
    )
    kept_preview = "preview.jpg" in owned_files(out)  # a rerun without preview keeps this recipe's old one
    (out / MANIFEST).unlink(missing_ok=True)  # a stale manifest must not seal the new files
    written += manifest.prompt_files or []
    if preview:
        write_preview(kind.preview(recipe, backends.source, backends.painter), out / "preview.jpg")
    if preview or kept_preview:
        written.append("preview.jpg")
    written.append(write_dataset_card(kind.card(recipe, manifest), out).name)
    manifest.files = [FileEntry.of(out, rel) for rel in written]
    manifest.write(out)
    return manifest
