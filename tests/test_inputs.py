"""Inputs validated up front, each refusal one line: recipes (prompt templates, splits, unknown keys in
every table, counts), command-line counts, answer sets (one answer per style, object and seed, formats
not read, non-RGB images), decompression bombs wherever images are decoded, and pushes without a network."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import httpx2
import numpy as np
import pytest
from huggingface_hub import HfApi, constants
from PIL import Image

from canvasdata.cli import main
from canvasdata.cliargs import non_negative_int, positive_int
from canvasdata.dataset import build
from canvasdata.encode import ImageError, decode_image, image_mode
from canvasdata.errors import CanvasdataError, MissingFileError
from canvasdata.evaluate import read_answer_folder, read_answers, score_answers
from canvasdata.evaluate.answers import read_reference
from canvasdata.hub import HubError, push_folder
from canvasdata.judges.recipe import parse_judge_recipe
from canvasdata.recipes import RecipeError, load_recipe, parse_recipe
from canvasdata.shipped import builtin_dir
from canvasdata.sources import make_painter
from canvasdata.taxonomy import OBJECTS, UC50, closest_names

BASE = {"name": "t", "seed": 1, "styles": ["Seed_Images", "Van_Gogh"], "objects": ["Cats"],
        "images_per_cell": 4, "resolution": 32, "splits": {"train": "1-3", "test": "4"}}
CONTENT_KEYS = "painter, pairing, seed, source"  # what [content] takes with the procedural source and painter
UNREACHABLE = "(the Hub could not be reached: check the network, a proxy or HF_HUB_OFFLINE)"
REFUSED_PORT = "http://127.0.0.1:9"  # nothing listens there: connections are refused at once


def recipe(**changes) -> object:
    return parse_recipe({**BASE, **changes}, "t.toml")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height pixels and holds none (what a decompression bomb looks like to a reader)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# --- recipes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(builtin_dir("builders").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_recipe_parses(path: Path):
    assert load_recipe(path).num_images > 0


def test_a_prompt_template_is_checked_before_anything_renders(tmp_path: Path, capsys):
    with pytest.raises(RecipeError) as e:
        recipe(prompt_template="A {oops} {object} in {style} style.")
    assert str(e.value) == ("t.toml: field 'prompt_template': unknown placeholder {oops} in "
                            "'A {oops} {object} in {style} style.'; allowed: {object}, {style} (and {{ }} for literal "
                            "braces)")
    with pytest.raises(RecipeError, match=r"field 'prompt_template': 'A \{object\}.' lacks \{style\}"):
        recipe(prompt_template="A {object}.")
    with pytest.raises(RecipeError, match=r"field 'prompt_template': malformed template 'A \{object\} \{style'"):
        recipe(prompt_template="A {object} {style")
    for bad, name in (("A {} {object} {style}", "{}"), ("{object} {style:{width}}", "{width}"),
                      ("{object.upper} {style}", "{object.upper}")):
        with pytest.raises(RecipeError, match=f"unknown placeholder {name}".replace("{", r"\{").replace("}", r"\}")):
            recipe(prompt_template=bad)
    assert recipe(prompt_template="{{literal}} {object!s} in {style:>3}").prompt_template.startswith("{{literal}}")
    path = tmp_path / "oops.toml"
    path.write_text('name = "oops"\nseed = 1\nstyles = ["Van_Gogh"]\nobjects = ["Cats"]\nimages_per_cell = 1\n'
                    'resolution = 32\nprompt_template = "A {oops} image"\n')
    assert main(["build", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "oops.toml: field 'prompt_template': unknown placeholder {oops}" in one_line_error(capsys)
    assert not (tmp_path / "out").exists(), "nothing is written before the recipe is valid"


def test_a_backend_prompt_is_checked_against_its_own_placeholders():
    content = {"source": "diffusers", "model": "x", "prompt": "A {style} {object}"}
    with pytest.raises(RecipeError, match=r"'content.prompt': unknown placeholder \{style\} .*allowed: \{object\} "):
        recipe(content=content)
    painter = {"painter": "diffusers-img2img", "painter_model": "x", "style_prompt": "{style} {object} {mood}"}
    with pytest.raises(RecipeError, match=r"field 'content.style_prompt': unknown placeholder \{mood\}"):
        recipe(content=painter)


@pytest.mark.parametrize("spec, message", [
    ("3-1", "field 'splits.train': range '3-1' runs backwards: write \"1-3\""),
    ("1-", "field 'splits.train': expected an index, a range \"A-B\" (\"1-18\") or a list of them, got '1-'"),
    ("-3", "got '-3'"),
    ("a", "got 'a'"),
    ("1 - 3", "got '1 - 3'"),
    (True, "got True"),
    ([], "field 'splits.train': is empty: give it indices within 1..4 (images_per_cell), or leave the split out"),
    (["1-3", 2], "field 'splits.train': index 2 is listed twice"),
    ("0-3", "field 'splits.train': index 0 is out of range: allowed 1..4 (images_per_cell)"),
    ("2-99999999999", "field 'splits.train': index 99999999999 is out of range: allowed 1..4 (images_per_cell)"),
])
def test_splits_parse_strictly(spec, message):
    with pytest.raises(RecipeError) as e:
        recipe(splits={"train": spec, "test": "4"})
    assert str(e.value).startswith("t.toml: ") and message in str(e.value)


def test_an_empty_split_is_named():
    with pytest.raises(RecipeError, match=r"^t\.toml: field 'splits\.val': is empty"):
        recipe(splits={"train": "1-3", "val": [], "test": "4"})
    assert recipe(splits={"train": ["1-2", 3], "test": ["4"]}).splits == (("train", (1, 2, 3)), ("test", (4,)))


@pytest.mark.parametrize("change, message", [
    ({"content": {"seeed": 1}},
     f"t.toml: field 'content.seeed': is not a known field of [content]; did you mean seed? (allowed: {CONTENT_KEYS})"),
    ({"output": {"shard_row": 9}}, "field 'output.shard_row': is not a known field of [output]; did you mean "
                                   "shard_rows? (allowed: batch_size, format, row_group_rows, shard_rows)"),
    ({"card": {"licence": "mit"}}, "field 'card.licence': is not a known field of [card]; did you mean license?"),
    ({"contnet": {"seed": 1}}, "field 'contnet': is not a known field of the top level; did you mean content?"),
    ({"content": {"zzz": 1}}, f"field 'content.zzz': is not a known field of [content]; allowed: {CONTENT_KEYS}"),
    ({"content": {"source": "photos", "path": "p", "min_sise": 8}},
     "field 'content.min_sise': is not a known field of [content]; did you mean min_size?"),
    ({"custom_styles": {"Glitter": {"colour": 1, "steps": []}}},
     "style 'Glitter': field 'colour' is not a known field"),
])
def test_unknown_keys_are_refused_in_every_table(change, message):
    with pytest.raises(CanvasdataError) as e:
        make_painter(recipe(**change))  # custom styles' steps are the procedural painter's to check
    assert message in str(e.value)


def test_unknown_keys_in_concept_tables_and_backend_options_that_are_known():
    concepts = {"kind": "concepts", "prompts_per_theme": 2, "splits": {"train": "1", "test": "2"},
                "concepts": [{"target": "style:Van_Gogh", "themes": ["Cats"], "twinn": "Monet"}]}
    data = {k: v for k, v in {**BASE, **concepts}.items() if k not in ("styles", "objects", "images_per_cell")}
    with pytest.raises(RecipeError, match=r"field 'concepts\[0\]\.twinn': is not a known field of \[concepts\[0\]\]; "
                                          r"did you mean twin\?"):
        parse_recipe(data, "t.toml")
    r = recipe(content={"source": "diffusers", "model": "m", "steps": 2, "painter": "diffusers-img2img",
                        "strength": 0.5})
    assert dict(r.content.options) == {"model": "m", "painter": "diffusers-img2img", "steps": 2, "strength": 0.5}


def test_the_did_you_mean_helper_can_list_every_allowed_name():
    assert closest_names("seeed", ["seed", "source"]) == "; did you mean seed?"
    listing = closest_names("seeed", ["seed", "source"], list_allowed=True)
    assert listing == "; did you mean seed? (allowed: seed, source)"
    assert closest_names("zzz", ["seed", "source"], list_allowed=True) == "; allowed: seed, source"


@pytest.mark.parametrize("change, message", [
    ({"images_per_cell": 0, "splits": {}}, "field 'images_per_cell': 0 is out of range: allowed 1..100000"),
    ({"resolution": 0}, "field 'resolution': 0 is out of range: allowed 32..4096"),
    ({"jpeg_quality": 0}, "field 'jpeg_quality': 0 is out of range: allowed 1..100"),
    ({"output": {"batch_size": 0}}, "field 'output.batch_size': 0 is out of range: allowed 1..4096"),
    ({"output": {"batch_size": -1}}, "field 'output.batch_size': -1 is out of range: allowed 1..4096"),
    ({"output": {"shard_rows": 0}}, "field 'output.shard_rows': 0 is out of range: allowed 1..1000000"),
    ({"output": {"row_group_rows": 0}}, "field 'output.row_group_rows': 0 is out of range: allowed 1..1000000"),
    ({"seed": -1}, "field 'seed': -1 is out of range"),
])
def test_counts_are_positive(change, message):
    with pytest.raises(RecipeError) as e:
        recipe(**change)
    assert message in str(e.value)


# --- command-line counts ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["build", "--workers", "0"], "argument --workers: expected 'auto' or a positive integer, got 0"),
    (["build", "--workers", "-1"], "argument --workers: expected 'auto' or a positive integer, got -1"),
    (["build", "--workers", "two"], "argument --workers: expected 'auto' or a positive integer, got 'two'"),
    (["judge", "eval", "j", "--data", "d", "--batch-size", "0"], "argument --batch-size: expected a positive integer"),
    (["judge", "eval", "j", "--data", "d", "--workers", "-1"], "argument --workers: expected an integer >= 0, got -1"),
    (["evaluate", "score", "--batch-size", "-1"], "argument --batch-size: expected a positive integer, got -1"),
    (["evaluate", "generate", "--steps", "0"], "argument --steps: expected a positive integer, got 0"),
    (["evaluate", "generate", "--size", "-1"], "argument --size: expected a positive integer, got -1"),
    (["evaluate", "generate", "--batch-size", "0"], "argument --batch-size: expected a positive integer, got 0"),
    (["evaluate", "generate-concept", "--size", "0"], "argument --size: expected a positive integer, got 0"),
    (["evaluate", "generate-concept", "--steps", "-5"], "argument --steps: expected a positive integer, got -5"),
])
def test_counts_on_the_command_line_are_checked_by_argparse(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_count_types():
    assert (positive_int("3"), non_negative_int("0")) == (3, 0)
    for parse, bad in ((positive_int, "0"), (positive_int, "1.5"), (non_negative_int, "-1")):
        with pytest.raises(Exception, match="expected"):
            parse(bad)


# --- answer sets ------------------------------------------------------------------------------------------

def answer_folder(folder: Path, names: list[str], mode: str = "RGB") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new(mode, (16, 16)).save(folder / name)
    return folder


def test_one_answer_per_style_object_and_seed(tmp_path: Path):
    folder = answer_folder(tmp_path / "a", ["Van_Gogh_Cats_seed1.jpg", "Van_Gogh_Cats_seed1.png",
                                             "Monet_Dogs_seed2.jpg"])
    with pytest.raises(CanvasdataError) as e:
        read_answers(folder)
    assert str(e.value) == (f"{folder}: 1 answer(s) given twice (one image per style, object and seed; keep one of "
                            f"each): {folder / 'Van_Gogh_Cats_seed1.jpg'} and {folder / 'Van_Gogh_Cats_seed1.png'}")
    (folder / "Van_Gogh_Cats_seed1.png").rename(folder / "Van_Gogh_Cats_seed01.png")
    with pytest.raises(CanvasdataError, match="1 answer.s. given twice"):
        read_answer_folder(folder)
    (folder / "Van_Gogh_Cats_seed01.png").unlink()
    assert [a.key for a in read_answers(folder)] == [("Monet", "Dogs", 2), ("Van_Gogh", "Cats", 1)]


def test_answers_in_formats_not_read_are_listed_and_other_files_ignored(tmp_path: Path):
    folder = answer_folder(tmp_path / "a", ["Van_Gogh_Cats_seed1.jpg", "Van_Gogh_Cats_seed2.bmp",
                                             "Monet_Dogs_seed3.gif"])
    (folder / "report").mkdir()
    (folder / "report" / "report.json").write_text("{}")
    (folder / "report.json").write_text("{}")
    (folder / "notes.txt").write_text("not an answer")
    with pytest.raises(CanvasdataError) as e:
        read_answers(folder)
    assert str(e.value) == (f"{folder}: 2 answer file(s) in a format not read (allowed: .jpg, .jpeg, .png, .webp; "
                            "convert them to PNG): Monet_Dogs_seed3.gif, Van_Gogh_Cats_seed2.bmp")
    for name in ("Van_Gogh_Cats_seed2.bmp", "Monet_Dogs_seed3.gif"):
        (folder / name).unlink()
    assert len(read_answers(folder)) == 1


def test_non_rgb_answers_are_converted_with_one_warning(tmp_path: Path, caplog):
    folder = answer_folder(tmp_path / "a", ["Van_Gogh_Cats_seed1.jpg", "Van_Gogh_Cats_seed2.jpg"])
    answer_folder(folder, ["Van_Gogh_Cats_seed3.png", "Monet_Cats_seed3.png"], "L")
    answer_folder(folder, ["Monet_Cats_seed1.jpg"], "CMYK")
    answer_folder(folder, ["Monet_Cats_seed2.png"], "RGBA")
    answer_folder(folder, ["Monet_Dogs_seed1.png"], "P")
    deep = (np.arange(256).reshape(16, 16) * 257).astype(np.uint16)  # 16-bit grey: 0, 257, ..., 65535
    Image.fromarray(deep).save(folder / "Monet_Dogs_seed2.png")
    assert image_mode(folder / "Monet_Dogs_seed2.png") == "I;16"
    with caplog.at_level(logging.WARNING):
        assert len(read_answers(folder)) == 8
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{folder}: 6 of 8 images are not RGB and are converted to RGB (CMYK: 1, I;16: 1, L: 2, P: 1, "
                        "RGBA: 1)"]
    grey = np.asarray(decode_image(folder / "Monet_Dogs_seed2.png"))
    assert grey.shape == (16, 16, 3) and grey[0, :4, 0].tolist() == [0, 1, 2, 3] and grey.max() == 255


def test_reference_folders_are_checked_like_answers(tmp_path: Path):
    cats = tmp_path / "ref" / "Monet" / "Cats"
    answer_folder(cats, ["1.jpg", "1.png"])
    with pytest.raises(CanvasdataError, match=r"1 answer.s. given twice .*1\.jpg and .*1\.png"):
        read_reference(tmp_path / "ref", lambda s, o, k: True)
    (cats / "1.png").unlink()
    answer_folder(cats, ["2.bmp"])
    with pytest.raises(CanvasdataError, match=r"1 reference image.s. in a format not read .*: Monet/Cats/2\.bmp$"):
        read_reference(tmp_path / "ref", lambda s, o, k: True)


# --- decompression bombs ----------------------------------------------------------------------------------

def test_a_decompression_bomb_is_one_line_naming_the_file(tmp_path: Path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(20000, 20000))
    expected = (f"{bomb}: refused as a possible decompression bomb: Image size (400000000 pixels) exceeds limit of "
                "178956970 pixels, could be decompression bomb DOS attack. (PIL.Image.MAX_IMAGE_PIXELS sets the limit)")
    for read in (decode_image, image_mode):
        with pytest.raises(ImageError) as e:
            read(bomb)
        assert str(e.value) == expected
    with pytest.raises(ImageError, match=r"^shard 3 row 7: refused as a possible decompression bomb"):
        decode_image(bomb.read_bytes(), 64, name="shard 3 row 7")
    with pytest.raises(ImageError, match=r"^image bytes: refused .* \(100000000 pixels\) exceeds limit of 89478485"):
        decode_image(png_header(10000, 10000))  # Pillow's warning level is refused too
    with pytest.raises(MissingFileError, match=r"gone\.png: no such image file$"):
        decode_image(tmp_path / "gone.png")
    (tmp_path / "junk.png").write_bytes(b"junk")
    with pytest.raises(ImageError, match=r"junk\.png: unreadable image \(not an image format Pillow reads\)$"):
        decode_image(tmp_path / "junk.png")


class UnusedJudge:
    """A judge that is never asked: reading the answers fails first."""

    tasks = ["style", "object"]
    class_names = {"style": list(UC50), "object": list(OBJECTS)}

    def logits(self, x):
        raise AssertionError("judged an answer set that should have been refused")


def test_a_decompression_bomb_in_an_answer_set_is_refused_before_judging(tmp_path: Path):
    folder = answer_folder(tmp_path / "a", ["Van_Gogh_Cats_seed1.jpg"])
    (folder / "Monet_Cats_seed1.png").write_bytes(png_header(20000, 20000))
    with pytest.raises(ImageError, match=r"Monet_Cats_seed1\.png: refused as a possible decompression bomb"):
        score_answers(folder, "style:Van_Gogh", [UnusedJudge()], workers=0)


# --- push without a network -------------------------------------------------------------------------------

class FailingApi:
    """An HfApi whose calls fail as a network library does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def create_repo(self, *args, **kwargs):
        raise self.error


