"""Judges: training makes the loss fall, export reloads identically with timm and canvasdata,
UnlearnCanvas checkpoints import, and bad weights or label spaces give clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from canvasdata.dataset import build
from canvasdata.cli import main
from canvasdata.data import ImageLabels, load_split
from canvasdata.judges import JudgeError, create_backbone, import_unlearncanvas, load_judge, parse_judge_recipe
from canvasdata.judges.evaluate import evaluate_judge
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
