"""Attacks on unlearned models, on tiny offline pipelines (the same config, weights from different
seeds, stand for the original and the unlearned model): partial diffusion's ends are plain generation
and a hand-over between equal weights changes nothing, CRS/CCS arithmetic on hand-made features, the
prompt attack lowers its loss and resumes exactly, both commands end to end (and resumed), and the
suite's attack columns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from helpers.colour_judge import ColourJudge, colour_image  # noqa: E402
from helpers.tiny_diffusers import tiny_pipeline
from helpers.tiny_judges import tiny_judge
from PIL import Image

from canvasdata.attack import prompts as prompt_attack
from canvasdata.attack.crs import (
    LinearProbe,
    confidence_score,
    mean_over_psi,
    retrieval_score,
    retrieval_scores,
    similarity_score,
)
from canvasdata.attack.partial import PartialDiffusion, check_compatible, check_psi, original_steps
from canvasdata.attack.config import AttackConfig
from canvasdata.attack.prompts import DenoisingLoss, attack_prompt, encode_images
from canvasdata.cli import main
from canvasdata.errors import UsageError
from canvasdata.evaluate import score_suite
from canvasdata.evaluate.answers import Answer
from canvasdata.evaluate.generate import generate_answers, load_pipeline
from canvasdata.evaluate.suite import COLUMNS

KW = {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8}
SMALL = ["--size", "32", "--steps", "2", "--device", "cpu", "--workers", "0", "-q"]
PROMPT = "A Cats image in Van Gogh style."


@pytest.fixture(scope="module")
def models(tiny_sd_pipeline: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(original, unlearned): the session's tiny pipeline and one with weights from another seed."""
    return tiny_sd_pipeline, tiny_pipeline(tmp_path_factory.mktemp("unlearned"), seed=1)


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    return tiny_judge(tmp_path_factory.mktemp("j") / "judge", {"style": "uc50", "object": "objects"})


@pytest.fixture(scope="module")
def target_images(tmp_path_factory) -> Path:
    """Two noise images labelled Van_Gogh Cats and one Van_Gogh Dogs, as an answer folder."""
    folder = tmp_path_factory.mktemp("targets")
    rng = np.random.default_rng(0)
    for name in ("Van_Gogh_Cats_seed1.jpg", "Van_Gogh_Cats_seed2.jpg", "Van_Gogh_Dogs_seed1.jpg"):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _images(pipe, prompts=("A Cats image", "A Dogs image"), seeds=(1, 2)) -> np.ndarray:
    out = pipe(list(prompts), height=32, width=32, num_inference_steps=4, guidance_scale=9.0, eta=0.0,
               generator=[torch.Generator().manual_seed(s) for s in seeds]).images
    return np.stack([np.asarray(im) for im in out])


def test_partial_diffusion_ends_are_plain_generation(models):
    original, unlearned = (load_pipeline(str(m), "cpu") for m in models)
    o, u = _images(original), _images(unlearned)
    assert not np.array_equal(o, u)
    assert np.array_equal(_images(PartialDiffusion(original, unlearned, 0.0)), u)   # ψ = 0: the unlearned model
    assert np.array_equal(_images(PartialDiffusion(original, unlearned, 1.0)), o)   # ψ = 1: the original model
    half = _images(PartialDiffusion(original, unlearned, 0.5))
    assert not np.array_equal(half, o) and not np.array_equal(half, u)
    assert original.unet is not unlearned.unet and original.vae is not unlearned.vae  # components given back
    assert np.array_equal(_images(original), o)
    twin = load_pipeline(str(models[0]), "cpu")  # the same weights in other objects: the hand-over is invisible
    for psi in (0.25, 0.5, 0.75):
        assert np.array_equal(_images(PartialDiffusion(original, twin, psi)), o)
    assert [original_steps(p, 100) for p in (0, 0.1, 0.55, 1)] == [0, 10, 55, 100]
    assert original_steps(0.5, 3) == 2 and original_steps(0.25, 2) == 1  # halves round up
    assert check_psi([0.5, 0, 0.5, 1]) == [0.0, 0.5, 1.0]
    with pytest.raises(UsageError, match=r"psi 1.5: allowed values in \[0, 1\]"):
        check_psi([0.1, 1.5])
    unlearned.scheduler.register_to_config(prediction_type="v_prediction")
    with pytest.raises(UsageError, match="scheduler: .*prediction_type"):
        check_compatible(original, unlearned)


