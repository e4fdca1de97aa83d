"""Concept sets (the DataIGM shape): configs per concept, exact twins, prompt files, ImageFolder export."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from canvasdata.data import load_split
from canvasdata.dataset import build
from canvasdata.dataset.concepts import concept_samples, seeds_of
from canvasdata.formats.folder import export_folder
from canvasdata.manifest import Manifest, read_manifest
from canvasdata.recipes import RecipeError, load_recipe, parse_recipe
from canvasdata.verify import verify

RECIPE = {
    "kind": "concepts", "name": "concepts-tiny", "seed": 3, "prompts_per_theme": 2, "images_per_prompt": 2,
    "resolution": 64, "jpeg_quality": 95, "splits": {"train": "1", "test": "2"},
    "concepts": [
        {"target": "style:Van_Gogh", "themes": ["Cats", "Towers"]},
        {"target": "object:Cats", "themes": ["Seed_Images", "Pop_Art"], "retain": ["Dogs"]},
        {"target": "object:Horses", "themes": ["Seed_Images"], "replacement": "Dogs"},
    ],
    "output": {"shard_rows": 100, "batch_size": 4},
}


def rows_of(root: Path, concept: str) -> list[dict]:
    ds = datasets.load_dataset(str(root), concept)
    return [r for split in ds.values() for r in split]


@pytest.fixture(scope="module")
def concept_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("concepts")
    build(parse_recipe(RECIPE, "concepts.toml"), out, progress=False)
    return out


def test_each_concept_is_a_config_with_typed_columns(concept_set: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = datasets.load_dataset(str(concept_set), "Van_Gogh")
    assert set(ds) == {"train", "test"}
    feats = ds["train"].features
    assert feats["label"].names == ["negative", "positive"] and isinstance(feats["image"], datasets.Image)
    assert ds["train"].num_rows == 2 * 1 * 2 * 2  # themes x prompts x images x (positive, twin)
    cats = datasets.load_dataset(str(concept_set), "Cats")
    roles = [r["role"] for r in cats["train"]]
    assert roles.count("forget") == roles.count("twin") == 4 and roles.count("retain") == 2
    assert verify(concept_set).ok


def test_style_twins_share_content_and_differ_by_the_style(concept_set: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = rows_of(concept_set, "Van_Gogh")
    by_pair: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_pair.setdefault(r["pair_id"], {})[r["role"]] = r
    assert len(by_pair) == 8
    for pair in by_pair.values():
        pos, twin = pair["forget"], pair["twin"]
        assert pos["seed"] == twin["seed"] and pos["label"] == 1 and twin["label"] == 0
        assert pos["prompt"] == twin["paired_prompt"] == f"A {pos['theme']} image in Van Gogh style."
        assert twin["prompt"] == pos["paired_prompt"] == f"A {pos['theme']} image."
        assert not np.array_equal(np.asarray(pos["image"]), np.asarray(twin["image"]))


def test_object_twins_differ_only_inside_the_object(concept_set: Path, monkeypatch):
    """Recompute the masks of an object target's pairs and check that the twin's pixels differ from
    the positive's only near the object (the scene, light and grain are the same)."""
    from canvasdata import content

    recipe = parse_recipe(RECIPE, "concepts.toml")
    cats = next(c for c in recipe.concepts if c.name == "Cats")
    samples = [s for s in concept_samples(recipe, cats) if s.theme == "Seed_Images" and s.role != "retain"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = {(r["pair_id"], r["role"]): r for r in rows_of(concept_set, "Cats")}
    checked = 0
    for pos in (s for s in samples if s.role == "forget"):
        cseed, _ = seeds_of(recipe, pos)
        _, mask = content.render("Cats", [cseed], 64)
        grown = (mask[0, 0].numpy() > 0.01)
        grown = np.pad(grown, 3)
        shifted = [np.roll(np.roll(grown, dy, 0), dx, 1) for dy in range(-3, 4) for dx in range(-3, 4)]
        grown = np.max(shifted, 0)[3:-3, 3:-3]
        a = np.asarray(rows[(pos.pair_id, "forget")]["image"]).astype(float)
        b = np.asarray(rows[(pos.pair_id, "twin")]["image"]).astype(float)
        diff = np.abs(a - b).max(-1)
        assert grown.mean() > 0.01, "the object covers part of the image"
        assert diff[grown].mean() > 4 * max(diff[~grown].mean(), 0.5), "the difference is confined to the object"
        checked += 1
    assert checked == 4


def test_prompt_files_are_paired_by_index(concept_set: Path):
    forget = json.loads((concept_set / "prompts" / "Cats" / "forget_prompts.json").read_text())
    retain = json.loads((concept_set / "prompts" / "Cats" / "retain_prompts.json").read_text())
    unrelated = json.loads((concept_set / "prompts" / "Cats" / "unrelated_prompts.json").read_text())
    assert len(forget) == len(retain) == 2 * 2 and len(unrelated) == 2
    for f, r in zip(forget, retain, strict=True):
        assert f["id"] == r["id"] and f["seeds"] == r["seeds"] and "Cats" in f["prompt"] and "Cats" not in r["prompt"]
    horses = json.loads((concept_set / "prompts" / "Horses" / "retain_prompts.json").read_text())
    assert horses[0]["prompt"] == "A Dogs image in Photo style."


def test_imagefolder_export_pairs_twins_by_file_name(concept_set: Path, tmp_path: Path):
    n = export_folder(concept_set, tmp_path, read_manifest(concept_set), "imagefolder", progress=False)
    assert n == read_manifest(concept_set)["num_rows"]
    pos = {p.name for p in (tmp_path / "Van_Gogh" / "train" / "positive").iterdir()}
    neg = {p.name for p in (tmp_path / "Van_Gogh" / "train" / "negative").iterdir()}
    assert pos == neg and len(pos) == 4
    with pytest.raises(ValueError, match="imagefolder"):
        export_folder(concept_set, tmp_path / "x", read_manifest(concept_set), "unlearncanvas", progress=False)


def test_shipped_dataigm_recipe_and_errors():
    r = load_recipe("dataigm")
    assert r.kind == "concepts" and {c.domain for c in r.concepts} == {"style", "object"}
    bad = json.loads(json.dumps(RECIPE))
    bad["concepts"][0]["target"] = "style:Van_Gog"
    with pytest.raises(RecipeError, match=r"concepts\[0\]\.target.*Van_Gogh"):
        parse_recipe(bad, "c.toml")
    bad = json.loads(json.dumps(RECIPE))
    bad["concepts"][0]["retain"] = ["Dogs"]
    with pytest.raises(RecipeError, match="only object targets"):
        parse_recipe(bad, "c.toml")
    bad = json.loads(json.dumps(RECIPE))
    bad["concepts"][1]["target"] = "colour:Red"
    with pytest.raises(RecipeError, match="style:NAME"):
        parse_recipe(bad, "c.toml")


def test_concept_manifest_is_typed_and_loaders_ask_the_kind(concept_set: Path):
    m = Manifest.read(concept_set)
    assert m.facts.kind == "concepts" and m.facts.concepts == ("Van_Gogh", "Cats", "Horses")
    assert "prompts/Cats/unrelated_prompts.json" in m.prompt_files
    assert {s.path.split("/")[1] for s in m.shards} == {"Van_Gogh", "Cats", "Horses"}
    assert m.to_dict() == read_manifest(concept_set)
    cats = load_split(concept_set, "train", ["binary"], concept="Cats")
    assert cats.label_space == {"binary": "concept:Cats"} and len(cats) == 10
    every = load_split(concept_set, "train", ["binary"], manifest=m)
    assert every.label_space == {"binary": "concept:Van_Gogh"}
    assert every.class_names["binary"] == ["negative", "positive"]
