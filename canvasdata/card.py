"""Dataset cards: YAML front matter (configs, features, license, size) + prose from `cards/dataset.md`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import yaml
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCardData

from canvasdata.formats import get_format
from canvasdata.formats.common import atomic_writer
from canvasdata.manifest import Manifest
from canvasdata.recipes import Recipe
from canvasdata.shipped import builtin_dir
from canvasdata.taxonomy import SEED_STYLE


@dataclass(frozen=True)
class CardParts:
    """A dataset card before rendering: its template (a file of the shipped `cards/`), the YAML front
    matter and the facts the template's `{fields}` take. Each dataset kind makes its own."""

    template: str
    front: dict[str, Any]
    facts: dict[str, Any]


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


def _hub_view(recipe: Recipe, manifest: Manifest) -> tuple[datasets.Features, str]:
    """The features as the Hub's loader shows this format, and the shard file extension (no dot)."""
    fmt = get_format(recipe.output.format)
    return fmt.hub_features(manifest.features), fmt.extension.lstrip(".")


def _info_yaml(info: datasets.DatasetInfo, config: str = "default") -> dict:
    """`info` as one `dataset_info` entry of a card, written by `datasets`' own card writer (as
    `push_to_hub` writes it): features, splits and sizes, and `config_name` first unless "default"."""
    data = DatasetCardData()
    DatasetInfosDict({config: info}).to_dataset_card_data(data)
    return data["dataset_info"]


def card_yaml(recipe: Recipe, manifest: Manifest) -> dict:
    """The card's front matter: what `load_dataset` and the Hub read."""
    features, ext = _hub_view(recipe, manifest)
    splits = [{"name": s, "num_bytes": v.bytes, "num_examples": v.rows} for s, v in manifest.splits.items()]
    info = _info_yaml(datasets.DatasetInfo(features=features, splits=splits, download_size=manifest.num_bytes,
                                           dataset_size=manifest.num_bytes))
    configs = [{"config_name": "default", "default": True,
                "data_files": [{"split": s, "path": f"data/{s}-*.{ext}"} for s in manifest.splits]}]
    return _front_matter(recipe, configs, info)


def concept_card_yaml(recipe: Recipe, manifest: Manifest) -> dict:
    """Front matter of a concept set: one configuration per target concept."""
    features, ext = _hub_view(recipe, manifest)
    feats = _info_yaml(datasets.DatasetInfo(features=features))["features"]  # one list: YAML writes it once (&id001)
    configs, infos = [], []
    for i, c in enumerate(recipe.concepts):
        shards = manifest.shards_of(config=c.name)
        splits = [s for s, _ in recipe.splits if any(x.split == s for x in shards)]
        configs.append({"config_name": c.name, **({"default": True} if i == 0 else {}),
                        "data_files": [{"split": s, "path": f"data/{c.name}/{s}-*.{ext}"} for s in splits]})
        infos.append({"config_name": c.name, "features": feats,
                      "splits": [{"name": s, "num_bytes": sum(x.bytes for x in shards if x.split == s),
                                  "num_examples": sum(x.rows for x in shards if x.split == s)} for s in splits]})
    return _front_matter(recipe, configs, infos)


def _concept_table(recipe: Recipe) -> str:
    rows = ["| concept | domain | themes | twin | retain classes |", "|---|---|---|---|---|"]
    for c in recipe.concepts:
        removed = f"replaced by {c.replacement}" if c.replacement else "object removed"
        twin = c.twin if c.domain == "style" else removed
        rows.append(f"| `{c.name}` | {c.domain} | {', '.join(c.themes)} | {twin} | {', '.join(c.retain) or '—'} |")
    return "\n".join(rows)


def _splits_text(recipe: Recipe, manifest: Manifest) -> str:
    def span(idx: tuple[int, ...]) -> str:
        if len(idx) == 1:
            return f"index {idx[0]}"
        if list(idx) == list(range(idx[0], idx[-1] + 1)):
            return f"indices {idx[0]}–{idx[-1]}"
        return f"indices {list(idx)}"

    rows = {name: s.rows for name, s in manifest.splits.items()}
    return ", ".join(f"`{name}` = {span(idx)} ({rows.get(name, 0)} rows)" for name, idx in recipe.splits)


