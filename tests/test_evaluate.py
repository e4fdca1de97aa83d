"""Evaluators end to end: name parsing, a tiny diffusers pipeline generating an answer set, scoring
with judges, reports, suite tables and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from canvasdata.cli import main
from canvasdata.evaluate import parse_answer_name, read_answer_folder, score_answers, score_suite
from canvasdata.judges import Judge, JudgeInfo, create_backbone, save_judge
from canvasdata.taxonomy import OBJECTS, UC50

KW = {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8}


@pytest.mark.parametrize("name, expected", [
    ("Van_Gogh_Cats_seed188.jpg", ("Van_Gogh", "Cats", 188)),
    ("Seed_Images_Human_seed888.jpg", ("Seed_Images", "Human", 888)),
    ("Red_Blue_Ink_Sea_seed5.png", ("Red_Blue_Ink", "Sea", 5)),
    ("Warm_Smear_Towers_seed288.jpg", ("Warm_Smear", "Towers", 288)),
])
def test_parse_awkward_names(name, expected):
    assert parse_answer_name(name) == expected


def test_bad_names_are_errors():
    with pytest.raises(ValueError, match="no known style"):
        parse_answer_name("Van_Gog_Cats_seed1.jpg")
    with pytest.raises(ValueError, match="seed"):
        parse_answer_name("Van_Gogh_Cats.jpg")


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    info = JudgeInfo(model="vit_tiny_patch16_224", tasks=["style", "object"],
                     class_names={"style": list(UC50), "object": list(OBJECTS)},
                     label_space={"style": "uc50", "object": "objects"}, image_size=32, model_kwargs=KW)
    return save_judge(Judge(create_backbone("vit_tiny_patch16_224", 51, 32, KW), info),
                      tmp_path_factory.mktemp("j") / "judge")


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> Path:
    import tiny_diffusers
    from canvasdata.evaluate.generate import generate_answers

    root = tmp_path_factory.mktemp("sd")
    pipe = tiny_diffusers.tiny_pipeline(root)
    return generate_answers(str(pipe), root / "answers", styles=["Van_Gogh", "Monet", "Seed_Images"],
                            objects=["Cats", "Dogs"], seeds=[188, 288], size=32, steps=2, batch_size=3,
                            progress=False)


def test_generated_answer_set_is_complete_recorded_and_resumable(answers: Path):
    files = sorted(p.name for p in answers.glob("*.jpg"))
    assert len(files) == 3 * 2 * 2 and "Van_Gogh_Cats_seed188.jpg" in files
    settings = json.loads((answers / "generation.json").read_text())
    assert settings["scheduler"] == "DDIM" and settings["eta"] == 0.0 and settings["seeds"] == [188, 288]
    before = {p.name: p.stat().st_mtime_ns for p in answers.glob("*.jpg")}
    (answers / "Monet_Dogs_seed288.jpg").unlink()
    from canvasdata.evaluate.generate import generate_answers

    generate_answers(settings["model"], answers, styles=["Van_Gogh", "Monet", "Seed_Images"], objects=["Cats", "Dogs"],
                     seeds=[188, 288], size=32, steps=2, batch_size=3, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in answers.glob("*.jpg")}
    assert set(after) == set(before)
    assert all(after[k] == v for k, v in before.items() if k != "Monet_Dogs_seed288.jpg")


def test_generation_is_deterministic_per_seed(answers: Path, tmp_path: Path):
    from canvasdata.evaluate.generate import generate_answers

    settings = json.loads((answers / "generation.json").read_text())
    generate_answers(settings["model"], tmp_path, styles=["Van_Gogh"], objects=["Cats"], seeds=[188], size=32,
                     steps=2, batch_size=1, progress=False)
    assert (tmp_path / "Van_Gogh_Cats_seed188.jpg").read_bytes() == (answers / "Van_Gogh_Cats_seed188.jpg").read_bytes()


def test_score_writes_reports(answers: Path, judge_dir: Path, tmp_path: Path):
    from canvasdata.judges import load_judge

    r = score_answers(answers, "style:Van_Gogh", [load_judge(judge_dir)], out=tmp_path, workers=0)
    for key in ("ua", "ira", "cra", "residual_rate"):
        assert 0 <= r[key] <= 1
    assert r["ua"] == pytest.approx(1 - r["residual_rate"]) and r["n_forget_images"] == 4
    assert sum(r["forgotten_predicted_as"].values()) == 4
    assert (tmp_path / "report.md").read_text().startswith("# Unlearning report: forget style `Van_Gogh`")
    ref = tmp_path / "reference"
    for a in read_answer_folder(answers):
        target = ref / a.style / a.object / f"{a.seed // 100}.jpg"  # seed 188 -> image 1, 288 -> 2
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(a.path.read_bytes())
    r2 = score_answers(answers, "object:Cats", [load_judge(judge_dir)], reference=ref, workers=0,
                       include_seed_images=False)
    assert r2["num_reference_images"] == 3 * 2  # images 1 and 2 of the Dogs cells only
    assert np.isfinite(r2["frechet_distance"]) and "style judge" in r2["feature_extractor"]
    assert r2["n_retain_images"] == 4  # dogs, Seed_Images excluded


def test_cli_evaluate_and_suite(answers: Path, judge_dir: Path, tmp_path: Path, capsys):
    assert main(["evaluate", "--answers", str(answers), "--forget", "object:Dogs", "--judges", str(judge_dir),
                 "--out", str(tmp_path / "rep"), "--workers", "0"]) == 0
    assert "UA" in capsys.readouterr().out and (tmp_path / "rep" / "report.json").exists()
    runs = tmp_path / "runs"
    for method, req in (("ESD", "style_Van_Gogh"), ("ESD", "object_Cats"), ("FMN", "style_Monet")):
        (runs / method).mkdir(parents=True, exist_ok=True)
        (runs / method / req).symlink_to(answers, target_is_directory=True)
    from canvasdata.judges import load_judge

    rows = score_suite(runs, [load_judge(judge_dir)], workers=0, out=tmp_path / "suite")
    assert [r["method"] for r in rows] == ["ESD", "FMN"] and rows[1]["object UA"] is None
    assert (tmp_path / "suite" / "suite.md").read_text().startswith("| method | style UA")
    assert (tmp_path / "suite" / "suite.csv").read_text().splitlines()[0].startswith("method,style UA")


def test_missing_or_unreadable_images_are_named(judge_dir: Path, tmp_path: Path):
    from canvasdata.evaluate.answers import Answer
    from canvasdata.judges import load_judge

    Image.new("RGB", (16, 16)).save(tmp_path / "Van_Gogh_Cats_seed1.jpg")
    (tmp_path / "Van_Gogh_Dogs_seed1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="Van_Gogh_Dogs_seed1.jpg: unreadable image"):
        score_answers(read_answer_folder(tmp_path), "style:Van_Gogh", [load_judge(judge_dir)], workers=0)
    missing = [Answer("Van_Gogh", "Cats", 1, path=tmp_path / "gone.jpg")]
    with pytest.raises(ValueError, match="gone.jpg: missing"):
        score_answers(missing, "style:Van_Gogh", [load_judge(judge_dir)], workers=0)
    with pytest.raises(ValueError, match="did you mean Van_Gogh"):
        score_answers(read_answer_folder(tmp_path, strict=False), "style:Van_Gog", [load_judge(judge_dir)], workers=0)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        score_answers(read_answer_folder(tmp_path, strict=False)[:1], "style:Van_Gogh", [load_judge(judge_dir)],
                      reference=tmp_path, inception=tmp_path / "inception.pth", workers=0)


def test_concept_detector_and_paired_evaluation(answers: Path, tmp_path: Path):
    """Train a binary detector on a concept set, generate images for the forget prompts and their
    concept-removed pairs with the tiny pipeline, and score forgetting rate and paired FD."""
    from canvasdata.build import build
    from canvasdata.evaluate.concepts import generate_prompt_images, score_concept
    from canvasdata.judges import load_judge, parse_judge_recipe
    from canvasdata.judges.train import train_judge
    from canvasdata.recipes import parse_recipe

    concept = parse_recipe({"kind": "concepts", "name": "cs", "seed": 2, "prompts_per_theme": 2, "images_per_prompt": 2,
                            "resolution": 48, "splits": {"train": "1", "test": "2"},
                            "concepts": [{"target": "style:Van_Gogh", "themes": ["Cats", "Towers"]}]}, "cs.toml")
    build(concept, tmp_path / "cs", progress=False, preview=False)
    det = parse_judge_recipe({"name": "det", "model": "vit_tiny_patch16_224", "task": "binary", "concept": "Van_Gogh",
                              "image_size": 32, "epochs": 2, "batch_size": 4, "workers": 0, "model_kwargs": KW}, "d.toml")
    hist = train_judge(det, tmp_path / "cs", tmp_path / "det", device="cpu", progress=False)
    assert hist["epochs"][-1]["test_accuracy"]["binary"] >= 0
    detector = load_judge(tmp_path / "det")
    assert detector.class_names["binary"] == ["negative", "positive"]
    model = json.loads((answers / "generation.json").read_text())["model"]
    prompts = tmp_path / "cs" / "prompts" / "Van_Gogh"
    forget = generate_prompt_images(model, prompts / "forget_prompts.json", tmp_path / "u", size=32, steps=2,
                                    progress=False)
    original = generate_prompt_images(model, prompts / "retain_prompts.json", tmp_path / "o", size=32, steps=2,
                                      progress=False)
    assert sorted(p.name for p in forget.glob("*.jpg")) == sorted(p.name for p in original.glob("*.jpg"))
    r = score_concept(forget, original, detector, workers=0, out=tmp_path / "rep")
    assert r["pairs"] == 4 * 2 and 0 <= r["forgetting_rate"] <= 1 and np.isfinite(r["frechet_distance"])
    next(original.glob("*.jpg")).unlink()
    with pytest.raises(ValueError, match="no pair"):
        score_concept(forget, original, detector, workers=0)
