"""`canvasdata evaluate retrained` (canvasdata.evaluate.retrained, .jeffreys): answer sets of the original and an
ESD model against a mini model retrained without Van_Gogh on the tiny-mini build; the Jeffreys arithmetic on
synthetic losses, the denoising losses' determinism, J(A, A) = 0 and J's symmetry on real models, the report,
the command line, and every refusal before any model is loaded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from helpers.colour_judge import ColourJudge  # noqa: E402
from helpers.tiny_judges import tiny_judge  # noqa: E402

from canvasdata.cli import main  # noqa: E402
from canvasdata.dataset import build  # noqa: E402
from canvasdata.errors import UsageError  # noqa: E402
from canvasdata.evaluate import retrained  # noqa: E402
from canvasdata.evaluate.generate import generate_answers  # noqa: E402
from canvasdata.evaluate.jeffreys import jeffreys, timestep_grid  # noqa: E402
from canvasdata.evaluate.protocol import get_protocol  # noqa: E402
from canvasdata.evaluate.retrained import (  # noqa: E402
    DenoisingLoss,
    answer_noise,
    compare_retrained,
    load_answer_set,
    read_generation,
)
from canvasdata.models.recipe import load_model_recipe  # noqa: E402
from canvasdata.models.train import train_model  # noqa: E402
from canvasdata.recipes import load_recipe  # noqa: E402
from canvasdata.sources.diffusers import PipelineOptions  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC60  # noqa: E402
from canvasdata.unlearn import ESDConfig  # noqa: E402
from canvasdata.unlearn.esd import erase  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MINI = load_model_recipe("mini")
FORGET = "style:Van_Gogh"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny-mini build, the original mini model, the reference retrained without Van_Gogh, an ESD model
    (2 iterations) of the original, and an answer set of each (3 styles x 3 objects x 2 seeds, 32 px, 2 steps)."""
    root = tmp_path_factory.mktemp("retrained")
    data = root / "data"
    build(load_recipe("tiny-mini"), data, progress=False, preview=False)
    paths = {"data": data, "original": root / "original", "reference": root / "reference", "esd": root / "esd"}
    train_model(MINI, data, paths["original"], progress=False)
    record = train_model(MINI, data, paths["reference"], exclude=FORGET, progress=False)
    erase(paths["original"], FORGET, paths["esd"], ESDConfig(iterations=2, sample_steps=2, lr=1e-3), progress=False)
    proto = get_protocol("unlearncanvas", seed_images_words="Photo")
    styles = ["Seed_Images", "Van_Gogh", "Pop_Art"]
    assert record["styles"] == ["Pop_Art", "Seed_Images"] and record["identity"]["exclude"] == FORGET
    for name in ("original", "reference", "esd"):
        paths[f"answers_{name}"] = generate_answers(
            paths[name], root / "answers" / name, styles=styles, objects=record["objects"], seeds=(1, 2), size=32,
            steps=2, guidance=4.0, protocol=proto, options=PipelineOptions(dtype="float32"), device="cpu",
            progress=False)
    return paths