def test_crs_and_ccs_arithmetic_on_hand_made_features():
    assert similarity_score(1.0) == pytest.approx((1 - math.pi / 4) / (math.pi / 2))
    assert similarity_score(0.0) == pytest.approx(2 / math.pi)
    assert similarity_score(-1.0) == pytest.approx((1 + math.pi / 4) / (math.pi / 2))
    recovered = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    original = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])      # cos 1, 1, 1
    unlearned = np.array([[0.0, 1.0], [-1.0, 0.0], [0.0, 5.0]])    # cos 0, -1, 1
    # |s_U − s_O| = (2/π)·|arctan(1) − arctan(cos θ_U)|: π/4 → 1/2, π/2 → 1, 0 → 0
    assert retrieval_scores(recovered, original, unlearned) == pytest.approx([0.5, 1.0, 0.0])
    assert retrieval_score(recovered, original, unlearned) == pytest.approx(0.5)
    assert confidence_score(np.array([0.2, 0.6, 0.7])) == pytest.approx(0.5)
    assert mean_over_psi({0.1: 0.5, 0.2: 0.25, 0.3: 0.0}) == pytest.approx(0.25) and mean_over_psi({}) is None
    with pytest.raises(UsageError, match="probabilities in"):
        confidence_score(np.array([1.2]))
    rng = np.random.default_rng(0)
    o, u = rng.normal(1, 0.3, (20, 4)), rng.normal(-1, 0.3, (20, 4))
    probe = LinearProbe().fit(o, u)
    assert probe.accuracy(o, u) == 1.0 and probe.prob_original(o).min() > 0.5 > probe.prob_original(u).max()
    assert probe.describe()["features"] == 4


class ScaledInput(torch.nn.Module):
    """A stand-in UNet whose prediction is 0.5 x its input, whatever the text: the loss is then known."""

    dtype = torch.float32

    def forward(self, x, t, encoder_hidden_states):
        return type("Out", (), {"sample": 0.5 * x})()


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_the_attack_loss_noises_and_targets_as_the_training_objective(kind):
    """The attack's denoising loss against the closed form (DDPM noising at the scheduler config's betas; the
    target of each prediction type), for a scheduler that samples (DDIM) rather than trains."""
    scheduler = DDIMScheduler(num_train_timesteps=100, beta_schedule="scaled_linear", prediction_type=kind)
    pipe = type("Pipe", (), {"unet": ScaledInput(), "scheduler": scheduler})()
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    loss = DenoisingLoss(pipe, latents)
    idx, t, noise = loss.draws(torch.Generator().manual_seed(1), 5)
    assert int(t.max()) < 100
    z0 = latents[idx]
    a = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * z0 + (1 - a).sqrt() * noise
    truth = {"epsilon": noise, "v_prediction": a.sqrt() * noise - (1 - a).sqrt() * z0, "sample": z0}[kind]
    got = float(loss(torch.zeros(1, 2, 8), idx, t, noise))
    assert math.isclose(got, float(F.mse_loss(0.5 * xt, truth)), rel_tol=1e-5)


