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
    "data/train-00000-of-00002.parquet": "f68683358f0a93b6fe4bc56082cb556589a894b4e66fe2ffea88a9f221db0068",
    "data/train-00001-of-00002.parquet": "58691c7eecbdc811a29c94fdfa3e350c49c516f2b048ae38f31b9a146f0ea4cd",
    "data/test-00000-of-00001.parquet": "d921179197637d90e901bfd5095ea321d146a5ef28c0f454c6a967db78db31a9",
    "recipe.toml": "a76164311afa6193b5a91cf4e53f7686634da4fd81bb6561f2adb499cea32821",
    "preview.jpg": "a5660d6e821c8bceccf08b899c28268de29f285d2a02964c0d11dd66f239a439",
    "README.md": "ec2bf81acb122ee39d949a1b17106d5672e9982e8b73ffc5bbf9860bb6f30383",
}
CONCEPT_SET = {
    "recipe_hash": "45e7af23ca5eaa03f6df7faa3d6e80844af123b589cfe9072709e0429a89c189",
    "data/Van_Gogh/train-00000-of-00001.parquet": "f5d81b4448216cb33e76fd06428c97a8f38bec94b4b882c3bad413b09a48ab06",
    "data/Van_Gogh/test-00000-of-00001.parquet": "67b3c80ebdc79fb256a59b210c6e73035e212055778d0af887d01429a79c51fc",
    "data/Cats/train-00000-of-00001.parquet": "2ef0f9ef4f26233905e1543e0e0ece642dbe5c288c16caa2bb44906591083e46",
    "data/Cats/test-00000-of-00001.parquet": "8840cb007cde9436a8f5bf50932307461ce95c36f30e2a2c0ab212be64a23cec",
    "data/Horses/train-00000-of-00001.parquet": "7487d5fe762584cdc36b8bfbeb7650e23be929ad7bec07e243e3547f69dd0b95",
    "data/Horses/test-00000-of-00001.parquet": "c2fec08af7f5683c82f6d2803ec211be412da6fa889e1ab44c9c31cc13f217f0",
    "prompts/Van_Gogh/forget_prompts.json": "42a89ef9c121dbdfd5dfa411913116844473547fdd9427842c1837e0cf7d553d",
    "prompts/Van_Gogh/retain_prompts.json": "7cc71ef01e09f51fd147d2cdb77211f067dc65871622f5e1bba830550e7b1945",
    "prompts/Cats/forget_prompts.json": "f8502d0cb1e5ae1a0b5dbc19a56b2bb1d8ca341de4d211f60ec3c0f0bee3b3c3",
    "prompts/Cats/retain_prompts.json": "dda7308162a848e116f144e80074f296aa8f2ff7f876d29f598c0a34b257e9e8",
    "prompts/Cats/unrelated_prompts.json": "62dc19f03f018d051bd0df317db3c6731c93fd4b5437277d69d8f5b19ba7e8d1",
    "prompts/Horses/forget_prompts.json": "8465290274bef1178c7357e15321bf87c07f90e87acc16c3f1dccef4bd340a1e",
    "prompts/Horses/retain_prompts.json": "2481c865745b78b507bbd60857121f467a006d97435883c5a7e1640bea32d419",
    "preview.jpg": "73f62ecbbd52910cce08effa75b4b455dc750c6f27f8a63f92ab2605611ca4cf",
    "README.md": "ebb47a3623f50beaabc253ae0d80ffb36ad743cb73218e9339bafc7a9ce32b51",
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
