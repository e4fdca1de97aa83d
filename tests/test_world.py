"""`canvasdata world run --size mini` (canvasdata.world) through the command line: one world, run first
`--until model` and then to the end, shared by every test; each artifact is read back with its upstream
library (datasets, timm, diffusers, PIL); reruns, resumes and refusals."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("timm")

import datasets  # noqa: E402
import timm  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402
from PIL import Image  # noqa: E402

from canvasdata.cli import main  # noqa: E402
from canvasdata.errors import UsageError  # noqa: E402
from canvasdata.models.output import check_model  # noqa: E402
from canvasdata.unlearn import METHODS, RETAIN_LATENTS  # noqa: E402
from canvasdata.world.branch import lendable  # noqa: E402
from canvasdata.world.recipe import RETAIN_LATENTS as WORLD_RETAIN_LATENTS  # noqa: E402
from canvasdata.world.recipe import STYLE_METHODS, load_world_recipe  # noqa: E402

RECIPE = load_world_recipe("mini")
EARLY = ("data", "judges", "model")
ALL = ("data", "judges", "model", "original", "unlearn", "answers", "attacks", "suite")
TILE, PAD, TOP = 128, 2, 16  # the grid's tiles (report.TILE) and contact_sheet's padding and label band


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(*argv: str) -> tuple[int, str, str]:
    """`canvasdata ARGV` in this process: exit status, stdout, stderr. A `world run` stays in this process
    (`--ranks 1`) unless the test says otherwise: `auto` would start ranks on a machine of 2 or more cores."""
    if argv[:2] == ("world", "run") and "--ranks" not in argv:
        argv = (*argv, "--ranks", "1")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def state(root: Path) -> dict:
    return json.loads((root / "world.json").read_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The mini world: run `--until model`, then (the same command without it) to the end."""
    root = tmp_path_factory.mktemp("world") / "mini"
    first = run("world", "run", "--size", "mini", "--out", str(root), "--until", "model", "--quiet")
    early = state(root)
    model_json = (root / "model" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    second = run("world", "run", "--size", "mini", "--out", str(root), "--quiet")
    return {"root": root, "first": first, "early": early, "model_json": model_json, "second": second}


def test_until_model_stops_after_the_model_stage(world: dict) -> None:
    code, out, _ = world["first"]
    assert code == 0
    lines = out.strip().splitlines()
    assert "stages up to model done" in lines[-1] and str(world["root"]) in lines[-1]
    # judge training's per-epoch line (tqdm's bar.write, printed even with --quiet) is the only other output
    assert all(line.startswith("epoch ") for line in lines[:-1])
    early = world["early"]
    assert list(early["stages"]) == list(EARLY) and all(s["done"] for s in early["stages"].values())
    assert early["identity"]["recipe"]["targets"] == list(RECIPE.targets)


def test_the_next_run_continues_without_rerunning_earlier_stages(world: dict) -> None:
    code, out, _ = world["second"]
    root = world["root"]
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("world mini finished") and str(root / "REPORT.md") in lines[0]
    final = state(root)
    for name in EARLY:
        assert final["stages"][name] == world["early"]["stages"][name], name
    # the model was not retrained (its record gains the original stage's judgement, its weights stay)
    assert (root / "model" / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns == world["model_json"]


def test_world_json_marks_every_stage_done_and_timed(world: dict) -> None:
    s = state(world["root"])
    assert s["format"] == "canvasdata-world-1" and s["identity"]["recipe"]["name"] == "mini"
    assert list(s["stages"]) == list(ALL)
    for name, entry in s["stages"].items():
        assert entry["done"] is True and entry["seconds"] >= 0, name


def test_the_build_loads_with_datasets_and_typed_labels(world: dict, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = datasets.load_dataset(str(world["root"] / "data"), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "test"} and ds["train"].num_rows == 27 and ds["test"].num_rows == 9
    feats = ds["train"].features
    assert isinstance(feats["style"], datasets.ClassLabel) and isinstance(feats["object"], datasets.ClassLabel)
    assert feats["style"].num_classes == 61 and feats["object"].num_classes == 20
    names = {feats["style"].int2str(i) for i in ds["train"]["style"]}
    assert names == {"Seed_Images", "Van_Gogh", "Pop_Art"}
    assert {feats["object"].int2str(i) for i in ds["train"]["object"]} == {"Jellyfish", "Flame", "Towers"}
    assert ds["train"][0]["image"].size == (32, 32)


def test_the_judge_loads_with_timm(world: dict) -> None:
    model = timm.create_model("local-dir:" + str(world["root"] / "judges"), pretrained=True).eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 61) and torch.isfinite(logits).all()
    ev = state(world["root"])["stages"]["judges"]["info"]
    assert set(ev["held_out"]) == {"style", "object"} and all(0 <= v <= 1 for v in ev["held_out"].values())


def test_the_original_and_every_unlearned_model_load_with_diffusers(world: dict) -> None:
    root = world["root"]
    esd = sorted(p.name for p in (root / "unlearned" / "esd").iterdir())
    assert esd == ["object_Flame", "style_Van_Gogh"]
    unets = {}
    for folder in [root / "model", *(root / "unlearned" / "esd" / name for name in esd)]:
        pipe = StableDiffusionPipeline.from_pretrained(str(folder))
        assert pipe.unet.config.sample_size * pipe.vae_scale_factor == 32
        unets[folder.name] = pipe.unet.state_dict()
    for name in esd:  # ESD changed the original's UNet
        assert any(not torch.equal(unets["model"][k], unets[name][k]) for k in unets["model"]), name


def test_report_has_the_table_both_rows_and_the_attacks(world: dict) -> None:
    report = (world["root"] / "REPORT.md").read_text()
    assert report.startswith("# canvasdata world `mini`")
    assert "| method | style UA | style IRA | style CRA | object UA | object IRA | object CRA | FD |" in report
    rows = [line.split("|")[1].strip() for line in report.splitlines() if line.startswith("| ")]
    assert "original" in rows and "esd" in rows
    assert "`style:Van_Gogh`" in rows and "`object:Flame`" in rows
    assert "Adversarial prompts bring the concept back in" in report and "under concealment" in report
    assert "![prompts x models](grid.png)" in report
    for stage in ALL:
        assert f"| {stage} |" in report, stage


def test_grid_has_a_tile_per_prompt_and_model(world: dict) -> None:
    rows, cols = len(RECIPE.targets) + 2, 1 + len(RECIPE.targets)
    with Image.open(world["root"] / "grid.png") as im:
        im.load()
        width, height = im.size
    assert height == TOP + rows * (TILE + PAD) + PAD
    left = width - cols * (TILE + PAD) - PAD  # the row labels' margin: 8 + 7 px a character
    assert left > 8 and (left - 8) % 7 == 0 and (left - 8) // 7 < 40


def test_suite_rows_hold_both_methods(world: dict) -> None:
    root = world["root"]
    suite = json.loads((root / "suite" / "suite.json").read_text())
    methods = {r["method"]: r for r in suite["rows"]}
    assert set(methods) == {"original", "esd"}
    for r in methods.values():
        assert r["style requests"] == 1 and r["object requests"] == 1
        assert all(0 <= r[k] <= 100 for k in ("style UA", "style IRA", "style CRA", "object UA"))
    fds = json.loads((root / "suite" / "concept_fd.json").read_text())
    assert set(fds) == set(RECIPE.targets)


def test_rerun_of_a_finished_world_only_names_its_report(world: dict) -> None:
    root = world["root"]
    before = {p: p.stat().st_mtime_ns for p in (root / "REPORT.md", root / "world.json", root / "grid.png")}
    code, out, err = run("world", "run", "--size", "mini", "--out", str(root), "--quiet")
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 1 and str(root / "REPORT.md") in lines[0] and "finished world" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_a_folder_with_a_foreign_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    code, out, err = run("world", "run", "--size", "mini", "--out", str(root), "--quiet")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "notes.txt" in lines[0]
    assert (root / "notes.txt").read_text() == "keep me" and [p.name for p in root.iterdir()] == ["notes.txt"]


def test_a_world_of_another_recipe_is_refused(world: dict, tmp_path: Path) -> None:
    root = world["root"]
    text = (Path(RECIPE.source)).read_text()
    assert 'targets = ["style:Van_Gogh", "object:Flame"]' in text
    other = tmp_path / "other.toml"
    other.write_text(text.replace('targets = ["style:Van_Gogh", "object:Flame"]', 'targets = ["style:Pop_Art"]'))
    before = state(root)
    code, out, err = run("world", "run", "--size", str(other), "--out", str(root), "--quiet")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "another recipe" in lines[0]
    assert state(root) == before


def test_a_world_made_before_a_recipe_field_existed_stays_resumable(world: dict) -> None:
    """A world.json whose recipe lacks a field added later (here [sampling] dtype and [esd] retain_latents) is
    the same world when the current recipe leaves that field at its default; any other difference is not."""
    root = world["root"]
    before = (root / "world.json").read_text()
    try:
        old = json.loads(before)
        del old["identity"]["recipe"]["sampling"]["dtype"], old["identity"]["recipe"]["esd"]["retain_latents"]
        (root / "world.json").write_text(json.dumps(old))
        code, out, _ = run("world", "run", "--size", "mini", "--out", str(root), "--quiet")
        assert code == 0 and "finished world" in out
        old["identity"]["recipe"]["sampling"]["steps"] += 1
        (root / "world.json").write_text(json.dumps(old))
        code, out, err = run("world", "run", "--size", "mini", "--out", str(root), "--quiet")
        assert code == 2 and "another recipe" in err
    finally:
        (root / "world.json").write_text(before)


def test_reading_a_world_recipe_imports_neither_torch_nor_diffusers() -> None:
    code = ("import sys, canvasdata.world.recipe as r; r.load_world_recipe('mini'); r.load_world_recipe('tiny'); "
            "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]; assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_original_models_card_says_how_well_it_generates(world: dict, tmp_path: Path) -> None:
    root = world["root"]
    record = json.loads((root / "model" / "model.json").read_text())
    judged = state(root)["stages"]["original"]["info"]["judged"]
    assert record["judged"]["style"] == judged["style"] and record["judged"]["images"] == 18  # 3 x 3 cells x 2 seeds
    assert f"**{judged['style'] * 100:.1f} %**" in (root / "model" / "README.md").read_text()
    check_model(root / "model")  # the judgement leaves the sealed weight files as they were
    copy = tmp_path / "model"
    shutil.copytree(root / "model", copy)
    code, out, _ = run("model", "train", "mini", "--data", str(root / "data"), "--out", str(copy), "--judges",
                       str(root / "judges"), "--quiet")
    assert code == 0 and out.splitlines()[0].startswith("judged 18 generations: style ")
    assert sorted(p.name for p in (copy / "samples" / "answers").glob("*.jpg"))[0] == "Pop_Art_Flame_seed188.jpg"


def test_retrained_adds_the_gold_standard_to_a_finished_world(world: dict) -> None:
    """`--retrained style:Van_Gogh` on the finished world: one more model trained without Van_Gogh, its
    answers, the comparison (the reference's own J is 0) and a report section; the world's identity and
    earlier stages stay. Runs last: it adds a stage to the shared world."""
    root = world["root"]
    before = state(root)
    code, out, err = run("world", "run", "--size", "mini", "--out", str(root), "--retrained", "style:Monet", "--quiet")
    assert code == 2 and "not a request of world mini" in err and state(root) == before
    code, out, _ = run("world", "run", "--size", "mini", "--out", str(root), "--retrained", "style:Van_Gogh",
                       "--quiet")
    assert code == 0 and "finished" in out
    after = state(root)
    assert after["identity"] == before["identity"]
    assert {k: v for k, v in after["stages"].items() if k in before["stages"]} == before["stages"]
    assert after["stages"]["retrained style:Van_Gogh"]["done"] is True
    record = json.loads((root / "retrained" / "style_Van_Gogh" / "model.json").read_text())
    assert record["identity"]["exclude"] == "style:Van_Gogh" and "Van_Gogh" not in record["styles"]
    gold = json.loads((root / "gold" / "style_Van_Gogh" / "retrained.json").read_text())
    assert [r["role"] for r in gold["rows"]] == ["reference", "original", "unlearned"]
    assert gold["rows"][0]["forgotten"]["loss"]["j"] == 0.0
    report = (root / "REPORT.md").read_text()
    assert "## Against the retrained model" in report and "gold/style_Van_Gogh/retrained.md" in report
    code, out, _ = run("world", "run", "--size", "mini", "--out", str(root), "--retrained", "style:Van_Gogh",
                       "--quiet")
    assert code == 0 and "finished world" in out


def test_a_bad_world_esd_setting_names_the_file_the_field_and_the_choices(tmp_path: Path) -> None:
    text = Path(RECIPE.source).read_text()
    assert "\n[esd]\n" in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("\n[esd]\n", '\n[esd]\nstyle_method = "attn"\n'))
    code, out, err = run("world", "run", "--size", str(bad), "--out", str(tmp_path / "w"), "--quiet")
    assert code == 2 and out == "" and not (tmp_path / "w").exists()
    assert len(err.strip().splitlines()) == 1 and str(bad) in err and "style_method" in err
    assert all(m in err for m in ("xattn", "xattn-strict", "noxattn", "full"))
    bad.write_text(text.replace('targets = ["style:Van_Gogh", "object:Flame"]',
                                'targets = ["style:Van_Gogh", "object:Flame"]\njudge_alone = "yes"'))
    code, out, err = run("world", "run", "--size", str(bad), "--out", str(tmp_path / "w"), "--quiet")
    assert code == 2 and "judge_alone" in err and not (tmp_path / "w").exists()
    for field, value, says in (("style_texts", '"all"', "concept, captions"),
                               ("style_retain", '"all"', "none, others"),
                               ("style_retain", '"captions"', "none, others"),
                               ("object_retain", '"all"', "none, others, captions"),
                               ("retain_weight", "0", "expected a positive number"),
                               ("dtype", '"int8"', "float32, float16, bfloat16"),
                               ("retain_latents", '"theirs"', "erased, own"),
                               ("style_anchor", '"Van_Gogh"', "is itself forgotten"),
                               ("style_anchor", '"Monet"', "not a style of the build (allowed: Seed_Images, Pop_Art")):
        table = "sampling" if field == "dtype" else "esd"
        bad.write_text(text.replace(f"\n[{table}]\n", f"\n[{table}]\n{field} = {value}\n"))
        code, out, err = run("world", "run", "--size", str(bad), "--out", str(tmp_path / "w"), "--quiet")
        assert code == 2 and len(err.strip().splitlines()) == 1 and str(bad) in err and field in err and says in err
        assert not (tmp_path / "w").exists()
    bad.write_text(text.replace("\n[esd]\n", '\n[esd]\nretain_latents = "own"\n'))
    code, out, err = run("world", "run", "--size", str(bad), "--out", str(tmp_path / "w"), "--quiet")
    assert code == 2 and "retain_latents" in err and "set style_retain or object_retain" in err
    bad.write_text(text.replace('"object:Flame"]', '"object:Dogs"]'))
    code, out, err = run("world", "run", "--size", str(bad), "--out", str(tmp_path / "w"), "--quiet")
    assert code == 2 and "'object:Dogs' is not an object of the build 'tiny-mini'" in err
    assert not (tmp_path / "w").exists()
    bad.write_text(text.replace("\n[esd]\n", '\n[esd]\nstyle_method = "xattn-strict"\n'))
    assert load_world_recipe(str(bad)).esd.style_method == "xattn-strict" and RECIPE.esd.style_method == "xattn"
    assert RECIPE.judge_alone
    assert tuple(m for m in METHODS if m != "auto") == STYLE_METHODS and WORLD_RETAIN_LATENTS == RETAIN_LATENTS


def test_from_takes_the_build_judge_and_model_of_another_world(world: dict, tmp_path: Path) -> None:
    """`--from` the finished world with another ESD lr: the first three stages are the source's (hard links,
    its times and infos, nothing retrained), the rest run; the source is left as it was."""
    src = world["root"]
    text = Path(RECIPE.source).read_text()
    assert "\nlr = 1e-4\n" in text
    other = tmp_path / "other.toml"
    esd = ('\nlr = 2e-4\nstyle_texts = "captions"\nstyle_anchor = "Seed_Images"\nstyle_negative_guidance = 0.5\n'
           'style_retain = "others"\nobject_retain = "captions"\nretain_weight = 2.0\nretain_empty = true\n'
           'retain_latents = "own"\n')
    assert "\n[sampling]\n" in text
    other.write_text(text.replace("\nlr = 1e-4\n", esd).replace("\n[sampling]\n", '\n[sampling]\ndtype = "bfloat16"\n'))
    unet = Path("model", "unet", "diffusion_pytorch_model.safetensors")
    before = {p: (src / p).read_bytes() for p in (Path("model", "model.json"), Path("world.json"))}
    out = tmp_path / "branch"
    code, printed, _ = run("world", "run", "--size", str(other), "--out", str(out), "--from", str(src), "--quiet")
    assert code == 0 and "finished" in printed
    ours, theirs = state(out), state(src)
    assert list(ours["stages"]) == list(ALL) and all(e["done"] for e in ours["stages"].values())
    for name in EARLY:
        entry = ours["stages"][name]
        assert entry["from"] == str(src.resolve()) and entry["seconds"] == theirs["stages"][name]["seconds"]
        assert entry["info"] == theirs["stages"][name]["info"]
    for name in ALL[3:]:
        assert "from" not in ours["stages"][name]
    assert (out / unet).stat().st_ino == (src / unet).stat().st_ino   # linked, not retrained or copied
    assert {p: (src / p).read_bytes() for p in before} == before       # the source is untouched
    assert (out / "model" / "model.json").stat().st_ino != (src / "model" / "model.json").stat().st_ino
    check_model(out / "model")
    erased = json.loads((out / "unlearned" / "esd" / "style_Van_Gogh" / "unlearn.json").read_text())
    assert erased["lr"] == 2e-4   # the style erased on its captions, each anchored on the same caption as a photo
    assert erased["request"]["prompts"] == [f"A {o} image in Van Gogh style." for o in ("Jellyfish", "Flame", "Towers")]
    assert erased["request"]["anchors"] == [f"A {o} image in Photo style." for o in ("Jellyfish", "Flame", "Towers")]
    assert erased["negative_guidance"] == 0.5 and erased["retain_weight"] == 2.0
    assert erased["retain"] == [f"A {o} image in {s} style." for s in ("Photo", "Pop Art")   # every other style
                                for o in ("Jellyfish", "Flame", "Towers")] + [""]   # and the empty prompt
    flame = json.loads((out / "unlearned" / "esd" / "object_Flame" / "unlearn.json").read_text())
    assert "anchors" not in flame and flame["negative_guidance"] == 1.0
    assert flame["retain"] == [f"A {o} image in {s} style." for o in ("Jellyfish", "Towers")   # every other object's
                               for s in ("Photo", "Van Gogh", "Pop Art")] + [""]              # captions, and ""
    assert flame["request"]["prompt"] == "Flame" and "prompts" not in flame["request"]
    assert flame["retain_latents"] == erased["retain_latents"] == "own"
    report = (out / "REPORT.md").read_text()
    assert f"taken from `{src.resolve()}`" in report and "pipelines in bfloat16" in report
    # the same model, seeds and prompts sampled in bfloat16: the same scenes, not the same pixels
    ours_img, theirs_img = (np.asarray(Image.open(root / "answers" / "original" / "Van_Gogh_Flame_seed188.jpg"),
                                       dtype=np.float32) for root in (out, src))
    assert 0 < np.abs(ours_img - theirs_img).mean() < 40
    assert "erased on every training caption that names it, in turn, each anchored on the same text in Seed_Images" \
        in report
    assert ("retain set (a style request every other style's texts; an object request every training caption of "
            "every other object, with the empty prompt) to the original's on an x_t sampled along that text's own "
            "trajectory, "
            "weighted 2.0") in report


def test_from_refuses_what_it_cannot_lend_and_touches_nothing(world: dict, tmp_path: Path) -> None:
    src, out = world["root"], tmp_path / "branch"
    other = tmp_path / "other.toml"
    other.write_text(Path(RECIPE.source).read_text().replace('build = "tiny-mini"', 'build = "tiny"'))
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("keep me")
    for size, source, says in (("mini", stray, "not a world folder"), (str(other), src, "its build is 'tiny-mini'"),
                               ("mini", out, "is --out itself")):
        code, printed, err = run("world", "run", "--size", size, "--out", str(out), "--from", str(source), "--quiet")
        assert code == 2 and printed == "" and len(err.strip().splitlines()) == 1 and says in err, err
        assert not out.exists()
    assert [p.name for p in stray.iterdir()] == ["notes.txt"]


def test_lendable_takes_the_leading_stages_whose_settings_agree() -> None:
    recipe = json.loads(json.dumps(RECIPE.to_dict()))
    done = {"format": "canvasdata-world-1", "identity": {"recipe": recipe},
            "stages": {s: {"done": True} for s in ALL}}
    assert lendable(done, recipe, Path("w")) == [("data", "data"), ("judges", "judges"), ("model", "model")]
    assert lendable(done, {**recipe, "judge_every": 7}, Path("w")) == [("data", "data"), ("judges", "judges")]
    assert lendable(done, {**recipe, "judge_alone": False}, Path("w")) == [("data", "data")]
    half = {**done, "stages": {"data": {"done": True}, "judges": {"done": False}}}
    assert lendable(half, recipe, Path("w")) == [("data", "data")]
    with pytest.raises(UsageError, match="its data stage is not done"):
        lendable({**done, "stages": {}}, recipe, Path("w"))
