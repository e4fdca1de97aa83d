"""`canvasdata evaluate sweep`: many pipelines as one job, into the layout `evaluate suite` reads; the sweep
file's checks before any generation; `--plan`'s arithmetic; resume."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from helpers.colour_judge import ColourJudge  # noqa: E402
from helpers.sweeps import two_model_sweep  # noqa: E402

from canvasdata.cli import main  # noqa: E402
from canvasdata.errors import UsageError  # noqa: E402
from canvasdata.evaluate.sweep import Sampling, SweepEntry, load_sweep, run_sweep, sweep_plan  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SAMPLING = Sampling(styles=("Van_Gogh", "Monet"), objects=("Cats", "Dogs"), seeds=(1,), size=32, steps=2,
                    guidance=3.0, batch_size=4)


def sweep_file(folder: Path, text: str) -> Path:
    path = folder / "models.toml"
    path.write_text(text)
    return path


def test_sweep_generates_every_model_into_the_suite_layout_and_scores_it(tiny_sd_pipeline: Path,
                                                                         tmp_path: Path) -> None:
    """Two rows: esd answering one request, the original answering two (generated once, linked); a
    rerun generates nothing again."""
    toml = two_model_sweep(tmp_path, tiny_sd_pipeline)
    entries = load_sweep(toml)
    assert entries[1] == SweepEntry("original", ("style:Van_Gogh", "object:Dogs"), str(tiny_sd_pipeline))
    runs = tmp_path / "runs"
    suite = run_sweep(entries, runs, [ColourJudge()], SAMPLING, device="cpu", progress=False, workers=0)
    assert sorted(p.name for p in (runs / "esd" / "style_Van_Gogh").glob("*.jpg")) == sorted(
        f"{s}_{o}_seed1.jpg" for s in SAMPLING.styles for o in SAMPLING.objects)
    link = runs / "original" / "object_Dogs"
    assert link.is_symlink() and link.resolve() == (runs / "original" / "style_Van_Gogh").resolve()
    assert [r["method"] for r in suite.rows] == ["esd", "original"]
    assert (runs / "suite" / "suite.md").is_file() and (runs / "suite" / "original" / "object_Dogs").is_dir()
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*.jpg")}
    run_sweep(entries, runs, [ColourJudge()], SAMPLING, device="cpu", progress=False, workers=0)
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("*.jpg")} == before


@pytest.mark.parametrize("text, says", [
    ('[[model]]\nmethod = "esd"\nforget = "style:Van_Gogh"\npath = "nowhere/at/all"\n', "#1: path"),
    ('[[model]]\nmethod = "esd"\nforget = "style:Van_Gog"\npath = "PIPE"\n', "did you mean Van_Gogh"),
    ('[[model]]\nmethod = "esd"\nforget = "style:Van_Gogh"\npath = "PIPE"\n'
     '[[model]]\nmethod = "esd"\nforget = ["object:Dogs", "style:Van_Gogh"]\npath = "PIPE"\n',
     "#2: method 'esd' answers style:Van_Gogh again (also [[model]] #1)"),
    ('[[model]]\nmethod = "a b"\nforget = "style:Van_Gogh"\npath = "PIPE"\n', "field 'method'"),
    ('[[model]]\nmethod = "esd"\nforget = "style:Van_Gogh"\npath = "PIPE"\nlr = 1\n', "lr"),
    ('title = "x"\n', "unknown table 'title'"),
])
def test_a_bad_sweep_file_is_one_line_before_any_generation(tiny_sd_pipeline: Path, tmp_path: Path, text: str,
                                                            says: str) -> None:
    toml = sweep_file(tmp_path, text.replace("PIPE", str(tiny_sd_pipeline)))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["evaluate", "sweep", str(toml), "--out", str(tmp_path / "runs"), "--judges", "j"])
    lines = err.getvalue().strip().splitlines()
    assert code == 2 and len(lines) == 1 and says in lines[0] and "models.toml" in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_plan_counts_by_hand() -> None:
    entries = [SweepEntry("esd", ("style:Van_Gogh",), "m1"), SweepEntry("original", ("style:Van_Gogh",
                                                                                      "object:Dogs"), "m0")]
    p = sweep_plan(entries, SAMPLING, judges=2, seconds_per_image=0.5)
    # 2 models x (2 styles x 2 objects x 1 seed) images; 2 steps x 2 (guidance) UNet calls each; 3 requests judged
    assert (p["images"], p["images_per_model"], p["unet_evaluations"], p["judge_calls"]) == (8, 4, 32, 24)
    assert p["estimate_seconds"] == 4.0
    with pytest.raises(UsageError, match="did you mean Monet"):
        Sampling(styles=("Monett",), objects=("Cats",), seeds=(1,), size=32, steps=2, guidance=3.0, batch_size=4)


def test_cli_plan_prints_the_bill_and_writes_nothing(tiny_sd_pipeline: Path, tmp_path: Path, capsys) -> None:
    toml = sweep_file(tmp_path, f'[[model]]\nmethod = "esd"\nforget = "style:Van_Gogh"\npath = "{tiny_sd_pipeline}"\n')
    code = main(["evaluate", "sweep", str(toml), "--out", str(tmp_path / "runs"), "--plan", "--styles", "Van_Gogh",
                 "--objects", "Cats", "Dogs", "--seeds", "1", "2", "--size", "32", "--steps", "10", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "sweep of 1 models (1 requests): 4 images" in out and "80 UNet evaluations" in out
    assert not (tmp_path / "runs").exists()


def test_generate_plan_counts_what_is_left_and_writes_nothing(tiny_sd_pipeline: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "answers"
    argv = ["evaluate", "generate", "--model", str(tiny_sd_pipeline), "--out", str(out), "--styles", "Van_Gogh",
            "Monet", "--objects", "Cats", "--seeds", "1", "2", "--size", "32", "--steps", "10", "--device", "cpu",
            "-q"]
    assert main([*argv, "--plan"]) == 0
    printed = capsys.readouterr().out
    # 2 styles x 1 object x 2 seeds; 10 steps x 2 (guidance 9) UNet calls each; a style and an object judgement each
    assert "answer set of 4 images (0 already in" in printed and "4 to generate, 80 UNet evaluations" in printed
    assert "8 judge calls" in printed and not out.exists()
    assert main(argv) == 0
    (out / "Monet_Cats_seed2.jpg").unlink()
    assert main([*argv, "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "(3 already in" in printed and "1 to generate, 20 UNet evaluations" in printed