def test_push_without_network_is_one_line_naming_the_repo(tmp_path: Path, monkeypatch):
    folder = tmp_path / "d"
    folder.mkdir()
    with pytest.raises(HubError) as e:
        push_folder(folder, "me/set", api=HfApi(endpoint=REFUSED_PORT, token="hf_x"))
    assert str(e.value) == (f"could not push {folder} to the Hub dataset repo me/set: ConnectError: [Errno 111] "
                            f"Connection refused {UNREACHABLE}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match=r"repo me/set: OfflineModeIsEnabled: .*offline mode is enabled"):
        push_folder(folder, "me/set", token="hf_x")
    requests_error = type("ConnectionError", (OSError,), {})  # requests' (huggingface_hub < 1.0) is an OSError
    for error in (requests_error("Max retries exceeded"), httpx2.ReadTimeout("timed out"), TimeoutError("slow")):
        with pytest.raises(HubError) as e:
            push_folder(folder, "me/judge", repo_type="model", api=FailingApi(error))
        assert str(e.value) == (f"could not push {folder} to the Hub model repo me/judge: {type(error).__name__}: "
                                f"{error} {UNREACHABLE}")
    with pytest.raises(HubError) as e:
        push_folder(folder, "me/two lines", api=FailingApi(OSError("first\nsecond")))
    assert str(e.value).startswith("'me/two lines' is not a Hub repo id (user/name): ") and "\n" not in str(e.value)
    with pytest.raises(HubError) as e:
        push_folder(folder, "me/set", api=FailingApi(OSError("first\n  second")))
    assert str(e.value) == f"could not push {folder} to the Hub dataset repo me/set: OSError: first second"


def test_push_command_without_network(tmp_path: Path, monkeypatch, capsys):
    r = recipe(styles=["Van_Gogh"], images_per_cell=1, splits={"train": "1"})
    build(r, tmp_path / "b", progress=False, preview=False)
    monkeypatch.setattr(constants, "ENDPOINT", REFUSED_PORT)
    assert main(["push", str(tmp_path / "b"), "me/set", "--token", "hf_x"]) == 2
    err = one_line_error(capsys)
    assert err == (f"error: could not push {tmp_path / 'b'} to the Hub dataset repo me/set: ConnectError: [Errno 111] "
                   f"Connection refused {UNREACHABLE}\n")


JUDGE = {"name": "j", "model": "vit_tiny_patch16_224", "task": "both", "image_size": 32}


@pytest.mark.parametrize("change, message", [
    ({"std": [0.5, 0, 0.5]}, "field 'std': [0.5, 0.0, 0.5]: allowed positive numbers"),
    ({"mean": [True, 0.5, 0.5]}, "field 'mean': expected three numbers"),
    ({"lr": 1e-4, "min_lr": 1e-3}, "field 'min_lr': 0.001 is above lr 0.0001"),
    ({"epochs": 2, "warmup_epochs": 3}, "field 'warmup_epochs': 3.0 is more than the 2 epochs"),
    ({"concept": "Cats"}, "field 'concept': 'Cats' is only read by the binary task"),
    ({"freeze": ["blocks.0", "blocks.0"]}, "field 'freeze': lists ['blocks.0'] more than once"),
])
def test_judge_recipes_are_checked_beyond_their_types(change: dict, message: str):
    with pytest.raises(RecipeError) as e:
        parse_judge_recipe({**JUDGE, **change}, "j.toml")
    assert message in str(e.value) and str(e.value).startswith("j.toml: ")
    assert parse_judge_recipe(JUDGE, "j.toml").std == (0.5, 0.5, 0.5)