@pytest.fixture(scope="module")
def report(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> retrained.RetrainedReport:
    out = tmp_path_factory.mktemp("report")
    return compare_retrained(world["answers_reference"], [world["answers_original"], world["answers_esd"]], FORGET,
                             [ColourJudge()], workers=0, device="cpu", kid_subsets=10, out=out)


def answer_set(world: dict[str, Path], name: str) -> retrained.AnswerSet:
    folder = world[f"answers_{name}"]
    gen = read_generation(folder, "--answers")
    return load_answer_set(folder, gen, Path(gen["model"]), UC60, OBJECTS)


# --- the arithmetic ----------------------------------------------------------------------------------------


def test_jeffreys_four_terms_by_hand() -> None:
    a_on_a, b_on_a = np.array([1.0, 3.0]), np.array([4.0, 6.0])      # means 2 and 5
    a_on_b, b_on_b = np.array([2.0, 2.0]), np.array([0.5, 1.5])      # means 2 and 1
    j = jeffreys(a_on_a, b_on_a, a_on_b, b_on_b)
    assert (j.a_on_a, j.b_on_a, j.a_on_b, j.b_on_b) == (2.0, 5.0, 2.0, 1.0)
    assert j.j == (5.0 - 2.0) + (2.0 - 1.0) == 4.0
    # paired differences: [3, 3] on X_A (variance 0), [0.5, 1.5] on X_B (variance 0.5): sqrt(0 / 2 + 0.5 / 2)
    assert j.stderr == pytest.approx(0.5)
    swapped = jeffreys(b_on_b, a_on_b, b_on_a, a_on_a)                # B as "A", A as "B"
    assert swapped.j == j.j and swapped.stderr == j.stderr
    assert (swapped.a_on_a, swapped.b_on_b) == (j.b_on_b, j.a_on_a)
    same = jeffreys(a_on_a, a_on_a, b_on_b, b_on_b)                   # one model: its loss on both sides
    assert same.j == 0.0 and same.stderr == 0.0
    assert jeffreys([1.0], [2.0], [3.0], [1.0]).stderr is None
    with pytest.raises(ValueError, match="paired"):
        jeffreys(a_on_a, b_on_a[:1], a_on_b, b_on_b)


def test_timestep_grid_is_the_midpoints_of_equal_bins() -> None:
    assert timestep_grid(1000, 10) == [50, 150, 250, 350, 450, 550, 650, 750, 850, 950]
    assert timestep_grid(1000, 1) == [500] and timestep_grid(10, 10) == list(range(10))
    with pytest.raises(ValueError):
        timestep_grid(5, 10)


# --- the denoising losses ----------------------------------------------------------------------------------


def test_losses_are_deterministic_and_the_noise_common(world: dict[str, Path]) -> None:
    own, ref = answer_set(world, "original"), answer_set(world, "reference")
    loss = DenoisingLoss(own.model, CPU)
    first = loss(own)
    assert first.shape == (18, 10) and np.isfinite(first).all() and (first > 0).all()
    assert np.array_equal(first, loss(own))                                   # two calls: bit for bit
    assert np.array_equal(first, DenoisingLoss(own.model, CPU)(own))          # a fresh load: bit for bit
    assert not np.array_equal(first, loss(ref))                               # other images, other losses
    # the noise of an answer depends on its identity alone: the same for both sets' answers of one cell and seed
    a, b = own.answers[0], ref.answers[0]
    assert a.key == b.key and torch.equal(answer_noise(a, (4, 16, 16), 10, 0), answer_noise(b, (4, 16, 16), 10, 0))
    assert not torch.equal(answer_noise(a, (4, 16, 16), 10, 0), answer_noise(a, (4, 16, 16), 10, 1))


def test_v_prediction_loss_matches_a_hand_computation(world: dict[str, Path], tmp_path: Path) -> None:
    """The original model read as a v-prediction model: its loss at two grid timesteps is the MSE to
    v = sqrt(abar) eps - sqrt(1 - abar) z at x_t = sqrt(abar) z + sqrt(1 - abar) eps, written out here."""
    model = tmp_path / "v-model"
    shutil.copytree(world["original"], model)
    path = model / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "prediction_type": "v_prediction"}))
    own = answer_set(world, "original")
    own.answers = own.answers[:1]
    loss = DenoisingLoss(model, CPU)
    assert loss.prediction_type == "v_prediction"
    got = loss(own)[0]
    a = own.answers[0]
    with torch.inference_mode():
        x = retrained.answer_pixels(a, 32)[None].float() / 127.5 - 1
        z = loss.vae.encode(x).latent_dist.mean * loss.vae.config.scaling_factor
        eps = answer_noise(a, z.shape[1:], 10, 0)
        context = loss.text_encoder(loss.tokenizer(own.prompts(), padding="max_length", return_tensors="pt",
                                                   max_length=loss.tokenizer.model_max_length).input_ids)[0]
        for k in (0, 9):
            t = loss.timesteps[k]
            abar = loss.scheduler.alphas_cumprod[t]
            noisy = abar.sqrt() * z + (1 - abar).sqrt() * eps[k]
            v = abar.sqrt() * eps[k] - (1 - abar).sqrt() * z
            pred = loss.unet(noisy, torch.tensor([t]), encoder_hidden_states=context).sample
            assert got[k] == pytest.approx(float(((pred - v) ** 2).mean()), rel=1e-4)


