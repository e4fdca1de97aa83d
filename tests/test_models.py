"""`canvasdata model train` (canvasdata.models) on the 32 px tiny-mini build: the word-level tokenizer,
recipe validation, the finished folder read back by diffusers alone, exact resume across phases, the
exclusion, fine-tuning an existing pipeline, refusals and the command line."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

from diffusers import StableDiffusionPipeline  # noqa: E402
from helpers.colour_judge import ColourJudge  # noqa: E402
from helpers.files import sha256, weights  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import CLIPTokenizer  # noqa: E402

from canvasdata.cli import main  # noqa: E402
from canvasdata.errors import UsageError  # noqa: E402
from canvasdata.evaluate.fidelity import prompt_fidelity  # noqa: E402
from canvasdata.evaluate.generate import generate_answers  # noqa: E402
from canvasdata.evaluate.protocol import get_protocol  # noqa: E402
from canvasdata.fields import RecipeError  # noqa: E402
from canvasdata.models.probe import PROBE_SEED  # noqa: E402
from canvasdata.models.recipe import load_model_recipe, parse_model_recipe  # noqa: E402
from canvasdata.models.train import train_model  # noqa: E402
from canvasdata.models.vocab import (  # noqa: E402
    caption_token_ids,
    caption_words,
    unknown_words,
    word_ids,
    word_merges,
    write_tokenizer,
)
from canvasdata.sources.diffusers import PipelineOptions  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC60, prompt  # noqa: E402

UNET = Path("unet") / "diffusion_pytorch_model.safetensors"
MINI = load_model_recipe("mini")


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mini_model(mini_build: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The mini model trained on the build without interruption."""
    out = tmp_path_factory.mktemp("model") / "mini"
    return out, train_model(MINI, mini_build, out, progress=False)


# --- the tokenizer ---------------------------------------------------------------------------------------


def test_tokenizer_gives_every_caption_word_of_the_taxonomy_one_token(tmp_path: Path) -> None:
    prompts = [prompt(s, o) for s in UC60 for o in OBJECTS]
    write_tokenizer(prompts, tmp_path / "tok", max_length=24)
    tok = CLIPTokenizer.from_pretrained(str(tmp_path / "tok"))  # transformers' own loader, nothing of ours
    words = caption_words(prompts)
    assert {"van", "gogh", "jellyfish", "photo", "."} <= set(words)
    for w in words:
        ids = word_ids(tok, w)
        assert len(ids) == 1 and ids[0] != tok.unk_token_id, (w, ids)
        assert tok.convert_ids_to_tokens(ids) == [w + "</w>"]
    # a whole caption is one token a word, between the start and end tokens, padded to max_length
    caption = prompt("Van_Gogh", OBJECTS[0])
    ids = word_ids(tok, caption)
    assert len(ids) == len(caption_words([caption])) == 8 and tok.unk_token_id not in ids
    enc = tok(caption, padding="max_length", max_length=tok.model_max_length)["input_ids"]
    assert tok.model_max_length == 24 and enc == [tok.bos_token_id, *ids, *[tok.eos_token_id] * 15]
    assert unknown_words(tok, caption) == []
    assert unknown_words(tok, "A zebra image in Van Gogh style.") == ["zebra"]
    # the training loop's batch of captions: one row a caption, and the empty caption (bos, then eos padding)
    ids_all, empty = caption_token_ids(tok, [caption, prompts[1]])
    assert ids_all.shape == (2, 24) and ids_all[0].tolist() == enc
    assert empty.tolist() == [tok.bos_token_id, *[tok.eos_token_id] * 23]


def test_word_merges_keep_words_with_shared_substrings_single_tokens(tmp_path: Path) -> None:
    words = ["dada", "dadaism", "da", "ad", "a", "add", "adda", "aa"]
    merges = word_merges(words)
    assert len(set(merges)) == len(merges)
    tok = write_tokenizer([" ".join(words)], tmp_path / "tok", max_length=16)
    tok = CLIPTokenizer.from_pretrained(str(tmp_path / "tok"))
    for w in words:
        assert tok.convert_ids_to_tokens(word_ids(tok, w)) == [w + "</w>"], w
    assert unknown_words(tok, "dad") == ["dad"]  # its letters are known, but it is no word of the captions


