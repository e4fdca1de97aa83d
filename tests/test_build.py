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
import torch
import yaml
from datasets.info import DatasetInfosDict
from PIL import Image

import canvasdata
from canvasdata.data import decode
from canvasdata.dataset import BuildError, Rank, build, kinds, plan_shards, runner
from canvasdata.dataset.plan import Sample, chunk_shards
from canvasdata.devices import DeviceError, join_ranks, resolve_device
from canvasdata.encode import decode_image
from canvasdata.formats import FORMATS, FormatError, features_for, get_format, read_shard, sha256_file, write_shard
from canvasdata.manifest import Manifest, ManifestError
from canvasdata.recipes import parse_recipe
from canvasdata.recipes.types import KIND_SHAPES, SHARD_FORMATS
from canvasdata.verify import verify

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
    for group in by_content.values():
        assert len({r["style"] for r in group}) == 3 and len({r["index"] for r in group}) == 1
        assert len({r["seed"] for r in group}) == 3, "each style has its own painting seed"
    images = [np.asarray(Image.open(io.BytesIO(r["image"]))) for r in by_content["Cats-00001"]]
    assert images[0].shape == (64, 64, 3) and not np.array_equal(images[0], images[1])


def test_unpaired_content_gives_every_style_its_own_scene(tmp_path: Path):
    recipe = tiny(styles=["Seed_Images", "Pop_Art"], objects=["Cats"], content={"pairing": "unpaired"})
    build(recipe, tmp_path / "a", progress=False, preview=False)
    rows = {(r["style"], r["index"]): r for s in sorted((tmp_path / "a" / "data").glob("*.parquet"))
            for r in read_shard(s)}
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
    info = front["dataset_info"]  # datasets' push_to_hub layout, with the built sizes
    assert list(info) == ["features", "splits", "download_size", "dataset_size"]
    assert info["splits"] == [{"name": s, "num_bytes": v["bytes"], "num_examples": v["rows"]}
                              for s, v in m["splits"].items()]
    assert info["download_size"] == info["dataset_size"] == m["num_bytes"]
    read = DatasetInfosDict.from_dataset_card_data(front)["default"]  # as datasets reads the card back
    assert read.features == get_format("parquet").hub_features(Manifest.read(built).features)
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
    monkeypatch.setattr(runner, "build_shard",
                        lambda r, o, s, *a, **k: rebuilt.append(s.name) or real(r, o, s, *a, **k))
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


