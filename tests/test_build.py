"""The build pipeline end to end on a tiny recipe: typed loading, determinism, resume, damage, formats."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml
from PIL import Image

from canvasdata.dataset import BuildError, Rank, build, plan_shards
from canvasdata.dataset import kinds, runner
from canvasdata.formats import FormatError, read_shard, sha256_file
from canvasdata.manifest import verify
from canvasdata.recipes import parse_recipe

TINY = {"name": "tiny", "seed": 7, "styles": ["Seed_Images", "Van_Gogh", "Pop_Art"], "objects": ["Cats", "Towers"],
        "images_per_cell": 3, "resolution": 64, "splits": {"train": "1-2", "test": "3"},
        "output": {"shard_rows": 5, "row_group_rows": 3, "batch_size": 2}}


def tiny(**changes) -> object:
    data = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return parse_recipe(data, "tiny.toml")


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data").iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    build(tiny(), out, progress=False)
    return out


def test_load_dataset_gives_typed_columns(built: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = datasets.load_dataset(str(built))
    assert set(ds) == {"train", "test"}
    assert ds["train"].num_rows == 3 * 2 * 2 and ds["test"].num_rows == 3 * 2
    feats = ds["train"].features
    assert isinstance(feats["image"], datasets.Image)
    assert isinstance(feats["style"], datasets.ClassLabel) and feats["style"].num_classes == 61
    assert feats["style"].int2str(55) == "Van_Gogh" and feats["object"].int2str(4) == "Cats"
    row = ds["train"][0]
    assert row["image"].size == (64, 64)
    assert row["prompt"] == f"A {feats['object'].int2str(row['object'])} image in " + (
        "Photo" if feats["style"].int2str(row["style"]) == "Seed_Images" else
        feats["style"].int2str(row["style"]).replace("_", " ")) + " style."
    assert {r["split"] for r in ds["test"]} == {"test"} and {r["index"] for r in ds["test"]} == {3}
    streamed = next(iter(datasets.load_dataset(str(built), split="train", streaming=True)))
    assert streamed["content_id"] == row["content_id"] and isinstance(streamed["style"], int)


def test_every_style_paints_the_same_content(built: Path):
    rows = [r for s in sorted((built / "data").glob("*.parquet")) for r in read_shard(s)]
    by_content: dict[str, list[dict]] = {}
    for r in rows:
        by_content.setdefault(r["content_id"], []).append(r)
    assert len(by_content) == 2 * 3
    for cid, group in by_content.items():
        assert len({r["style"] for r in group}) == 3 and len({r["index"] for r in group}) == 1
        assert len({r["seed"] for r in group}) == 3, "each style has its own painting seed"
    images = [np.asarray(Image.open(io.BytesIO(r["image"]))) for r in by_content["Cats-00001"]]
    assert images[0].shape == (64, 64, 3) and not np.array_equal(images[0], images[1])


def test_unpaired_content_gives_every_style_its_own_scene(tmp_path: Path):
    recipe = tiny(styles=["Seed_Images", "Pop_Art"], objects=["Cats"], content={"pairing": "unpaired"})
    build(recipe, tmp_path / "a", progress=False, preview=False)
    rows = {(r["style"], r["index"]): r for s in sorted((tmp_path / "a" / "data").glob("*.parquet")) for r in read_shard(s)}
    assert len(rows) == 2 * 3 and len({r["content_id"] for r in rows.values()}) == 6
    assert rows[(47, 1)]["content_id"] == "Cats-00001-Seed_Images"
    seed_rows = {k[1]: r for k, r in rows.items() if k[0] == 47}
    paired = tiny(styles=["Seed_Images", "Pop_Art"], objects=["Cats"])
    build(paired, tmp_path / "p", progress=False, preview=False)
    paired_rows = {(r["style"], r["index"]): r for s in sorted((tmp_path / "p" / "data").glob("*.parquet"))
                   for r in read_shard(s)}
    # unpainted Seed_Images pixels show the scene itself: unpaired scenes differ from the paired ones
    for k in (1, 2, 3):
        a = np.asarray(Image.open(io.BytesIO(seed_rows[k]["image"])), dtype=np.int16)
        b = np.asarray(Image.open(io.BytesIO(paired_rows[(47, k)]["image"])), dtype=np.int16)
        assert np.abs(a - b).mean() > 5
    assert "unpaired" in (tmp_path / "a" / "README.md").read_text()
    build(recipe, tmp_path / "b", progress=False, preview=False)
    assert shard_bytes(tmp_path / "a") == shard_bytes(tmp_path / "b"), "unpaired builds stay deterministic"
    with pytest.raises(Exception, match="pairing"):
        tiny(content={"pairing": "sometimes"})


def test_manifest_card_and_preview(built: Path):
    m = json.loads((built / "manifest.json").read_text())
    assert m["num_rows"] == 18 and m["counts"]["style"] == {"Pop_Art": 6, "Seed_Images": 6, "Van_Gogh": 6}
    for shard in m["shards"]:
        assert sha256_file(built / shard["path"]) == shard["sha256"]
    assert m["recipe"]["seed"] == 7 and len(m["recipe_hash"]) == 64
    front = yaml.safe_load((built / "README.md").read_text().split("---")[1])
    assert front["size_categories"] == ["n<1K"] and front["license"]
    assert [f["name"] for f in front["dataset_info"]["features"]][:3] == ["image", "style", "object"]
    assert {c["split"] for c in front["configs"][0]["data_files"]} == {"train", "test"}
    card = (built / "README.md").read_text()
    assert "procedural analogues" in card and "canvasdata build" in card
    assert Image.open(built / "preview.jpg").size[0] > 64
    assert verify(built).ok


def test_two_builds_and_two_workers_are_byte_identical(built: Path, tmp_path: Path):
    build(tiny(), tmp_path / "again", progress=False, preview=False)
    assert shard_bytes(tmp_path / "again") == shard_bytes(built)
    build(tiny(), tmp_path / "two", workers=2, progress=False, preview=False)
    assert shard_bytes(tmp_path / "two") == shard_bytes(built)


def test_ranks_split_shards_and_rank0_writes_the_manifest(built: Path, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    out = tmp_path / "ranks"
    assert build(tiny(), out, progress=False, preview=False, rank=Rank(0, 2)) is None
    assert not (out / "manifest.json").exists()
    build(tiny(), out, progress=False, preview=False, rank=Rank(1, 2))
    manifest = build(tiny(), out, progress=False, preview=False, rank=Rank(0, 2))
    assert manifest is not None and shard_bytes(out) == shard_bytes(built)


def test_corrupt_and_truncated_shards_are_named_and_rebuilt_alone(built: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "damaged"
    shutil.copytree(built, out)
    shards = sorted((out / "data").iterdir())
    corrupt, truncated = shards[0], shards[1]
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    truncated.write_bytes(truncated.read_bytes()[:100])
    report = verify(out)
    assert not report.ok
    assert {p for p, _ in report.problems} == {f"data/{corrupt.name}", f"data/{truncated.name}"}
    rebuilt = []
    real = runner.build_shard
    monkeypatch.setattr(runner, "build_shard", lambda r, o, s, *a, **k: rebuilt.append(s.name) or real(r, o, s, *a, **k))
    build(tiny(), out, progress=False, preview=False)
    assert sorted(rebuilt) == sorted(f"data/{p.name}" for p in (corrupt, truncated))
    assert verify(out).ok and shard_bytes(out) == shard_bytes(built)


def test_interrupted_build_leaves_no_partial_file_and_resumes(built: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "interrupted"
    grid = kinds.KINDS["grid"]
    real = grid.render
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        for i, row in enumerate(real(*args, **kwargs)):
            if calls["n"] == 2 and i == 2:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setitem(kinds.KINDS, "grid", dataclasses.replace(grid, render=dying))
    with pytest.raises(KeyboardInterrupt):
        build(tiny(), out, progress=False, preview=False)
    names = [p.name for p in (out / "data").iterdir()]
    assert len(names) == 1 and not any(n.endswith(".tmp") for n in names)
    monkeypatch.setitem(kinds.KINDS, "grid", grid)
    build(tiny(), out, progress=False, preview=False)
    assert shard_bytes(out) == shard_bytes(built) and verify(out).ok


def test_full_disk_is_a_clear_error_and_removes_the_partial_file(tmp_path: Path, monkeypatch):
    import pyarrow.parquet as pq

    def full(self, table, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with pytest.raises(FormatError, match="disk full.*partial file was removed"):
        build(tiny(), tmp_path / "full", progress=False, preview=False)
    assert not [p for p in (tmp_path / "full" / "data").glob("*")]


def test_output_of_another_recipe_is_refused_unless_overwrite(built: Path, tmp_path: Path):
    out = tmp_path / "other"
    shutil.copytree(built, out)
    with pytest.raises(BuildError, match="another recipe.*--overwrite"):
        build(tiny(seed=8), out, progress=False, preview=False)
    assert verify(out).ok, "nothing built is lost"
    build(tiny(seed=8), out, progress=False, preview=False, overwrite=True)
    assert json.loads((out / "manifest.json").read_text())["recipe"]["seed"] == 8
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not empty"):
        build(tiny(), foreign, progress=False, preview=False)


def test_unknown_style_fails_before_any_work():
    from canvasdata.recipes import RecipeError

    with pytest.raises(RecipeError, match="did you mean"):
        tiny(styles=["Van_Goh"])


def test_webdataset_shards(built: Path, tmp_path: Path, monkeypatch):
    import webdataset as wds

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "wds"
    recipe = tiny(output={"format": "webdataset"})
    build(recipe, out, progress=False, preview=False)
    tars = sorted((out / "data").glob("*.tar"))
    assert len(tars) == len(plan_shards(recipe))
    with tarfile.open(tars[0]) as t:
        members = t.getmembers()
        assert {m.mtime for m in members} == {946684800}
        assert all(m.name.count(".") == 1 for m in members)
    build(recipe, tmp_path / "wds2", progress=False, preview=False)
    assert shard_bytes(out) == shard_bytes(tmp_path / "wds2")
    sample = next(iter(wds.WebDataset([str(t) for t in tars], shardshuffle=False).decode("pil")))
    assert sample["jpg"].size == (64, 64) and "style" in sample["json"]
    ds = datasets.load_dataset(str(out))
    feats = ds["train"].features
    assert isinstance(feats["jpg"], datasets.Image) and feats["json"]["style"].num_classes == 61
    parquet_rows = sorted((r["content_id"], r["style"], r["image"]) for s in sorted((built / "data").glob("*"))
                          for r in read_shard(s))
    tar_rows = sorted((r["content_id"], r["style"], r["image"]) for s in tars for r in read_shard(s))
    assert tar_rows == parquet_rows, "both formats hold the same images"
    assert verify(out).ok


def test_export_unlearncanvas_layout(built: Path, tmp_path: Path):
    from canvasdata.formats.folder import export_folder
    from canvasdata.manifest import read_manifest

    n = export_folder(built, tmp_path / "uc", read_manifest(built), progress=False)
    files = sorted(p.relative_to(tmp_path / "uc").as_posix() for p in (tmp_path / "uc").rglob("*.jpg"))
    assert n == 18 == len(files)
    assert "Van_Gogh/Cats/3.jpg" in files and "Seed_Images/Towers/1.jpg" in files
    assert Image.open(tmp_path / "uc" / "Pop_Art" / "Cats" / "2.jpg").size == (64, 64)


def test_stale_temporary_files_are_cleaned(built: Path, tmp_path: Path):
    out = tmp_path / "stale"
    shutil.copytree(built, out)
    (out / "data" / ".train-00000-of-00003.parquet.999.tmp").write_bytes(b"partial")
    build(tiny(), out, progress=False, preview=False)
    assert verify(out).ok
    assert sorted(os.listdir(out / "data")) == sorted(os.listdir(built / "data"))