# --- recipes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "field", "says"), [
    ({"unet": {"stepz": 3}}, "unet.stepz", "did you mean steps"),
    ({"sampel": {}}, "sampel", "did you mean sample"),
    ({"text": {"hidden_size": 10, "heads": 3}}, "text.heads", "does not divide hidden_size 10"),
    ({"unet": {"channels": [8, 16], "cross_attention_levels": 3}}, "unet.cross_attention_levels", "more than the 2"),
    ({"noise": {"beta_start": 0.01, "beta_end": 0.01}}, "noise.beta_end", "not above beta_start"),
    ({"noise": {"beta_start": 0.02, "beta_end": 0.01}}, "noise.beta_end", "not above beta_start"),
    ({"resolution": 30, "vae": {"channels": [8, 16, 16]}}, "resolution", "4x downsampling"),
    ({"unet": {"caption_dropout": 0.95}}, "unet.caption_dropout", "out of range"),
    ({"unet": {"caption_dropout": -0.1}}, "unet.caption_dropout", "out of range"),
    ({"vae": {"channels": []}}, "vae.channels", "non-empty list"),
    ({"unet": {"prediction_type": "sample"}}, "unet.prediction_type", "epsilon"),
])
def test_bad_recipe_values_name_the_file_and_field(table: dict, field: str, says: str) -> None:
    with pytest.raises(RecipeError) as e:
        parse_model_recipe({"name": "x", **table}, "/recipes/bad.toml")
    msg = str(e.value)
    assert msg.startswith(f"/recipes/bad.toml: field '{field}'") and says in msg, msg
    assert "\n" not in msg


def test_shipped_recipes_load_and_hash_stably() -> None:
    tiny, mini = load_model_recipe("tiny"), load_model_recipe("mini")
    assert (tiny.name, tiny.resolution, mini.name, mini.resolution) == ("tiny", 64, "mini", 32)
    assert (mini.vae.steps, mini.unet.steps) == (6, 8)
    assert tiny.source.endswith("tiny.toml") and Path(tiny.source).is_file()
    assert load_model_recipe(tiny.source) == tiny
    assert tiny.hash() == load_model_recipe("tiny").hash() != mini.hash()
    assert dataclasses.replace(mini, source="elsewhere").hash() == mini.hash()  # the file's place is no part of it
    with pytest.raises(RecipeError):
        parse_model_recipe({"description": "no name"}, "x.toml")


