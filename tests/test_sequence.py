"""Continual unlearning: the arithmetic of `canvasdata.metrics.sequence` against hand-computed values (edge
cases included), and `evaluate sequence` end to end on answer folders a rule-based judge reads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from canvasdata.cli import main
from canvasdata.errors import UsageError
from canvasdata.evaluate.sequence import score_sequence
from canvasdata.metrics.sequence import Target, rebound, retention, target_ua, untargeted
from helpers.colour_judge import ColourJudge, colour_image

# --- the arithmetic ----------------------------------------------------------------------------------------
# six images: styles 0,0,1,1,2,2 x objects 0,1,0,1,0,1; the judge is right except where noted
TS = np.array([0, 0, 1, 1, 2, 2])
TO = np.array([0, 1, 0, 1, 0, 1])


def test_target_ua_per_domain_and_combination() -> None:
    ps = np.array([0, 1, 1, 1, 2, 2])      # image 1 (style 0) judged as style 1
    po = np.array([0, 1, 1, 1, 0, 0])      # image 2 (object 0) judged 1; image 5 (object 1) judged 0
    assert target_ua(TS, TO, ps, po, Target("style", 0, None)) == 0.5          # 1 of style 0's 2 missed
    assert target_ua(TS, TO, ps, po, Target("object", None, 1)) == pytest.approx(1 / 3)  # image 5 of 1, 3, 5
    assert target_ua(TS, TO, ps, po, Target("combination", 1, 0)) == 1.0        # its one image: object wrong
    assert target_ua(TS, TO, ps, po, Target("combination", 1, 1)) == 0.0
    with pytest.raises(ValueError, match="no answer image"):
        target_ua(TS, TO, ps, po, Target("style", 7, None))


def test_combination_whose_style_is_seed_images_counts_its_own_images() -> None:
    """Seed_Images (id 0 here) as a combination's style: its cell is scored, and SR's style half leaves the
    other Seed_Images images out while the object half keeps them."""
    ps, po = TS.copy(), TO.copy()
    ps[0] = 1                                                     # the combination's image judged another style
    seed_combo = Target("combination", 0, 0)
    assert target_ua(TS, TO, ps, po, seed_combo) == 1.0
    assert untargeted(TS, TO, [seed_combo]).tolist() == [False, True, True, True, True, True]
    r = retention(TS, TO, ps, po, [seed_combo], exclude_style=0)
    assert (r.n_style, r.n_object) == (4, 5) and r.style == 1.0 and r.object == 1.0 and r.sr == 1.0


def test_retention_over_never_targeted_cells_by_hand() -> None:
    ps = np.array([0, 0, 1, 0, 2, 2])      # image 3 (style 1) judged 0
    po = np.array([0, 1, 0, 1, 1, 1])      # image 4 (object 0) judged 1
    r = retention(TS, TO, ps, po, [Target("style", 0, None)])          # images 2..5 remain
    assert (r.n_style, r.n_object) == (4, 4)
    assert r.style == 0.75 and r.object == 0.75 and r.sr == 0.75
    both = retention(TS, TO, ps, po, [Target("style", 0, None), Target("object", None, 0)])  # images 3, 5
    assert (both.style, both.object, both.sr) == (0.5, 1.0, 0.75)


def test_empty_never_targeted_set_is_nan_not_an_error() -> None:
    r = retention(TS, TO, TS, TO, [Target("object", None, 0), Target("object", None, 1)])
    assert (r.n_style, r.n_object) == (0, 0) and math.isnan(r.style) and math.isnan(r.object) and math.isnan(r.sr)


def test_rebound_is_the_fall_from_the_best_after_forgetting() -> None:
    assert rebound([None, 0.9, 0.6, 0.7]) == pytest.approx(0.2)
    assert rebound([0.5, 0.8]) == 0.0 and rebound([0.4]) == 0.0     # a sequence of one cannot rebound
    assert math.isnan(rebound([None, None]))


# --- evaluate sequence on answer folders ------------------------------------------------------------------
STYLES, OBJS, SEEDS = ["Van_Gogh", "Monet", "Picasso"], ["Cats", "Dogs"], [1, 2]


def answers(folder: Path, missed: dict[tuple[str, str], tuple[str, str]]) -> Path:
    """An answer folder over STYLES x OBJS x SEEDS, each image read as its prompt except `missed` cells."""
    folder.mkdir(parents=True)
    for s in STYLES:
        for o in OBJS:
            for seed in SEEDS:
                colour_image(*missed.get((s, o), (s, o)), noise=seed).save(folder / f"{s}_{o}_seed{seed}.jpg",
                                                                           quality=95)
    return folder


def test_score_sequence_reports_steps_rebound_simultaneous_and_a_plot(tmp_path: Path) -> None:
    orig = answers(tmp_path / "orig", {})
    forgot_vg = {("Van_Gogh", o): ("Monet", o) for o in OBJS}
    step1 = answers(tmp_path / "s1", forgot_vg)
    # step 2: Dogs forgotten, but Van_Gogh/Cats comes back (rebound 50 pp) and Picasso/Cats is damaged
    step2 = answers(tmp_path / "s2", {("Van_Gogh", "Dogs"): ("Monet", "Cats"), ("Monet", "Dogs"): ("Monet", "Cats"),
                                      ("Picasso", "Dogs"): ("Picasso", "Cats"), ("Picasso", "Cats"): ("Monet", "Cats")})
    sim = answers(tmp_path / "sim", {**forgot_vg, ("Van_Gogh", "Dogs"): ("Monet", "Cats"), ("Monet", "Dogs"): ("Monet", "Cats"),
                                     ("Picasso", "Dogs"): ("Picasso", "Cats")})
    r = score_sequence([step1, step2], ["style:Van_Gogh", "object:Dogs"], [ColourJudge()], original=orig,
                       simultaneous=sim, out=tmp_path / "report")
    rows = {row.label: row for row in r.rows}
    assert list(rows) == ["original", "step 1", "step 2", "simultaneous"]
    assert rows["original"].ua == {"style:Van_Gogh": 0.0, "object:Dogs": 0.0} and rows["original"].su is None
    assert rows["step 1"].forgotten == ["style:Van_Gogh"] and rows["step 1"].su == 1.0
    assert rows["step 2"].ua == {"style:Van_Gogh": 0.5, "object:Dogs": 1.0} and rows["step 2"].su == 0.75
    # never targeted: Monet/Cats and Picasso/Cats (4 images); step 2 misjudges Picasso/Cats' style
    assert (rows["step 2"].sr_style, rows["step 2"].sr_object, rows["step 2"].sr) == (0.5, 1.0, 0.75)
    assert rows["simultaneous"].su == 1.0 and rows["simultaneous"].sr == 1.0
    assert r.rebound == {"style:Van_Gogh": 0.5, "object:Dogs": 0.0}
    saved = json.loads((tmp_path / "report" / "sequence.json").read_text())
    assert saved["rebound"] == r.rebound and [x["label"] for x in saved["rows"]] == list(rows)
    md = (tmp_path / "report" / "sequence.md").read_text()
    assert "| step 1 | 1 | 100.00 | (0.00) |" in md       # Dogs not forgotten yet: in parentheses
    with Image.open(tmp_path / "report" / "sequence.png") as im:
        assert im.size == (720, 440) and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 5


def test_sequence_of_one(tmp_path: Path) -> None:
    step = answers(tmp_path / "s1", {("Monet", "Cats"): ("Picasso", "Cats")})
    r = score_sequence([step], ["style:Monet"], [ColourJudge()])
    (row,) = r.rows
    assert row.ua == {"style:Monet": 0.5} and row.su == 0.5 and r.rebound == {"style:Monet": 0.0}


@pytest.mark.parametrize("targets, steps, says", [
    (["style:Monet", "style:Monet"], 2, "repeats style:Monet"),
    (["style:Monet", "object:Dogs"], 1, "1 answer sets for 2 requests"),
    (["style:Monett"], 1, "did you mean Monet"),
    (["object:Birds"], 1, "no answer image is prompted with object:Birds"),
])
def test_bad_sequences_are_one_line_errors(tmp_path: Path, targets: list[str], steps: int, says: str) -> None:
    folder = answers(tmp_path / "a", {})
    with pytest.raises(UsageError, match=says) as e:
        score_sequence([folder] * steps, targets, [ColourJudge()], out=tmp_path / "out")
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_cli_sequence_with_a_missing_judge_is_one_line_and_writes_nothing(tmp_path: Path, capsys) -> None:
    folder = answers(tmp_path / "a", {})
    code = main(["evaluate", "sequence", "--answers", str(folder), str(folder), "--forget", "style:Monet",
                 "style:Monet", "--judges", str(tmp_path / "no-judge"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no-judge" in err[0] and not (tmp_path / "out").exists()