def test_j_of_a_model_with_itself_is_zero_and_symmetric(world: dict[str, Path]) -> None:
    x_a, x_b = answer_set(world, "original"), answer_set(world, "reference")
    la, lb = DenoisingLoss(x_a.model, CPU), DenoisingLoss(x_b.model, CPU)
    a_on_a, b_on_a, a_on_b, b_on_b = (f(x).mean(1) for f, x in ((la, x_a), (lb, x_a), (la, x_b), (lb, x_b)))
    assert jeffreys(a_on_a, a_on_a, a_on_a, a_on_a).j == 0.0                    # J(A, A), same model, same images
    j_ab, j_ba = jeffreys(a_on_a, b_on_a, a_on_b, b_on_b), jeffreys(b_on_b, a_on_b, b_on_a, a_on_a)
    assert j_ab.j == j_ba.j and j_ab.j != 0.0


# --- the report --------------------------------------------------------------------------------------------


def test_report_puts_every_model_beside_the_reference(report: retrained.RetrainedReport, world) -> None:
    rows = report.rows
    assert [r["role"] for r in rows] == ["reference", "original", "unlearned"]
    assert [r["label"] for r in rows] == ["reference (retrained)", "original", "esd style:Van_Gogh"]
    for r in rows:
        assert 0 <= r["scores"]["ua"] <= 1 and r["scores"]["num_images"] == 18
        assert r["forgotten"]["images"] == 6 and r["rest"]["images"] == 12
    ref = rows[0]
    assert ref["forgotten"]["fd"] is None and ref["forgotten"]["loss"]["j"] == 0.0
    for r in rows[1:]:
        for part in ("forgotten", "rest"):
            p, own = r[part], ref[part]["loss"]["b_on_b"]
            loss = p["loss"]
            assert p["fd"] >= 0 and p["kid"] is not None
            assert loss["b_on_b"] == own                    # the reference's loss on its own images, computed once
            assert loss["j"] == (loss["b_on_a"] - loss["a_on_a"]) + (loss["a_on_b"] - loss["b_on_b"])
    assert report.settings["timesteps"] == 10 and report.settings["noise_seed"] == 0
    assert report.settings["models"][0]["timesteps"] == timestep_grid(1000, 10)
    assert report.reference["exclude"] == FORGET
    saved = json.loads(Path(report.paths["json"]).read_text())
    assert saved["rows"] == json.loads(json.dumps(rows))
    md = Path(report.paths["markdown"]).read_text()
    assert "J(original, reference)" in md and "arXiv 2510.12981" in md and "| esd style:Van_Gogh | unlearned |" in md


def test_j_of_the_reference_with_itself_is_exactly_zero(world: dict[str, Path]) -> None:
    r = compare_retrained(world["answers_reference"], [world["answers_reference"]], FORGET, [ColourJudge()],
                          workers=0, device="cpu", kid_subsets=2)
    row = r.rows[1]
    assert row["role"] == "retrained"
    for part in ("forgotten", "rest"):
        loss = row[part]["loss"]
        assert loss["j"] == 0.0 and loss["a_on_a"] == loss["b_on_a"] == loss["a_on_b"] == loss["b_on_b"]
        assert row[part]["fd"] == pytest.approx(0.0, abs=1e-6)