def test_reading_a_recipe_imports_neither_torch_nor_diffusers() -> None:
    code = ("import sys, canvasdata.models.recipe as r; r.load_model_recipe('tiny'); r.load_model_recipe('mini'); "
            "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --- training --------------------------------------------------------------------------------------------


def test_trained_folder_loads_with_diffusers_alone_and_generates(mini_model) -> None:
    out, record = mini_model
    pipe = StableDiffusionPipeline.from_pretrained(str(out))  # no canvasdata code, no extra arguments
    pipe.set_progress_bar_config(disable=True)
    caption = record["example_prompt"]

    def draw() -> torch.Tensor:
        return pipe(caption, num_inference_steps=2, guidance_scale=4.0, output_type="pt",
                    generator=torch.Generator().manual_seed(3)).images

    images = draw()
    assert images.shape == (1, 3, 32, 32) and torch.isfinite(images).all()
    assert torch.equal(images, draw())
    assert pipe.vae.config.scaling_factor == pytest.approx(record["scaling_factor"])
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert record["images"] == 27 and record["styles"] == ["Pop_Art", "Seed_Images", "Van_Gogh"]
    assert record["steps"] == {"vae": 6, "unet": 8} and len(record["losses"]["unet"]) == 8
    assert record["resumed_at"] == []


def test_model_json_seals_every_weight_file_and_the_card_names_the_data(mini_model, mini_build: Path) -> None:
    out, record = mini_model
    assert json.loads((out / "model.json").read_text()) == record
    listed = {f["path"]: f for f in record["files"]}
    on_disk = {str(p.relative_to(out)) for name in ("model_index.json", "unet", "vae", "text_encoder", "tokenizer",
                                                   "scheduler") for p in [out / name, *(out / name).rglob("*")]
               if p.is_file()}
    assert set(listed) == on_disk and str(UNET) in listed
    assert listed[str(UNET)]["sha256"] == sha256(out / UNET)
    assert listed[str(UNET)]["bytes"] == (out / UNET).stat().st_size
    assert record["identity"]["data"] == str(mini_build.resolve())
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: diffusers" in card
    assert "`tiny-mini`" in card and record["identity"]["data_hash"] in card and "27 images" in card
    samples = sorted(p.name for p in (out / "samples").glob("*.png"))
    assert "final.png" in samples and "step_000004.png" in samples and "vae_000006.png" in samples
    for name in samples:
        with Image.open(out / "samples" / name) as im:
            im.load()
            assert im.width > 32 and im.height > 32


def test_a_second_call_returns_the_record_without_training(mini_model, mini_build: Path) -> None:
    out, record = mini_model
    before = mtimes(out)
    assert train_model(MINI, mini_build, out, progress=False) == record
    assert mtimes(out) == before


def test_interrupted_training_resumes_exactly(mini_model, mini_build: Path, tmp_path: Path) -> None:
    """Stopped inside the autoencoder phase, then again across the phase boundary: the final weights are
    bit for bit those of the uninterrupted run."""
    full, record = mini_model
    out = tmp_path / "resumed"
    assert train_model(MINI, mini_build, out, max_steps=3, progress=False) == {"stopped": 3, "phase": "vae"}
    assert not (out / "model.json").exists() and not (out / "unet").exists()
    assert train_model(MINI, mini_build, out, max_steps=6, progress=False) == {"stopped": 3, "phase": "unet"}
    resumed = train_model(MINI, mini_build, out, progress=False)
    assert resumed["resumed_at"] == ["vae:3", "unet:3"]
    for component in ("unet", "vae", "text_encoder"):
        (a,) = (full / component).glob("*.safetensors")
        assert sha256(out / a.relative_to(full)) == sha256(a), component
    assert resumed["losses"] == record["losses"] and resumed["scaling_factor"] == record["scaling_factor"]
    assert resumed["identity"] == record["identity"]


def test_judged_probe_records_a_learning_curve_without_changing_training(mini_model, mini_build: Path,
                                                                         tmp_path: Path) -> None:
    """With judges, a point every `judge_every` denoiser steps and one at the end; the weights are those of
    the run without judges, the last point is what judging the saved model's own generations gives, and
    the probe's images are gone."""
    full, _ = mini_model
    out = tmp_path / "probed"
    judge = ColourJudge()
    record = train_model(MINI, mini_build, out, progress=False, judges=[judge], judge_every=4)
    assert [c["step"] for c in record["curve"]] == [4, MINI.unet.steps]
    assert all(c["images"] == 9 and 0 <= c["style"] <= 1 and 0 <= c["object"] <= 1 for c in record["curve"])
    assert sha256(out / UNET) == sha256(full / UNET)
    assert not (out / ".canvasdata-model" / "probe").exists()
    styles, objects = record["styles"], record["objects"]
    proto = get_protocol("unlearncanvas", seed_images_words="Photo")
    answers = generate_answers(out, tmp_path / "answers", styles=styles, objects=objects, seeds=(PROBE_SEED,),
                               size=32, steps=MINI.sample.steps, guidance=MINI.sample.guidance, protocol=proto,
                               options=PipelineOptions(dtype="float32"), device="cpu", progress=False)
    again = prompt_fidelity(answers, [judge], styles, objects, proto)
    assert (record["curve"][-1]["style"], record["curve"][-1]["object"]) == (round(again["style"], 4),
                                                                            round(again["object"], 4))
    assert "## Learning curve" in (out / "README.md").read_text()


def test_exclude_leaves_a_style_out(mini_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "no_van_gogh"
    record = train_model(MINI, mini_build, out, exclude="style:Van_Gogh", progress=False)
    assert record["images"] == 18 and "Van_Gogh" not in record["styles"]
    assert record["styles"] == ["Pop_Art", "Seed_Images"] and record["identity"]["exclude"] == "style:Van_Gogh"
    assert "excluding `style:Van_Gogh`" in (out / "README.md").read_text()
    missing = tmp_path / "never"
    with pytest.raises(UsageError, match=r"did you mean Van_Gogh") as e:
        train_model(MINI, mini_build, missing, exclude="style:Van_Gog", progress=False)
    assert "\n" not in str(e.value) and not missing.exists()
    with pytest.raises(UsageError, match="expected style:NAME"):
        train_model(MINI, mini_build, missing, exclude="colour:red", progress=False)
    assert not missing.exists()


def test_init_fine_tunes_the_unet_of_an_existing_pipeline(tiny_sd_pipeline: Path, mini_build: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    record = train_model(MINI, mini_build, out, init=tiny_sd_pipeline, progress=False)
    assert record["identity"]["init"] == str(tiny_sd_pipeline.resolve())
    assert record["steps"] == {"vae": 0, "unet": 8} and record["losses"]["vae"] == []
    for component in ("vae", "text_encoder"):
        before, after = weights(tiny_sd_pipeline, component), weights(out, component)
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), component
    before, after = weights(tiny_sd_pipeline, "unet"), weights(out, "unet")
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    pipe = StableDiffusionPipeline.from_pretrained(str(out))
    assert pipe.vae.config.scaling_factor == pytest.approx(
        StableDiffusionPipeline.from_pretrained(str(tiny_sd_pipeline)).vae.config.scaling_factor)
    assert "fine-tuned from" in (out / "README.md").read_text()


def test_init_without_model_index_is_refused_naming_it(mini_build: Path, tmp_path: Path) -> None:
    bare = tmp_path / "not_a_pipeline"
    (bare / "unet").mkdir(parents=True)
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="model_index.json") as e:
        train_model(MINI, mini_build, out, init=bare, progress=False)
    assert str(bare) in str(e.value) and not out.exists()


def test_out_with_a_foreign_file_is_refused_and_left_alone(mini_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="notes.txt"):
        train_model(MINI, mini_build, out, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_another_runs_model_is_refused_unless_overwrite(mini_model, mini_build: Path, tmp_path: Path) -> None:
    full, record = mini_model
    out = tmp_path / "copy"
    shutil.copytree(full, out)
    before = mtimes(out)
    other = dataclasses.replace(MINI, seed=1)
    with pytest.raises(UsageError, match=r"another training run \(differs in recipe, recipe_hash\)") as e:
        train_model(other, mini_build, out, progress=False)
    assert "--overwrite" in str(e.value) and mtimes(out) == before
    again = train_model(other, mini_build, out, overwrite=True, progress=False)
    assert again["identity"]["recipe"]["seed"] == 1 and again["resumed_at"] == []
    assert sha256(out / UNET) != sha256(full / UNET)
    assert json.loads((out / "model.json").read_text()) == again


# --- the command line ------------------------------------------------------------------------------------


def test_cli_trains_and_prints_one_line(mini_build: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["model", "train", "mini", "--data", str(mini_build), "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trained mini on tiny-mini (27 images)") and str(out) in lines[0]
    assert (out / "model.json").is_file()


def test_cli_unknown_recipe_exits_2_with_one_error_line(mini_build: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["model", "train", "nope", "--data", str(mini_build), "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0]
    assert captured.out == "" and not out.exists()
