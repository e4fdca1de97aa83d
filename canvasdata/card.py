"""Dataset cards: YAML front matter (configs, features, license, size) + prose from `cards/dataset.md`."""

from __future__ import annotations

from pathlib import Path

import datasets
import yaml

from canvasdata.formats import features_for
from canvasdata.formats.common import atomic_writer
from canvasdata.formats.schema import wds_features
from canvasdata.recipes import Recipe, builtin_dir

FORMAT_NOTES = {
    "parquet": "Shards are Parquet files (`data/{split}-NNNNN-of-NNNNN.parquet`) whose schema carries the "
               "`datasets` feature metadata; row groups are at most 100 MB.",
    "webdataset": "Shards are WebDataset tars (`data/{split}-NNNNN-of-NNNNN.tar`): member `KEY.jpg` is the image "
                  "and `KEY.json` holds every other column. With `datasets.load_dataset` they appear as the "
                  "columns `jpg` (Image) and `json` (a struct with the typed class labels), because the Hub's "
                  "WebDataset builder types members by file extension; `canvasdata.data` flattens them.",
}


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def card_yaml(recipe: Recipe, manifest: dict) -> dict:
    """The card's front matter: what `load_dataset` and the Hub read."""
    features = features_for(recipe.style_space.names, recipe.object_space.names)
    if recipe.output.format == "webdataset":
        features = wds_features(features)
    ext = "tar" if recipe.output.format == "webdataset" else "parquet"
    info = datasets.DatasetInfo(features=features)._to_yaml_dict()
    info["splits"] = [{"name": s, "num_bytes": v["bytes"], "num_examples": v["rows"]}
                      for s, v in manifest["splits"].items()]
    info["download_size"] = manifest["num_bytes"]
    info["dataset_size"] = manifest["num_bytes"]
    return {
        "pretty_name": recipe.card.pretty_name or recipe.name,
        "license": recipe.card.license,
        "task_categories": list(recipe.card.task_categories),
        "tags": list(recipe.card.tags),
        "size_categories": [recipe.size_category],
        "configs": [{"config_name": "default", "default": True,
                     "data_files": [{"split": s, "path": f"data/{s}-*.{ext}"} for s in manifest["splits"]]}],
        "dataset_info": info,
    }


def render_dataset_card(recipe: Recipe, manifest: dict, template: Path | None = None) -> str:
    """Front matter + the Markdown template filled with the build's facts."""
    template = template or builtin_dir("cards") / "dataset.md"
    splits = ", ".join(f"`{name}` = indices {idx[0]}–{idx[-1]} ({manifest['splits'].get(name, {}).get('rows', 0)} rows)"
                       if list(idx) == list(range(idx[0], idx[-1] + 1)) else f"`{name}` = indices {list(idx)}"
                       for name, idx in recipe.splits)
    facts = {
        "pretty_name": recipe.card.pretty_name or recipe.name,
        "description": recipe.description,
        "canvasdata_version": manifest["canvasdata_version"],
        "recipe_name": recipe.name,
        "recipe_hash_short": manifest["recipe_hash"][:12],
        "num_rows": f"{manifest['num_rows']:,}",
        "num_shards": len(manifest["shards"]),
        "format": recipe.output.format,
        "size_human": _human(manifest["num_bytes"]),
        "num_styles": len(recipe.styles),
        "style_space": recipe.style_space.name,
        "style_space_size": len(recipe.style_space),
        "styles": ", ".join(f"`{s}`" for s in recipe.styles),
        "num_objects": len(recipe.objects),
        "object_space": recipe.object_space.name,
        "object_space_size": len(recipe.object_space),
        "objects": ", ".join(f"`{o}`" for o in recipe.objects),
        "images_per_cell": recipe.images_per_cell,
        "resolution": recipe.resolution,
        "jpeg_quality": recipe.jpeg_quality,
        "splits": splits,
        "prompt_template": recipe.prompt_template,
        "format_note": FORMAT_NOTES[recipe.output.format],
        "repo_hint": f"USER/{recipe.name}",
        "first_split": recipe.splits[0][0],
        "command": manifest["command"],
        "backends": ", ".join(f"{k} = `{v}`" for k, v in manifest["backends"].items()),
    }
    body = template.read_text(encoding="utf-8").format(**facts)
    front = yaml.safe_dump(card_yaml(recipe, manifest), sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{body}"


def write_dataset_card(recipe: Recipe, manifest: dict, out: Path) -> Path:
    path = out / "README.md"
    with atomic_writer(path) as f:
        f.write(render_dataset_card(recipe, manifest).encode("utf-8"))
    return path
