"""Judges: training makes the loss fall, export reloads identically with timm and canvasdata,
UnlearnCanvas checkpoints import, and bad weights or label spaces give clear errors."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from canvasdata.cli import main
from canvasdata.data import ImageLabels, load_split
from canvasdata.dataset import build
from canvasdata.judges import (
    Judge,
    JudgeError,
    JudgeInfo,
    create_backbone,
    import_unlearncanvas,
    load_judge,
    parse_judge_recipe,
)
from canvasdata.judges.card import judge_card
from canvasdata.judges.evaluate import confusion_png, evaluate_judge, predict
from canvasdata.judges.train import train_judge
from canvasdata.recipes import parse_recipe

TINY_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("judge-data")
    recipe = parse_recipe({"name": "jt", "seed": 1, "styles": ["Seed_Images", "Van_Gogh", "Pop_Art"],
                           "objects": ["Cats", "Towers", "Fishes"], "images_per_cell": 4, "resolution": 64,
                           "splits": {"train": "1-3", "test": "4"}, "output": {"shard_rows": 20, "batch_size": 4}},
                          "jt.toml")
    build(recipe, out, progress=False, preview=False)
    return out


def recipe(**kw):
    base = {"name": "t", "model": "vit_tiny_patch16_224", "task": "both", "image_size": 32, "epochs": 8,
            "batch_size": 9, "lr": 2e-3, "warmup_epochs": 0.5, "workers": 0, "model_kwargs": TINY_VIT}
    return parse_judge_recipe({**base, **kw}, "t.toml")


@pytest.fixture(scope="module")
def trained(dataset: Path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("judge")
    hist = train_judge(recipe(), dataset, out, device="cpu", progress=False)
    return out, hist


def test_loader_decodes_with_labels(dataset: Path):
    data = load_split(dataset, "test", ["style", "object"])
    assert len(data) == 9 and data.class_names["style"][47] == "Seed_Images"
    x, y = ImageLabels(data, 32)[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and set(y) == {"style", "object"}
    assert data.class_names["style"][y["style"]] in ("Seed_Images", "Van_Gogh", "Pop_Art")


def test_training_lowers_the_loss_and_exports(trained):
    out, hist = trained
    losses = hist["loss"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) * 0.9, "the loss did not fall"
    assert {"model.safetensors", "config.json", "heads.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["canvasdata"]["class_names"]["object"][4] == "Cats" and cfg["num_classes"] == 61
    assert cfg["canvasdata"]["data"]["recipe"] == "jt"


def test_reload_with_timm_and_canvasdata_gives_identical_logits(trained):
    out, _ = trained
    judge = load_judge(out)
    plain = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        ours = judge.logits(x)
        theirs = plain((x - 0.5) / 0.5)
    assert torch.allclose(ours["style"], theirs, atol=1e-5)
    assert ours["object"].shape == (3, 20)
    assert judge.features(x).shape == (3, 32)


def test_resume_continues_from_the_checkpoint(dataset: Path, tmp_path: Path):
    r = recipe(epochs=2)
    first = train_judge(r, dataset, tmp_path, device="cpu", progress=False, max_steps=2)
    again = train_judge(r, dataset, tmp_path, device="cpu", progress=False, max_steps=4)
    assert len(first["loss"]) == 2 and len(again["loss"]) == 4 and again["loss"][:2] == first["loss"]


def test_evaluation_report_and_confusion_png(trained, dataset: Path, tmp_path: Path):
    from PIL import Image

    judge = load_judge(trained[0])
    report = evaluate_judge(judge, load_split(dataset, "test", judge.tasks), tmp_path, workers=0)
    r = report["tasks"]["style"]
    assert 0 <= r["top1"] <= 1 and 0 <= r["ece"] <= 1 and set(r["degraded_top1"]) == {"downscale2x", "jpeg50", "blur"}
    assert Image.open(tmp_path / "confusion_style.png").size[0] > 200


def test_import_unlearncanvas_checkpoint(tmp_path: Path):
    kw = {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 16}
    src = create_backbone("vit_tiny_patch16_224", 20, 64, kw)
    torch.save({"model_state_dict": src.state_dict(), "epoch": 3}, tmp_path / "cls.pth")
    out = import_unlearncanvas(tmp_path / "cls.pth", "objects", tmp_path / "judge", arch="vit_tiny_patch16_224",
                               image_size=64, model_kwargs=kw)
    judge = load_judge(out)
    assert judge.tasks == ["object"] and judge.class_names["object"][0] == "Architectures"
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(judge.logits(x)["object"], src.eval()((x - 0.5) / 0.5), atol=1e-5)
    with pytest.raises(JudgeError, match="head has 20 classes but label space 'uc50' has 51"):
        import_unlearncanvas(tmp_path / "cls.pth", "uc50", tmp_path / "bad", arch="vit_tiny_patch16_224",
                             image_size=64, model_kwargs=kw)


def test_corrupt_truncated_and_mismatched_weights(trained, tmp_path: Path):
    import shutil

    bad = tmp_path / "truncated"
    shutil.copytree(trained[0], bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(JudgeError, match="corrupt or truncated"):
        load_judge(bad)
    mism = tmp_path / "mismatch"
    shutil.copytree(trained[0], mism)
    cfg = json.loads((mism / "config.json").read_text())
    cfg["canvasdata"]["class_names"]["style"] = cfg["canvasdata"]["class_names"]["style"][:51]
    (mism / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(JudgeError, match=r"config\.json: \d+ bytes, but judge\.json lists \d+"):
        load_judge(mism)
    (mism / "judge.json").unlink()
    with pytest.raises(JudgeError, match="61 classes but label space 'uc60' lists 51"):
        load_judge(mism)
    with pytest.raises(JudgeError, match="did you mean"):
        create_backbone("vit_tiny_patch16_244", 3, 32)


def test_judge_cli_predict_and_push(trained, dataset: Path, tmp_path: Path, monkeypatch):
    from PIL import Image

    paths = []
    for i in range(3):
        p = tmp_path / f"img{i}.png"
        Image.fromarray((np.random.default_rng(i).random((40, 40, 3)) * 255).astype("uint8")).save(p)
        paths.append(str(p))
    assert main(["judge", "predict", str(trained[0]), *paths, "--out", str(tmp_path / "p.csv")]) == 0
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert len(lines) == 1 + 3 * 2 and lines[0].startswith("path,task,prediction")
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kw):
            calls.append(kw["repo_type"])
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kw):
            calls.append(kw["folder_path"])

    monkeypatch.setattr("canvasdata.hub.HfApi", FakeApi)
    assert main(["judge", "push", str(trained[0]), "me/judge"]) == 0
    assert calls == ["model", str(trained[0])]


def test_judge_recipe_errors():
    with pytest.raises(ValueError, match="field 'task'.*not one of style, object, both, binary"):
        recipe(task="colour")
    with pytest.raises(ValueError, match="field 'concept'"):
        recipe(task="binary")


def _present(data, task: str) -> set[str]:
    return {data.class_names[task][i] for i in np.unique(data.labels[task])}


def test_eval_groups_each_task_by_the_other_factor(trained, dataset: Path, tmp_path: Path):
    judge = load_judge(trained[0])
    data = load_split(dataset, "test", ["style", "object"])
    report = evaluate_judge(judge, data, tmp_path, workers=0, degradations=False, progress=False)
    probs = predict(judge, data, workers=0, progress=False)
    styles, objects = _present(data, "style"), _present(data, "object")
    assert styles == {"Seed_Images", "Van_Gogh", "Pop_Art"} and objects == {"Cats", "Towers", "Fishes"}
    obj, sty = report["tasks"]["object"], report["tasks"]["style"]
    assert set(obj["by_style"]) == styles and set(sty["by_object"]) == objects
    assert "by_object" not in obj and "by_style" not in sty
    for task, key, other in (("object", "by_style", "style"), ("style", "by_object", "object")):
        r = report["tasks"][task]
        correct = probs[task].argmax(1) == data.labels[task]
        assert r["top1"] == pytest.approx(correct.mean())
        assert sum(g["n"] for g in r[key].values()) == len(data) == sum(r["per_class_n"].values())
        for name, g in r[key].items():
            sel = data.labels[other] == data.class_names[other].index(name)
            assert g["n"] == sel.sum() and g["accuracy"] == pytest.approx(correct[sel].mean())
        cells = r["by_style_object"]
        assert set(cells) == styles and sum(c["n"] for row in cells.values() for c in row.values()) == len(data)
        assert r["figures"] == [f"confusion_{task}.png", f"cross_{task}.png"]
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["tasks"]["object"]["by_style"] == obj["by_style"]
    names = judge.class_names["style"]
    confusion_png(np.eye(len(names), dtype=np.int64), names, tmp_path / "all61.png", "every class")
    full, shown = Image.open(tmp_path / "all61.png").size, Image.open(tmp_path / "confusion_style.png").size
    present = len(_present(data, "style") | {names[i] for i in probs["style"].argmax(1)})
    assert present <= 9 and shown[0] < full[0] / 2 and shown[1] < full[1] / 2
    assert Image.open(tmp_path / "cross_object.png").size[0] > 100


def test_single_task_judge_is_scored_on_its_task_only(dataset: Path):
    data = load_split(dataset, "test", ["style", "object"])
    info = JudgeInfo(model="vit_tiny_patch16_224", tasks=["object"],
                     class_names={"object": data.class_names["object"]},
                     label_space={"object": data.label_space["object"]}, image_size=32, model_kwargs=TINY_VIT)
    judge = Judge(create_backbone("vit_tiny_patch16_224", 20, 32, TINY_VIT), info)
    report = evaluate_judge(judge, data, None, workers=0, degradations=False, progress=False)
    assert list(report["tasks"]) == ["object"] and set(report["tasks"]["object"]["by_style"]) == _present(data, "style")
    with pytest.raises(ValueError, match="no 'object' labels"):
        evaluate_judge(judge, load_split(dataset, "test", ["style"]), None, workers=0, degradations=False,
                       progress=False)


def test_eval_cli_prints_failures_and_updates_the_card(trained, dataset: Path, tmp_path: Path, capsys):
    judge_dir = tmp_path / "judge"
    shutil.copytree(trained[0], judge_dir)
    assert main(["judge", "eval", str(judge_dir), "--data", str(dataset), "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "worst object top-1 by style:" in printed and "worst style top-1 by object:" in printed
    assert {"eval.json", "confusion_style.png", "confusion_object.png", "cross_style.png", "cross_object.png"} <= {
        p.name for p in (judge_dir / "eval").iterdir()}
    card = (judge_dir / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: timm\nlicense: unknown\n")
    assert "| style | object top-1 | images |" in card and "| object | style top-1 | images |" in card
    report = json.loads((judge_dir / "eval" / "eval.json").read_text())
    assert report["data"] == {"source": str(dataset), "split": "test"}
    for name, g in report["tasks"]["object"]["by_style"].items():
        assert f"| {name} | {g['accuracy'] * 100:.1f}% | {g['n']} |" in card
    assert f"| style | {report['tasks']['style']['top1'] * 100:.2f}% | {report['tasks']['style']['ece']:.3f} |" in card
    assert "![confusion matrix (object)](eval/confusion_object.png)" in card
    assert "](eval/cross_style.png)" in card


def test_judge_card_licence_comes_from_the_data_or_the_caller(trained):
    info = load_judge(trained[0]).info
    assert "\nlicense: unknown\n" in judge_card(info)
    assert "\nlicense: mit\n" in judge_card(replace(info, data={**info.data, "start_license": "mit"}))
    assert "\nlicense: cc-by-4.0\n" in judge_card(info, license="cc-by-4.0")
