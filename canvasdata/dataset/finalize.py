"""After the shards: manifest.json (checksums and counts), the dataset card and preview.jpg."""

from __future__ import annotations

import json
import platform
import shutil
from collections import Counter
from pathlib import Path

import torch

import canvasdata
from canvasdata.dataset.plan import ShardPlan
from canvasdata.dataset.runner import BuildError, _record_path, write_json
from canvasdata.dataset.kinds import dataset_kind
from canvasdata.recipes import Recipe
from canvasdata.sources import make_painter, make_source


def regenerate_command(recipe: Recipe) -> str:
    """The exact command that rebuilds this dataset from the `recipe.toml` shipped beside it."""
    return f"canvasdata build recipe.toml --out {recipe.name}"


def finalize(recipe: Recipe, out: Path, shards: list[ShardPlan], device: str, preview: bool = True) -> dict:
    """Collect the shard records into manifest.json, then write the card and preview."""
    records = []
    for s in shards:
        path = _record_path(out, s.name)
        if not path.exists():
            raise BuildError(f"{out}: shard {s.name} was not built; rerun the build to complete it")
        rec = json.loads(path.read_text())
        rec["split"] = s.split
        records.append(rec)
    counts: dict[str, Counter] = {}
    splits: dict[str, dict[str, int]] = {}
    for rec in records:
        for key, value in rec["counts"].items():
            counts.setdefault(key, Counter()).update(value)
        sp = splits.setdefault(rec["split"], {"rows": 0, "bytes": 0, "shards": 0})
        sp["rows"] += rec["rows"]
        sp["bytes"] += rec["bytes"]
        sp["shards"] += 1
    src = Path(recipe.source)
    if src.is_file():
        shutil.copyfile(src, out / "recipe.toml.tmp")
        (out / "recipe.toml.tmp").replace(out / "recipe.toml")
    features = dataset_kind(recipe).features(recipe)
    manifest = {
        "manifest_version": 1,
        "canvasdata_version": canvasdata.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": torch.device(device).type,
        "recipe_name": recipe.name,
        "recipe_hash": recipe.hash(),
        "recipe": recipe.to_dict(),
        "command": regenerate_command(recipe),
        "format": recipe.output.format,
        "backends": {**make_source(recipe).describe(), **make_painter(recipe).describe()},
        "features": features.to_dict(),
        "num_rows": sum(r["rows"] for r in records),
        "num_bytes": sum(r["bytes"] for r in records),
        "splits": splits,
        "counts": {k: dict(sorted(v.items())) for k, v in counts.items()},
        "shards": [{k: r[k] for k in ("path", "split", "rows", "bytes", "sha256")} for r in records],
    }
    if recipe.kind == "concepts":
        from canvasdata.dataset.concepts import write_prompt_files

        manifest["prompt_files"] = write_prompt_files(recipe, out)
    write_json(out / "manifest.json", manifest)
    if preview:
        from canvasdata.dataset.preview import write_preview

        write_preview(recipe, out / "preview.jpg")
    from canvasdata.card import write_dataset_card

    write_dataset_card(recipe, manifest, out)
    return manifest
