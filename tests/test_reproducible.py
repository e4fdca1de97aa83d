"""Byte-identical builds: the shipped `mini` and a small concept set rebuild to the checksums recorded
before the recipe types became a leaf and the backends were built once per process (issue 22).

A change that is meant to move pixels or files (content, styles, the card) re-records these values in
its own commit and says so. Re-recorded once (issue 23) when rendering on the CPU was pinned to one torch
thread a process: the mini shards had been recorded with the 2 threads of a 2-core machine, and a machine
with other cores (or `--workers 2`) wrote other bytes. The cards' README.md re-recorded once more when the
regenerate command they print gained `--format` and `--device` (one command form with `canvasdata info`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import canvasdata
from canvasdata.dataset import build
from canvasdata.devices import intra_op_threads
from canvasdata.manifest import Manifest
from canvasdata.recipes import load_recipe, parse_recipe

CONCEPTS = {
    "kind": "concepts", "name": "concepts-tiny", "seed": 3, "prompts_per_theme": 2, "images_per_prompt": 2,
    "resolution": 64, "jpeg_quality": 95, "splits": {"train": "1", "test": "2"},
    "concepts": [
        {"target": "style:Van_Gogh", "themes": ["Cats", "Towers"]},
        {"target": "object:Cats", "themes": ["Seed_Images", "Pop_Art"], "retain": ["Dogs"]},
        {"target": "object:Horses", "themes": ["Seed_Images"], "replacement": "Dogs"},
    ],
    "output": {"shard_rows": 100, "batch_size": 4},
}  # tests/test_concepts.py's recipe, frozen here

MINI = {
    "recipe_hash": "ffca73a638097208700324afbb766e7f606112f0e96dd93ea75599ad68ad68ce",
    "data/train-00000-of-00002.parquet": "26abf40f1f94fa0b06ee2fbc57aa373bbbedd50c1d7ac2b5c58769bb70c09f4b",
    "data/train-00001-of-00002.parquet": "4381f7680de036d3b88a81f157bee63ec27eb20d72a4c6a2c1bdd88e07a8eb32",
    "data/test-00000-of-00001.parquet": "2b0a0f1da20e5fbbbde4511c884ef14f6c64d75e6c51e4dace4e18597f62213a",
    "recipe.toml": "a76164311afa6193b5a91cf4e53f7686634da4fd81bb6561f2adb499cea32821",
    "preview.jpg": "58a8e7cdf7932fac1005061b4eb7000a73392917801c0a67f7240d6442a84205",
    "README.md": "a7120fa79a770a3786e2de2c948c9b379da45b2763c3b5a9a11c0539061ddc71",
}
CONCEPT_SET = {
    "recipe_hash": "45e7af23ca5eaa03f6df7faa3d6e80844af123b589cfe9072709e0429a89c189",
    "data/Van_Gogh/train-00000-of-00001.parquet": "1c72e77ff8881e436aab85f0025e053b0b70a39fb41f5d6d56f7cd6a410b986f",
    "data/Van_Gogh/test-00000-of-00001.parquet": "4f7c4b22200e4b83d7c63f52d63648ddf25ac3aacad017e5e8a9e0ee10ed23ea",
    "data/Cats/train-00000-of-00001.parquet": "3c6f6000fc15b9e72b923c1340342f04d41e0d1a5ab6d518f93d4e4ac8f54d1c",
    "data/Cats/test-00000-of-00001.parquet": "7f5779994903cdecbb5a2a2cb37828a9445642c38127f206a5e14d0ddade2844",
    "data/Horses/train-00000-of-00001.parquet": "c6763fa20f8242b7eb5c277c81da723594e988607ebecc83a2071e8e811128a5",
    "data/Horses/test-00000-of-00001.parquet": "18ac07af9b88fa0be51fcd987b94340f3730174feecdf79368a1039fcf917e32",
    "prompts/Van_Gogh/forget_prompts.json": "42a89ef9c121dbdfd5dfa411913116844473547fdd9427842c1837e0cf7d553d",
    "prompts/Van_Gogh/retain_prompts.json": "7cc71ef01e09f51fd147d2cdb77211f067dc65871622f5e1bba830550e7b1945",
    "prompts/Cats/forget_prompts.json": "f8502d0cb1e5ae1a0b5dbc19a56b2bb1d8ca341de4d211f60ec3c0f0bee3b3c3",
    "prompts/Cats/retain_prompts.json": "dda7308162a848e116f144e80074f296aa8f2ff7f876d29f598c0a34b257e9e8",
    "prompts/Cats/unrelated_prompts.json": "62dc19f03f018d051bd0df317db3c6731c93fd4b5437277d69d8f5b19ba7e8d1",
    "prompts/Horses/forget_prompts.json": "8465290274bef1178c7357e15321bf87c07f90e87acc16c3f1dccef4bd340a1e",
    "prompts/Horses/retain_prompts.json": "2481c865745b78b507bbd60857121f467a006d97435883c5a7e1640bea32d419",
    "preview.jpg": "e4240fd4f457f14b28da9c59e19a9246d21600fe0da3bfb63c071daec52e0b89",
    "README.md": "39985fc3392c285077a9abb0a0e6210ee216451c52c3c8e884b5d5789a91e90d",
}
RECORDED_VERSION = "0.1.0"  # the package version the cards above were written by (the card names it)


def checksums(out: Path) -> dict[str, str]:
    """What the build at `out` holds: its recipe hash, and the sha256 of every shard and every other file the
    manifest seals (the card's version line read as the recorded version's)."""
    m = Manifest.read(out)
    sums = {"recipe_hash": m.recipe_hash, **{s.path: s.sha256 for s in m.shards}}
    for f in m.files:
        data = (out / f.path).read_bytes()
        if f.path == "README.md":
            data = data.replace(f"version {canvasdata.__version__} ".encode(), f"version {RECORDED_VERSION} ".encode())
        sums[f.path] = hashlib.sha256(data).hexdigest()
    return sums


@pytest.mark.parametrize("name", ["mini", "concepts"])
def test_builds_are_byte_identical_to_the_recorded_ones(name: str, tmp_path: Path):
    recipe = load_recipe("mini") if name == "mini" else parse_recipe(CONCEPTS, "concepts.toml")
    with intra_op_threads(3):  # not the one thread a render uses: the caller's thread count must not matter
        build(recipe, tmp_path / name, progress=False)
    assert checksums(tmp_path / name) == (MINI if name == "mini" else CONCEPT_SET)


def test_a_photos_build_is_byte_identical_to_the_recorded_one(tmp_path: Path):
    """The photos source (its folder is outside the recipe, so only what does not name the folder is compared)."""
    rng = np.random.default_rng(0)  # tests/test_sources.py's photo folder and recipe, frozen here
    for obj in ("Cats", "Dogs"):
        folder = tmp_path / "photos" / obj
        folder.mkdir(parents=True)
        for k in range(3):
            Image.fromarray((rng.random((90, 120, 3)) * 255).astype("uint8")).save(folder / f"{k:02d}.jpg")
    recipe = parse_recipe({"name": "photos", "seed": 1, "styles": ["Seed_Images", "Pop_Art"],
                           "objects": ["Cats", "Dogs"], "images_per_cell": 2, "resolution": 64,
                           "splits": {"train": "1", "test": "2"},
                           "content": {"source": "photos", "path": str(tmp_path / "photos")}}, "photos.toml")
    build(recipe, tmp_path / "out", progress=False)
    sums = checksums(tmp_path / "out")
    assert {k: v for k, v in sums.items() if k.startswith("data/") or k == "preview.jpg"} == {
        "data/train-00000-of-00001.parquet": "f946fd8a8c6ad94ac6f7690fb802349071f573fc638c2df6fdcc9d7e237c3744",
        "data/test-00000-of-00001.parquet": "7df70ec7cfa8be6170b9fcec3dd7987aa5bcf08d228d90f47922d6de7d0788ce",
        "preview.jpg": "a8c9ea719ae8a8dde551bdcd1e2f2eb2dc972763f5a21b8830ad6550545f6883",
    }
