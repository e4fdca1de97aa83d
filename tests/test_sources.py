"""Real-content backends: photo folders (bad files, EXIF, builds) and tiny diffusers pipelines."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from canvasdata.cli import main
from canvasdata.dataset import BuildError, build
from canvasdata.recipes import ContentConfig, RecipeError, load_recipe, parse_recipe
from canvasdata.recipes.options import PAINTER_OPTIONS, SOURCE_OPTIONS, DiffusersOptions, Img2ImgOptions
from canvasdata.sources import PAINTERS, SOURCES, make_painter
from canvasdata.verify import verify


def photo_folder(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for obj in ("Cats", "Dogs"):
        (root / obj).mkdir(parents=True)
        for k in range(n):
            Image.fromarray((rng.random((90, 120, 3)) * 255).astype("uint8")).save(root / obj / f"{k:02d}.jpg")
    return root


def photo_recipe(path: Path, **content) -> object:
    return parse_recipe({"name": "photos", "seed": 1, "styles": ["Seed_Images", "Pop_Art"], "objects": ["Cats", "Dogs"],
                         "images_per_cell": 2, "resolution": 64, "splits": {"train": "1", "test": "2"},
                         "content": {"source": "photos", "path": str(path), **content}}, "photos.toml")


def test_photo_build_loads_with_source_column(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = photo_folder(tmp_path / "photos")
    m = build(photo_recipe(root), tmp_path / "out", progress=False, preview=False)
    assert m["backends"]["source"] == "photos" and m["backends"]["photos"] == {"Cats": 3, "Dogs": 3}
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train")
    assert set(ds["source"]) == {"photos"} and ds[0]["image"].size == (64, 64)
    seed_row = next(r for r in ds if r["style"] == 47 and r["object"] == 4)
    expected = np.asarray(Image.open(root / "Cats" / "00.jpg").crop((15, 0, 105, 90)).resize((64, 64)), dtype=float)
    assert np.abs(np.asarray(seed_row["image"], dtype=float) - expected).mean() < 25


PHOTOS_TOML = """name = "photos"
seed = 1
styles = ["Seed_Images", "Pop_Art"]
objects = ["Cats", "Dogs"]
images_per_cell = 2
resolution = 64

[splits]
train = "1"
test = "2"

