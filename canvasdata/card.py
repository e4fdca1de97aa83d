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


def _front_matter(recipe: Recipe, configs: list[dict], dataset_info: dict | list[dict]) -> dict:
    """The card metadata every build shares, then its configs and typed features."""
    return {
        "pretty_name": recipe.card.pretty_name or recipe.name,
        "license": recipe.card.license,
        "task_categories": list(recipe.card.task_categories),
        "tags": list(recipe.card.tags),
        "size_categories": [recipe.size_category],
        "configs": configs,
        "dataset_info": dataset_info,
    }


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
    configs = [{"config_name": "default", "default": True,
                "data_files": [{"split": s, "path": f"data/{s}-*.{ext}"} for s in manifest["splits"]]}]
    return _front_matter(recipe, configs, info)


def concept_card_yaml(recipe: Recipe, manifest: dict) -> dict:
    """Front matter of a concept set: one configuration per target concept."""
    from canvasdata.dataset.concepts import concept_features

    ext = "tar" if recipe.output.format == "webdataset" else "parquet"
    features = concept_features()
    if recipe.output.format == "webdataset":
        features = wds_features(features)
    feats = datasets.DatasetInfo(features=features)._to_yaml_dict()["features"]
    configs, infos = [], []
    for i, c in enumerate(recipe.concepts):
        shards = [s for s in manifest["shards"] if s["path"].startswith(f"data/{c.name}/")]
        splits = [s for s, _ in recipe.splits if any(x["split"] == s for x in shards)]
        configs.append({"config_name": c.name, **({"default": True} if i == 0 else {}),
                        "data_files": [{"split": s, "path": f"data/{c.name}/{s}-*.{ext}"} for s in splits]})
        infos.append({"config_name": c.name, "features": feats,
                      "splits": [{"name": s, "num_bytes": sum(x["bytes"] for x in shards if x["split"] == s),
                                  "num_examples": sum(x["rows"] for x in shards if x["split"] == s)} for s in splits]})
    return _front_matter(recipe, configs, infos)


def _concept_table(recipe: Recipe) -> str:
    rows = ["| concept | domain | themes | twin | retain classes |", "|---|---|---|---|---|"]
    for c in recipe.concepts:
        twin = c.twin if c.domain == "style" else (f"replaced by {c.replacement}" if c.replacement else "object removed")
        rows.append(f"| `{c.name}` | {c.domain} | {', '.join(c.themes)} | {twin} | {', '.join(c.retain) or '—'} |")
    return "\n".join(rows)


def _splits_text(recipe: Recipe, manifest: dict) -> str:
    def span(idx: tuple[int, ...]) -> str:
        if len(idx) == 1:
            return f"index {idx[0]}"
        if list(idx) == list(range(idx[0], idx[-1] + 1)):
            return f"indices {idx[0]}–{idx[-1]}"
        return f"indices {list(idx)}"

    return ", ".join(f"`{name}` = {span(idx)} ({manifest['splits'].get(name, {}).get('rows', 0)} rows)"
                     for name, idx in recipe.splits)


PAIRING_TEXT = {
    "paired": {"pairing_text": "Image *k* of every style is painted from the same content *k* (`content_id`), so "
                               "`Seed_Images`/*k* is\nthe unstylized twin of every painted image *k*.",
               "content_id_text": "`{object}-{index}`, shared by every style painted from that content"},
    "unpaired": {"pairing_text": "Content is **unpaired**: every (style, object, index) is painted from a scene of its "
                                 "own (`content_id`),\nso the set holds as many distinct scenes per object as it has "
                                 "images per object (a training set for judges).",
                 "content_id_text": "`{object}-{index}-{style}`: the scene this image alone is painted from"},
}


def render_dataset_card(recipe: Recipe, manifest: dict, template: Path | None = None) -> str:
    """Front matter + the Markdown template filled with the build's facts."""
    if recipe.kind == "concepts":
        template = template or builtin_dir("cards") / "concepts.md"
        facts = {
            "pretty_name": recipe.card.pretty_name or recipe.name, "description": recipe.description,
            "canvasdata_version": manifest["canvasdata_version"], "recipe_name": recipe.name,
            "recipe_hash_short": manifest["recipe_hash"][:12], "num_rows": f"{manifest['num_rows']:,}",
            "num_shards": len(manifest["shards"]), "format": recipe.output.format,
            "size_human": _human(manifest["num_bytes"]), "concept_table": _concept_table(recipe),
            "prompts_per_theme": recipe.images_per_cell, "images_per_prompt": recipe.images_per_prompt,
            "resolution": recipe.resolution, "jpeg_quality": recipe.jpeg_quality,
            "splits": _splits_text(recipe, manifest), "repo_hint": f"USER/{recipe.name}",
            "first_concept": recipe.concepts[0].name, "command": manifest["command"],
        }
        body = template.read_text(encoding="utf-8").format(**facts)
        front = yaml.safe_dump(concept_card_yaml(recipe, manifest), sort_keys=False, allow_unicode=True, width=1000)
        return f"---\n{front}---\n\n{body}"
    template = template or builtin_dir("cards") / "dataset.md"
    splits = _splits_text(recipe, manifest)
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
        **PAIRING_TEXT[recipe.content.pairing],
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
