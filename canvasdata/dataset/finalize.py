"""After the shards: manifest.json (checksums and counts), the kind's extra files, the dataset card and
preview.jpg."""

from __future__ import annotations

import platform
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import torch

import canvasdata
from canvasdata.card import write_dataset_card
from canvasdata.dataset.kinds import dataset_kind
from canvasdata.dataset.plan import ShardPlan
from canvasdata.dataset.preview import write_preview
from canvasdata.dataset.state import read_record
from canvasdata.manifest import Manifest, ShardEntry, SplitStats
from canvasdata.sources import make_painter, make_source

if TYPE_CHECKING:  # the recipe is only a type here: recipes import the dataset-kind registry
    from canvasdata.recipes import Recipe


def regenerate_command(recipe: Recipe) -> str:
    """The exact command that rebuilds this dataset from the `recipe.toml` shipped beside it."""
    return f"canvasdata build recipe.toml --out {recipe.name}"


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


def _copy_recipe(recipe: Recipe, out: Path) -> None:
    """Ship the recipe file beside the data (what the regenerate command reads)."""
    src = Path(recipe.source)
    if src.is_file():
        shutil.copyfile(src, out / "recipe.toml.tmp")
        (out / "recipe.toml.tmp").replace(out / "recipe.toml")


def finalize(recipe: Recipe, out: Path, shards: list[ShardPlan], device: torch.device | str,
             preview: bool = True) -> Manifest:
    """Collect the shard records into manifest.json, then write the kind's extra files, card and preview."""
    records = [read_record(out, s.name) for s in shards]
    entries, splits, counts = _totals(records, shards)
    _copy_recipe(recipe, out)
    kind = dataset_kind(recipe)
    manifest = Manifest(
        canvasdata_version=canvasdata.__version__, torch_version=torch.__version__,
        python_version=platform.python_version(), device=torch.device(device).type, recipe_name=recipe.name,
        recipe_hash=recipe.hash(), recipe=recipe.to_dict(), command=regenerate_command(recipe),
        format=recipe.output.format, backends={**make_source(recipe).describe(), **make_painter(recipe).describe()},
        features=kind.features(recipe), num_rows=sum(e.rows for e in entries),
        num_bytes=sum(e.bytes for e in entries), splits=splits, counts=counts, shards=entries,
        prompt_files=kind.write_prompts(recipe, out) if kind.write_prompts else None,
    )
    manifest.write(out)
    if preview:
        write_preview(kind.preview(recipe), out / "preview.jpg")
    write_dataset_card(kind.card(recipe, manifest), out)
    return manifest