PAIRING_TEXT = {
    "paired": {"pairing_text": "Image *k* of every style is painted from the same content *k* (`content_id`), so "
                               f"`{SEED_STYLE}`/*k* is\nthe unstylized twin of every painted image *k*.",
               "content_id_text": "`{object}-{index}`, shared by every style painted from that content"},
    "unpaired": {"pairing_text": "Content is **unpaired**: every (style, object, index) is painted from a scene of its "
                                 "own (`content_id`),\nso the set holds as many distinct scenes per object as it has "
                                 "images per object (a training set for judges).",
                 "content_id_text": "`{object}-{index}-{style}`: the scene this image alone is painted from"},
}


def _common_facts(recipe: Recipe, manifest: Manifest) -> dict[str, Any]:
    """The facts every dataset card states: provenance, size, format, splits, how to rebuild it."""
    return {
        "pretty_name": recipe.card.pretty_name or recipe.name,
        "description": recipe.description,
        "canvasdata_version": manifest.canvasdata_version,
        "recipe_name": recipe.name,
        "recipe_hash_short": manifest.recipe_hash[:12],
        "num_rows": f"{manifest.num_rows:,}",
        "num_shards": len(manifest.shards),
        "format": recipe.output.format,
        "size_human": _human(manifest.num_bytes),
        "resolution": recipe.resolution,
        "jpeg_quality": recipe.jpeg_quality,
        "splits": _splits_text(recipe, manifest),
        "repo_hint": f"USER/{recipe.name}",
        "command": manifest.command,
    }


def grid_card(recipe: Recipe, manifest: Manifest) -> CardParts:
    """The card of a grid build (`cards/dataset.md`)."""
    facts = {
        **_common_facts(recipe, manifest),
        "num_styles": len(recipe.styles),
        "style_space": recipe.style_space.name,
        "style_space_size": len(recipe.style_space),
        "styles": ", ".join(f"`{s}`" for s in recipe.styles),
        "num_objects": len(recipe.objects),
        "object_space": recipe.object_space.name,
        "object_space_size": len(recipe.object_space),
        "objects": ", ".join(f"`{o}`" for o in recipe.objects),
        "images_per_cell": recipe.images_per_cell,
        **PAIRING_TEXT[recipe.content.pairing],
        "prompt_template": recipe.prompt_template,
        "format_note": get_format(recipe.output.format).card_note,
        "first_split": recipe.splits[0][0],
        "backends": ", ".join(f"{k} = `{v}`" for k, v in manifest.backends.items()),
    }
    return CardParts("dataset.md", card_yaml(recipe, manifest), facts)


def concept_card(recipe: Recipe, manifest: Manifest) -> CardParts:
    """The card of a concept set (`cards/concepts.md`)."""
    facts = {
        **_common_facts(recipe, manifest),
        "concept_table": _concept_table(recipe),
        "prompts_per_theme": recipe.images_per_cell,
        "images_per_prompt": recipe.images_per_prompt,
        "first_concept": recipe.concepts[0].name,
    }
    return CardParts("concepts.md", concept_card_yaml(recipe, manifest), facts)


def render_card(parts: CardParts, template: Path | None = None) -> str:
    """Front matter + the Markdown template (the shipped one unless `template`) filled with the facts."""
    template = template or builtin_dir("cards") / parts.template
    body = template.read_text(encoding="utf-8").format(**parts.facts)
    front = yaml.safe_dump(parts.front, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{body}"


def write_dataset_card(parts: CardParts, out: Path) -> Path:
    """Render the card into `out/README.md` (atomically); returns its path."""
    path = out / "README.md"
    with atomic_writer(path) as f:
        f.write(render_card(parts).encode("utf-8"))
    return path