[content]
source = "photos"
path = 'photos'   # relative: to this file
"""


def shard_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "data").glob("*.parquet"))}


def test_a_relative_photo_folder_rebuilds_from_the_builds_own_recipe_copy(tmp_path: Path, monkeypatch):
    project = tmp_path / "project"
    photo_folder(project / "photos")
    (project / "photos.toml").write_text(PHOTOS_TOML)
    monkeypatch.chdir(tmp_path)   # not the recipe's folder: `path` is relative to the file, not to here
    assert main(["build", "project/photos.toml", "--out", "first", "--workers", "1", "-q"]) == 0
    copy = (tmp_path / "first" / "recipe.toml").read_text()
    assert f"path = {str(project / 'photos')!r}".replace("'", '"') in copy, copy
    assert copy.replace(copy.splitlines()[-1], "") == PHOTOS_TOML.replace(PHOTOS_TOML.splitlines()[-1], ""), \
        "only the path line differs from the user's file"
    assert load_recipe(project / "photos.toml").hash() == load_recipe(tmp_path / "first" / "recipe.toml").hash()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)   # the rebuild command, run from anywhere, finds the photos
    assert main(["build", str(tmp_path / "first" / "recipe.toml"), "--out", "again", "--workers", "1", "-q"]) == 0
    assert shard_bytes(elsewhere / "again") == shard_bytes(tmp_path / "first")
    assert verify(tmp_path / "first").ok and verify(elsewhere / "again").ok
    # a rebuild into the build's own folder is a finished build of the same recipe, not "another recipe"
    assert main(["build", str(tmp_path / "first" / "recipe.toml"), "--out", str(tmp_path / "first"), "-q"]) == 0


def test_where_a_photo_folder_lives_is_not_the_recipes_identity(tmp_path: Path):
    a, b = photo_folder(tmp_path / "a"), photo_folder(tmp_path / "b")
    assert photo_recipe(a).hash() == photo_recipe(b).hash()
    assert photo_recipe(a).to_dict()["content"]["options"]["path"] == str(a)   # recorded, for provenance
    assert photo_recipe(a, min_size=32).hash() != photo_recipe(a).hash()


def test_bad_files_are_named_and_skipped_only_when_allowed(tmp_path: Path):
    root = photo_folder(tmp_path / "photos", n=4)
    (root / "Cats" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (root / "Cats" / "notes.txt").write_text("hello")
    Image.new("RGB", (20, 20)).save(root / "Dogs" / "tiny.png")
    with pytest.raises(BuildError) as err:
        build(photo_recipe(root), tmp_path / "out", progress=False, preview=False)
    msg = str(err.value)
    assert "broken.jpg: unreadable" in msg and "notes.txt: not an image file" in msg and "tiny.png: too small" in msg
    assert "skip_bad" in msg
    m = build(photo_recipe(root, skip_bad=True), tmp_path / "out2", progress=False, preview=False)
    assert len(m["backends"]["skipped"]) == 3


def test_exif_orientation_is_honoured(tmp_path: Path):
    from canvasdata.sources.photos import load_photo

    img = Image.new("RGB", (80, 40), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 40))      # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6                             # rotate 90 degrees clockwise when displayed
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    arr = load_photo(tmp_path / "r.jpg", 40)
    # Upright, the blue half is on top: the centre crop of the 40x80 portrait is the middle band.
    top, bottom = arr[:5].mean((0, 1)), arr[-5:].mean((0, 1))
    assert top[2] > top[0] and bottom[0] > bottom[2]


def test_object_targets_need_a_source_that_removes_objects(tmp_path: Path):
    root = photo_folder(tmp_path / "photos")
    r = parse_recipe({"kind": "concepts", "name": "c", "seed": 1, "prompts_per_theme": 1, "resolution": 32,
                      "concepts": [{"target": "object:Cats", "themes": ["Seed_Images"]}],
                      "content": {"source": "photos", "path": str(root)}}, "c.toml")
    with pytest.raises(BuildError, match="cannot render a scene without its object"):
        build(r, tmp_path / "out", progress=False)


def test_diffusers_source_and_img2img_painter(tiny_sd_pipeline: Path, tmp_path: Path, monkeypatch):
    pipe = tiny_sd_pipeline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = {"name": "sd", "seed": 3, "styles": ["Seed_Images", "Van_Gogh"], "objects": ["Cats"], "images_per_cell": 2,
            "resolution": 32, "splits": {"train": "1-2"}, "output": {"batch_size": 2}}
    text = parse_recipe({**base, "content": {"source": "diffusers", "model": str(pipe), "steps": 2}}, "sd.toml")
    m1 = build(text, tmp_path / "a", progress=False, preview=False)
    m2 = build(text, tmp_path / "b", progress=False, preview=False)
    assert [s["sha256"] for s in m1["shards"]] == [s["sha256"] for s in m2["shards"]]
    assert m1["backends"]["model"] == str(pipe) and m1["backends"]["steps"] == 2
    assert set(datasets.load_dataset(str(tmp_path / "a"), split="train")["source"]) == {"diffusers"}
    paint = parse_recipe({**base, "content": {"source": "procedural", "painter": "diffusers-img2img",
                                              "painter_model": str(pipe), "strength": 0.5, "img2img_steps": 4}},
                         "sd.toml")
    m3 = build(paint, tmp_path / "c", progress=False, preview=False)
    assert m3["backends"]["painter"] == "diffusers-img2img" and m3["backends"]["strength"] == 0.5
    assert "diffusers-img2img" in (tmp_path / "c" / "README.md").read_text()
    rows = datasets.load_dataset(str(tmp_path / "c"), split="train")
    assert rows.num_rows == 4


def p_recipe(**content) -> object:
    return parse_recipe({"name": "p", "seed": 1, "objects": ["Cats"], "styles": ["Seed_Images"], "images_per_cell": 1,
                         "resolution": 32, "content": content}, "p.toml")


@pytest.mark.parametrize("content, message", [
    ({"source": "photos", "path": "x", "min_size": "big"}, "field 'content.min_size': expected int, got str 'big'"),
    ({"source": "photos"}, "field 'content.path': is required"),
    ({"source": "photos", "path": "x", "skip_bad": 1}, "field 'content.skip_bad': expected bool, got int 1"),
    ({"source": "diffusers"}, "field 'content.model': is required"),
    ({"source": "diffusers", "model": "m", "dtype": "float8"},
     "field 'content.dtype': 'float8' is not one of auto, float32, float16, bfloat16"),
    ({"source": "diffusers", "model": "m", "steps": 0}, "field 'content.steps': 0 is out of range: allowed 1..10000"),
    ({"source": "diffusers", "model": "m", "guidance": "high"}, "field 'content.guidance': expected int or float"),
    ({"painter": "diffusers-img2img"},
     "field 'content.painter_model': (or 'content.model') is required for painter = 'diffusers-img2img'"),
    ({"painter": "diffusers-img2img", "model": "m", "strength": 1.5},
     "field 'content.strength': 1.5 is out of range: allowed (0, 1]"),
    ({"painter": "diffusers-img2img", "model": "m", "strength": 0}, "field 'content.strength': 0.0 is out of range"),
    ({"painter": "oils"}, "field 'content.painter': 'oils' is not one of procedural, diffusers-img2img"),
])
def test_backend_options_are_checked_when_the_recipe_is_read(content, message):
    """Each backend's options dataclass is the one declaration: the loader reads it, so a bad option is refused
    with the file and the field before any build starts (and without importing the backend)."""
    with pytest.raises(RecipeError) as e:
        p_recipe(**content)
    assert str(e.value).startswith("p.toml: ") and message in str(e.value)


def test_backends_read_their_typed_options():
    r = p_recipe(source="diffusers", model="m", guidance=7, painter="diffusers-img2img", strength=1)
    assert r.content.source_options() == DiffusersOptions(model="m", guidance=7.0)
    assert r.content.painter_options() == Img2ImgOptions(model="m", guidance=7.0, strength=1.0)
    assert isinstance(r.content.source_options().guidance, float)
    assert make_painter(r).describe() == {"painter": "diffusers-img2img", "painter_model": "m", "strength": 1.0,
                                          "style_prompt": r.prompt_template, "img2img_steps": 30, "guidance": 7.0}


def test_painters_are_a_registry_of_the_declared_backends():
    assert set(SOURCES) == set(SOURCE_OPTIONS) == {"procedural", "photos", "diffusers"}
    assert set(PAINTERS) == set(PAINTER_OPTIONS) == {"procedural", "diffusers-img2img"}
    assert all(SOURCES[n].options is SOURCE_OPTIONS[n] for n in SOURCES)
    assert all(PAINTERS[n].options is PAINTER_OPTIONS[n] for n in PAINTERS)
    r = p_recipe()
    r = r.replace(content=ContentConfig(options=(("painter", "oils"),)))  # past the loader: the registry refuses it
    with pytest.raises(ValueError, match=r"p\.toml: field 'content.painter': unknown name 'oils' in painters"):
        make_painter(r)