def test_manifest_round_trip(built: Path, tmp_path: Path):
    raw = json.loads((built / "manifest.json").read_text())
    m = Manifest.read(built)
    assert m.to_dict() == raw and list(m.to_dict()) == list(raw), "the JSON form, key for key and in order"
    assert m.num_rows == 18 and m.splits["train"].rows == 12 and m.splits["test"].shards == 2
    assert m.class_names("style")[55] == "Van_Gogh" and m.features["object"].names[4] == "Cats"
    assert m.facts.kind == "grid" and m.facts.style_space == "uc60" and m.facts.images_per_cell == 3
    assert sum(s.rows for s in m.shards_of("test")) == 6 and m.prompt_files is None
    assert Manifest.from_dict(m.to_dict()) == m
    m.write(tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == (built / "manifest.json").read_bytes()
    assert m["num_rows"] == 18 and m["shards"][0]["sha256"] == m.shards[0].sha256
    with pytest.raises(ManifestError, match="no 'shards'"):
        Manifest.from_dict({k: v for k, v in raw.items() if k != "shards"})
    with pytest.raises(ManifestError, match="no manifest.json"):
        Manifest.read(tmp_path / "nothing")


def test_build_returns_the_typed_manifest(tmp_path: Path):
    m = build(tiny(objects=["Cats"], images_per_cell=2, splits={"train": "1", "test": "2"}), tmp_path,
              progress=False, preview=False)
    assert isinstance(m, Manifest) and m.num_rows == 6 and m.shards[0].split == "train"
    assert m == Manifest.read(tmp_path)


def test_format_registry_names_the_registered_formats(tmp_path: Path):
    assert get_format("webdataset").extension == ".tar"
    with pytest.raises(FormatError, match="parquet, webdataset"):
        get_format("zip")
    with pytest.raises(FormatError, match="parquet, webdataset"):
        write_shard("zip", tmp_path / "x.zip", [], features_for(["a"], ["b"]))
    with pytest.raises(FormatError, match=r"expected \.parquet or \.tar"):
        read_shard(tmp_path / "x.zip")


def test_recipes_ask_the_declarations_and_the_registries_implement_them(monkeypatch):
    """A recipe names what `recipes.types` declares (it imports no registry); each registry implements exactly
    the declared names."""
    assert list(FORMATS) == list(SHARD_FORMATS) and list(kinds.KINDS) == list(KIND_SHAPES)
    assert all(kinds.KINDS[n].name == n for n in KIND_SHAPES) and all(FORMATS[n].name == n for n in FORMATS)
    monkeypatch.setitem(KIND_SHAPES, "grid2", dataclasses.replace(KIND_SHAPES["grid"], name="grid2"))
    r = tiny(kind="grid2")
    assert r.kind == "grid2" and r.num_images == 18
    with pytest.raises(ValueError, match="unknown name 'cube' in dataset kinds"):
        kinds.kind_named("cube")


def test_shard_splitting_and_naming():
    samples = [Sample("Pop_Art", "Cats", i, "train") for i in range(1, 6)]
    shards = chunk_shards(samples, 2, "parquet", config="Cats")
    assert [s.name for s in shards] == [f"data/Cats/train-0000{i}-of-00003.parquet" for i in range(3)]
    assert [len(s.samples) for s in shards] == [2, 2, 1]
    assert [s.name for s in plan_shards(tiny())][:2] == ["data/train-00000-of-00003.parquet",
                                                        "data/train-00001-of-00003.parquet"]


def test_one_device_and_rank_set_up(monkeypatch):
    assert resolve_device("auto").type in ("cpu", "cuda") and resolve_device("cpu") == resolve_device("cpu")
    with pytest.raises(DeviceError, match="allowed cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda:0")
    assert Rank.from_env({"RANK": "1", "WORLD_SIZE": "3"}) == Rank(1, 3) and Rank(1, 3).mine(4)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    session = join_ranks("cpu", rank=Rank(1, 2), independent=True)
    assert (session.rank, session.world, session.distributed, session.main) == (1, 2, False, False)
    with pytest.raises(DeviceError, match="torchrun"):
        join_ranks("cpu", rank=Rank(1, 2))


def test_one_image_decoder(built: Path):
    jpg = next(read_shard(sorted((built / "data").glob("*.parquet"))[0]))["image"]
    assert decode_image(jpg).size == (64, 64) and decode_image(jpg, 32).size == (32, 32)  # DCT-scaled
    assert decode_image(jpg, 48, resize=True).size == (48, 48)
    assert tuple(decode(jpg, None).shape) == (3, 64, 64) and decode(jpg, 40).dtype == torch.uint8
    old = Image.open(io.BytesIO(jpg))
    old.draft("RGB", (40, 40))
    old = old.convert("RGB").resize((40, 40), Image.BICUBIC, reducing_gap=None)
    assert np.array_equal(decode(jpg, 40).permute(1, 2, 0).numpy(), np.asarray(old)), "decoding is unchanged"


def test_build_modules_import_their_dependencies_at_the_top():
    """No function-level import of canvasdata (a dodged cycle) in the build side of the package, and no
    cycle among the package's module-level imports (imports only for type checking do not count)."""
    import ast

    root = Path(canvasdata.__file__).parent
    build_side = ["dataset", "formats", "sources", "card.py", "data.py", "devices.py", "encode.py", "fields.py",
                  "hub.py", "manifest.py", "recipes.py", "sheet.py", "shipped.py"]
    graph: dict[str, set[str]] = {}
    nested: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        module = ".".join(("canvasdata", *rel.with_suffix("").parts)).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("canvasdata"):
                top |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                top |= {a.name for a in node.names if a.name.startswith("canvasdata")}
        graph[module] = top
        if rel.parts[0] in build_side and rel.as_posix() != "formats/folder.py":
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    nested += [f"{rel}:{n.lineno}" for n in ast.walk(node) if isinstance(n, ast.ImportFrom)
                               and (n.module or "").startswith("canvasdata")]
    assert not nested, f"imports inside functions: {nested}"
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, "import cycle: " + " -> ".join([*path, m, d])
            if d not in state:
                visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_auto_workers_render_a_small_build_here_and_a_large_one_on_every_core(monkeypatch):
    monkeypatch.setattr(runner, "cores_per_local_rank", lambda: 4)
    assert runner.default_workers("cpu", 100 * 256 ** 2) == 1          # the mini build: spawning costs more
    assert runner.default_workers("cpu", 1024 * 512 ** 2) == 4         # one worker per core
    assert runner.render_threads("cpu") == runner.RENDER_THREADS == 1  # each renders with one torch thread
    assert runner.default_workers("meta", 1024 * 512 ** 2) == 1        # a GPU (any non-CPU device) does the work