def test_cli_writes_the_report_and_prints_a_line_a_model(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    judge = tiny_judge(tmp_path / "judge", {"style": "uc60", "object": "objects"})
    out = tmp_path / "cmp"
    rc = main(["evaluate", "retrained", "--reference", str(world["answers_reference"]), "--answers",
               str(world["answers_original"]), "--forget", FORGET, "--judges", str(judge), "--out", str(out),
               "--timesteps", "3", "--workers", "0", "--device", "cpu", "-q"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and printed[0].startswith("original: J forgotten ") and printed[-1].endswith("retrained.md")
    saved = json.loads((out / "retrained.json").read_text())
    assert saved["settings"]["models"][0]["timesteps"] == [166, 500, 833]


# --- refusals, before any heavy work -----------------------------------------------------------------------


def copy_model(world: dict[str, Path], tmp_path: Path, **identity: str) -> Path:
    """The reference model folder copied with its model.json identity changed (the weights stay sealed)."""
    out = tmp_path / "ref-copy"
    shutil.copytree(world["reference"], out)
    record = json.loads((out / "model.json").read_text())
    record["identity"].update(identity)
    (out / "model.json").write_text(json.dumps(record))
    return out


def copy_answers(world: dict[str, Path], tmp_path: Path, name: str, **generation: object) -> Path:
    """An answer set copied with its generation.json changed."""
    out = tmp_path / f"answers-{name}"
    shutil.copytree(world[f"answers_{name}"], out)
    gen = json.loads((out / "generation.json").read_text())
    (out / "generation.json").write_text(json.dumps({**gen, **generation}))
    return out


def drop_one_answer(world: dict[str, Path], tmp_path: Path) -> Path:
    out = copy_answers(world, tmp_path, "original")
    next(out.glob("Pop_Art_*_seed2.jpg")).unlink()
    return out


Case = Callable[[dict, Path], dict]
CASES: dict[str, tuple[Case, str]] = {
    "reference retrained without another concept": (
        lambda w, t: {"reference_model": copy_model(w, t, exclude="object:Flame")},
        r"identity.exclude is 'object:Flame': the reference was retrained without another concept"),
    "reference not retrained": (
        lambda w, t: {"reference_model": copy_model(w, t, exclude="")},
        r"identity.exclude is empty: the reference was not retrained without style:Van_Gogh"),
    "reference is an unlearned model": (
        lambda w, t: {"reference_model": w["esd"]},
        r"esd: no model.json: not a `model train` folder, so not a model retrained without style:Van_Gogh"),
    "reference trained on another build": (
        lambda w, t: {"reference_model": copy_model(w, t, data_hash="0" * 64)},
        r"original/model.json identity.data_hash is '\w+', the reference's .* trained on another build"),
    "an unlearned model's source trained on another build": (
        lambda w, t: {"reference_model": copy_model(w, t, data_hash="0" * 64), "answers": [w["answers_esd"]]},
        r"original/model.json \(the source of .*esd/unlearn.json\) identity.data_hash"),
    "answers on other cells and seeds": (
        lambda w, t: {"answers": [drop_one_answer(w, t)]},
        r"answers-original: not the reference's cells and seeds \(1 of the reference's answers missing: Pop_Art_"),
    "answers sampled with another guidance": (
        lambda w, t: {"answers": [copy_answers(w, t, "original", guidance=7.5)]},
        r"answers-original/generation.json field `guidance` is 7.5, the reference's 4.0"),
    "a missing model folder": (
        lambda w, t: {"answers": [copy_answers(w, t, "original", model=str(t / "gone"))]},
        r"generation.json field `model`: .*gone: no such model folder"),
    "a missing --models folder": (
        lambda w, t: {"models": [t / "gone"]},
        r"--models: .*gone: no such model folder"),
    "--models not one per answer set": (
        lambda w, t: {"models": [w["original"], w["esd"]]},
        r"--models: 2 pipeline\(s\) for 1 answer set\(s\)"),
    "an answer folder without generation.json": (
        lambda w, t: {"answers": [t]},
        r"--answers .*: no generation.json"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_before_any_heavy_work(case: str, world: dict[str, Path], tmp_path: Path,
                                                     monkeypatch) -> None:
    def heavy(*args, **kwargs):
        raise AssertionError("heavy work started before the inputs were checked")

    monkeypatch.setattr(retrained, "score_answers", heavy)
    monkeypatch.setattr(retrained, "DenoisingLoss", heavy)
    make, says = CASES[case]
    kwargs = {"answers": [world["answers_original"]], **make(world, tmp_path)}
    answers = kwargs.pop("answers")
    with pytest.raises(UsageError, match=says) as e:
        compare_retrained(world["answers_reference"], answers, FORGET, [ColourJudge()], workers=0, **kwargs)
    assert "\n" not in str(e.value)


def test_cli_bad_input_exits_2_with_one_error_line(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    judge = tiny_judge(tmp_path / "judge", {"style": "uc60", "object": "objects"})
    rc = main(["evaluate", "retrained", "--reference", str(world["answers_original"]), "--answers",
               str(world["answers_esd"]), "--forget", FORGET, "--judges", str(judge), "--out", str(tmp_path / "o"),
               "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "identity.exclude is empty" in err[0]
    assert not (tmp_path / "o").exists()