def test_prompt_attack_lowers_its_loss_and_resumes_exactly(models, target_images, tmp_path, monkeypatch):
    pipe = load_pipeline(str(models[1]), "cpu")
    latents = encode_images(pipe, [Answer("Van_Gogh", "Cats", k, path=target_images / f"Van_Gogh_Cats_seed{k}.jpg")
                                   for k in (1, 2)], 32)
    config = AttackConfig(steps=4, tokens=3)
    whole = attack_prompt(pipe, PROMPT, latents, config)
    assert whole["final_loss"] < whole["initial_loss"] and whole["best_loss"] <= whole["final_loss"]
    assert len(whole["eval_loss"]) == len(whole["train_loss"]) == 4
    assert len(whole["token_ids"]) == 3 and whole["input_ids"][1:4] == whole["token_ids"]
    assert whole["adversarial_prompt"].endswith("a cats image in van gogh style .")
    real = prompt_attack._step
    calls = []

    def interrupted(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(prompt_attack, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        attack_prompt(pipe, PROMPT, latents, config, tmp_path / "state.pt")
    assert torch.load(tmp_path / "state.pt", weights_only=True)["step"] == 2
    monkeypatch.setattr(prompt_attack, "_step", real)
    resumed = attack_prompt(pipe, PROMPT, latents, config, tmp_path / "state.pt")
    assert resumed == whole


def test_conceal_command_end_to_end_and_resumed(models, judge_dir, tmp_path, capsys):
    out = tmp_path / "runs" / "ESD" / "style_Van_Gogh" / "conceal"
    argv = ["attack", "conceal", "--original", str(models[0]), "--unlearned", str(models[1]), "--forget",
            "style:Van_Gogh", "--judges", str(judge_dir), "--psi", "0.5", "--objects", "Cats", "Dogs", "--seeds", "1",
            "2", "--probe-seeds", "3", "4", "--out", str(out), *SMALL]
    assert main(argv) == 0
    assert "under concealment" in capsys.readouterr().out
    for name in ("psi_0", "psi_0.5", "psi_1", "probe/original", "probe/unlearned"):
        assert len(list((out / name).glob("*.jpg"))) == 4, name
    plain = generate_answers(str(models[1]), tmp_path / "plain", styles=["Van_Gogh"], objects=["Cats", "Dogs"],
                             seeds=[1, 2], size=32, steps=2, device="cpu", progress=False)
    for f in plain.glob("*.jpg"):  # ψ = 0 is the unlearned model's own answer set, byte for byte
        assert (out / "psi_0" / f.name).read_bytes() == f.read_bytes()
    report = json.loads((out / "report.json").read_text())
    assert [r["psi"] for r in report["per_psi"]] == [0.0, 0.5, 1.0] and report["grid"] == [0.5]
    assert [r["original_steps"] for r in report["per_psi"]] == [0, 1, 2]
    crs = [r["crs"] for r in report["per_psi"]]  # ψ = 0 recovers U, ψ = 1 recovers O: the same |s_U − s_O|
    assert crs[0] == pytest.approx(crs[2]) and all(0 <= c <= 1 for c in crs)
    assert report["crs"] == report["per_psi"][1]["crs"] and report["ccs"] == report["per_psi"][1]["ccs"]
    assert report["ua_worst"] == report["per_psi"][1]["ua"] and report["psi_worst"] == 0.5
    assert report["sampling"]["scheduler"] == "DDIMScheduler" and report["sampling"]["seeds"] == [1, 2]
    assert report["discriminator"]["train_images"] == 8 and report["protocol"]["name"] == "unlearncanvas"
    assert report["models"]["original"] == str(models[0].resolve())
    assert Image.open(out / "conceal.png").format == "PNG"
    assert "UA under concealment (worst ψ)" in (out / "report.md").read_text()
    psi_report = json.loads((out / "psi_0.5" / "report" / "report.json").read_text())  # ψ = 0.5 scored as a request
    assert psi_report["ua"] == report["per_psi"][1]["ua"] and psi_report["num_images"] == 4
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    assert main(argv) == 0  # resumed: every image kept
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == before
    assert main([*argv[:-len(SMALL)], "--psi", "1.5", *SMALL]) == 2
    assert "psi 1.5: allowed values in [0, 1]" in capsys.readouterr().err


def test_prompts_command_end_to_end_and_resumed(models, judge_dir, target_images, tmp_path, capsys):
    out = tmp_path / "prompts"
    argv = ["attack", "prompts", "--unlearned", str(models[1]), "--forget", "style:Van_Gogh", "--target-images",
            str(target_images), "--judges", str(judge_dir), "--objects", "Cats", "Dogs", "--seeds", "1", "2",
            "--tokens", "2", "--attack-steps", "2", "--out", str(out), *SMALL]
    assert main(argv) == 0
    assert "ASR" in capsys.readouterr().out
    found = json.loads((out / "prompts.json").read_text())
    assert [(f["style"], f["object"]) for f in found] == [("Van_Gogh", "Cats"), ("Van_Gogh", "Dogs")]
    assert all(len(f["token_ids"]) == 2 and f["best_loss"] <= f["initial_loss"] for f in found)
    assert sorted(p.name for p in (out / "state").iterdir()) == ["Van_Gogh_Cats.pt", "Van_Gogh_Dogs.pt"]
    report = json.loads((out / "report.json").read_text())
    assert report["attack"]["steps"] == 2 and 0 <= report["asr"] <= 1 and 0 <= report["asr_plain"] <= 1
    assert report["asr"] == pytest.approx(sum(f["detected"] for f in report["prompts"]) / 4)
    assert len(list((out / "answers").glob("*.jpg"))) == 4 and len(list((out / "plain").glob("*.jpg"))) == 4
    assert "Adversarial prompts: forget style `Van_Gogh`" in (out / "report.md").read_text()
    assert main(argv) == 0 and json.loads((out / "prompts.json").read_text()) == found  # resumed
    assert main([*argv[:-len(SMALL)], "--lr", "0.5", *SMALL]) == 2
    assert "lr" in capsys.readouterr().err


def _request(folder: Path, styles: list[str], objects: list[str]) -> None:
    folder.mkdir(parents=True)
    for s in styles:
        for o in objects:
            colour_image(s, o, noise=1).save(folder / f"{s}_{o}_seed1.jpg", quality=95)


def test_suite_carries_attack_columns_when_runs_hold_attack_reports(tmp_path):
    runs = tmp_path / "runs"
    for method in ("ESD", "FMN"):
        _request(runs / method / "style_Van_Gogh", ["Van_Gogh", "Monet"], ["Cats", "Dogs"])
    plain = score_suite(runs, [ColourJudge()], workers=0, progress=False)
    assert plain.columns == COLUMNS and "attacks" not in plain.to_json()
    esd = runs / "ESD" / "style_Van_Gogh"
    forget = {"domain": "style", "target": "Van_Gogh"}
    (esd / "conceal").mkdir()
    (esd / "conceal" / "report.json").write_text(json.dumps({"forget": forget, "ua_worst": 0.25}))
    (esd / "prompts").mkdir()
    (esd / "prompts" / "report.json").write_text(json.dumps({"forget": forget, "asr": 0.5}))
    suite = score_suite(runs, [ColourJudge()], workers=0, out=tmp_path / "suite", progress=False)
    assert suite.columns[:4] == ["method", "style UA", "style UA under concealment (worst ψ)", "style ASR"]
    assert suite.columns[6:9] == ["object UA", "object UA under concealment (worst ψ)", "object ASR"]
    esd_row, fmn_row = suite.rows
    attack_cols = ["style UA", "style UA under concealment (worst ψ)", "style ASR"]
    assert [esd_row[c] for c in attack_cols] == [0.0, 25.0, 50.0]
    assert fmn_row["style UA under concealment (worst ψ)"] is None and fmn_row["style ASR"] is None
    assert (tmp_path / "suite" / "suite.csv").read_text().startswith(
        "method,style UA,style UA under concealment (worst ψ),style ASR,style IRA,")
    md = (tmp_path / "suite" / "suite.md").read_text()
    assert "| ESD | 0.0 | 25.0 | 50.0 |" in md and "UA under concealment (worst ψ) in %" in md
    assert suite.to_json()["attacks"]["ESD"]["style_Van_Gogh"] == {"ua_concealed": 0.25, "asr": 0.5}
    (esd / "prompts" / "report.json").write_text(json.dumps({"forget": {"domain": "object", "target": "Cats"},
                                                             "asr": 0.5}))
    with pytest.raises(UsageError, match="a report of object_Cats, not of style_Van_Gogh"):
        score_suite(runs, [ColourJudge()], workers=0, progress=False)
