"""The rest of the UnlearnCanvas scorecard: finer-scale FU / FR of a style × object combination, the
neighbourhood split of IRA (EraseBench's over-erasure), and the suite's FU / FR and cost columns. Every
number is counted by hand on tiny synthetic predictions or a rule-based judge."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.colour_judge import OBJECT_STEP, STYLE_STEP, ColourJudge
from helpers.tiny_judges import tiny_judge
from PIL import Image

from canvasdata.attack.common import forget_request
from canvasdata.cli import main
from canvasdata.errors import UsageError
from canvasdata.evaluate import get_protocol, parse_forget, score_answers, score_suite
from canvasdata.evaluate.suite import COLUMNS, parse_request_dir, request_spec
from canvasdata.metrics import combination_scores, cosine_similarity, nearest, split_retention
from canvasdata.taxonomy import OBJECTS, UC50

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MiB = 2 ** 20


STYLES, OBJS, SEEDS = ["Van_Gogh", "Monet", "Picasso", "Seed_Images"], ["Cats", "Dogs", "Birds"], [1, 2]
# what the judge sees instead of (style, object, seed); every other image is judged as prompted
WRONG = {("Van_Gogh", "Dogs", 1): ("Monet", "Dogs"),      # the combination: 1 of its 2 images forgotten
         ("Van_Gogh", "Cats", 1): ("Van_Gogh", "Dogs"),   # same style: 3 of 4 right
         ("Picasso", "Dogs", 1): ("Picasso", "Cats"), ("Picasso", "Dogs", 2): ("Picasso", "Cats"),  # same object
         ("Seed_Images", "Dogs", 1): ("Monet", "Dogs"), ("Seed_Images", "Dogs", 2): ("Monet", "Cats"),
         ("Monet", "Birds", 2): ("Monet", "Cats")}        # rest


def write_answers(folder: Path, model: Path | None = None) -> Path:
    """The 4 × 3 × 2 answer set above (16 px JPEGs the ColourJudge reads), with a generation.json naming
    `model` when given."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in STYLES:
        for o in OBJS:
            for seed in SEEDS:
                js, jo = WRONG.get((s, o, seed), (s, o))
                a = np.zeros((16, 16, 3), np.uint8)
                a[..., 0], a[..., 1], a[..., 2] = UC50.index(js) * STYLE_STEP, OBJECTS.index(jo) * OBJECT_STEP, seed
                Image.fromarray(a).save(folder / f"{s}_{o}_seed{seed}.jpg", quality=95)
    if model is not None:
        (folder / "generation.json").write_text(json.dumps({"model": str(model), "styles": STYLES}))
    return folder


# --- FU / FR arithmetic --------------------------------------------------------------------------------

def test_fu_and_fr_parts_by_hand():
    # style 0 × object 0 is the combination; ids: style 0..2, object 0..2
    ts = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 1, 2])
    to = np.array([0, 0, 1, 2, 1, 0, 0, 0, 1, 2, 2])
    ps = np.array([0, 1, 0, 0, 0, 1, 0, 2, 2, 1, 1])
    po = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 2, 2])
    c = combination_scores(ts, to, ps, po, 0, 0)
    assert (c.n_combination, c.n_same_style, c.n_same_object, c.n_rest) == (2, 3, 3, 3)
    assert c.residual_rate == 0.5 and c.fu == 0.5            # image 1 judged (1, 0): forgotten
    assert c.same_style == pytest.approx(2 / 3)              # image 3: object 2 judged 1
    assert c.same_object == pytest.approx(1 / 3)             # image 6 style wrong, image 7 object wrong
    assert c.rest == pytest.approx(2 / 3)                    # image 10 style wrong
    assert c.fr == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    # a judge right on only one of the two domains counts as forgotten for FU, wrong for FR
    only = combination_scores([0, 0, 1], [0, 0, 1], [0, 1, 1], [1, 0, 0], 0, 0)
    assert only.fu == 1.0 and only.rest == 0.0


def test_empty_parts_are_nan_and_a_missing_combination_is_refused():
    c = combination_scores([0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 1, 1], 0, 0)
    assert c.n_same_object == 0 and math.isnan(c.same_object)
    assert (c.same_style, c.rest, c.fr, c.fu) == (1.0, 1.0, 1.0, 0.0)   # fr: mean of the non-empty parts
    alone = combination_scores([3, 3], [4, 4], [3, 0], [4, 4], 3, 4)
    assert math.isnan(alone.fr) and alone.fu == 0.5
    with pytest.raises(ValueError, match="no answer image names the combination"):
        combination_scores([0, 1], [1, 0], [0, 1], [1, 0], 0, 0)
    with pytest.raises(ValueError, match="differ in length"):
        combination_scores([0], [0, 1], [0], [0], 0, 0)


def test_an_excluded_style_leaves_fr_unless_it_is_the_combinations_style():
    seed = 9
    ts = np.array([0, 0, seed, seed, seed, 1])
    to = np.array([0, 1, 0, 1, 1, 1])
    ps = np.array([0, 0, 0, 0, seed, 1])     # the photos of object 0 and the first of object 1 judged style 0
    po = np.array([0, 1, 0, 1, 1, 1])
    left_out = combination_scores(ts, to, ps, po, 0, 0, exclude_style=seed)
    assert (left_out.n_same_object, left_out.n_rest, left_out.excluded_style) == (0, 1, seed)
    assert math.isnan(left_out.same_object) and left_out.rest == 1.0
    kept = combination_scores(ts, to, ps, po, 0, 0)
    assert (kept.same_object, kept.rest, kept.n_rest) == (0.0, pytest.approx(2 / 3), 3)
    # the combination's style is the excluded one (Seed_Images × object 1): nothing is left out
    photos = combination_scores(ts, to, ps, po, seed, 1, exclude_style=seed)
    assert photos.excluded_style is None and (photos.n_combination, photos.n_same_style) == (2, 1)
    assert photos.fu == 0.5 and photos.same_style == 0.0                 # the Seed_Images × 0 photo: style wrong
    assert (photos.n_same_object, photos.same_object) == (2, 1.0)        # style 0 × 1 and style 1 × 1
    assert (photos.n_rest, photos.rest) == (1, 1.0)


# --- neighbours ----------------------------------------------------------------------------------------

def test_nearest_by_cosine_with_ties_exclusions_and_short_supply():
    emb = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [3.0, 0.0]])
    sim = cosine_similarity(emb, 0)
    assert sim[1] == pytest.approx(1.0) and sim[2] == pytest.approx(math.sqrt(0.5)) and math.isnan(sim[5])
    n = nearest(emb, 0, 3)
    assert n.classes == (1, 6, 2) and n.measure == "cosine similarity of class embeddings"  # 1 and 6 tie: id
    assert n.similarities == pytest.approx((1.0, 1.0, math.sqrt(0.5)))
    assert nearest(emb, 0, 4).classes == (1, 6, 2, 4)                   # 2 and 4 tie: the smaller id first
    assert nearest(emb, 0, 2, exclude=[1]).classes == (6, 2)
    assert nearest(emb, 0, 10, among=[3, 5, 0]).classes == (3, 5)       # fewer candidates than k; NaN last
    assert nearest(emb, 0, 0).classes == () and nearest(emb, 0, 3, among=[]).classes == ()
    row = nearest(np.array([0.1, 0.9, 0.5, 0.9]), 0, 2, measure="judge confusion")
    assert row.classes == (1, 3) and row.measure == "judge confusion"
    with pytest.raises(ValueError, match="k must be"):
        nearest(emb, 0, -1)


def test_split_retention_is_nan_safe():
    acc = {1: 1.0, 2: 0.5, 3: 0.0, 4: float("nan")}
    assert split_retention(acc, [1, 2]) == (0.75, 0.0)            # NaN class skipped in rest
    near, rest = split_retention(acc, [])
    assert math.isnan(near) and rest == pytest.approx(0.5)        # empty neighbour set: all in rest
    near, rest = split_retention(acc, [1, 2, 3, 9])               # 9 has no accuracy: ignored
    assert near == pytest.approx(0.5) and math.isnan(rest)
    assert all(math.isnan(v) for v in split_retention({}, [1]))


# --- requests ------------------------------------------------------------------------------------------

def test_combination_requests_parse_in_either_order_and_bad_ones_name_the_problem():
    assert parse_forget("style:Van_Gogh+object:Dogs") == ("combination", "Van_Gogh+Dogs")
    f = parse_forget("object:Dogs+style:Seed_Images")
    assert f == ("combination", "Seed_Images+Dogs") and f.parts == ("Seed_Images", "Dogs")
    assert f.spec == "style:Seed_Images+object:Dogs" and parse_forget("object:Cats").spec == "object:Cats"
    for spec, pattern in (("style:Van_Gogh+object:Dog", r"unknown name 'Dog' in object names; did you mean Dogs"),
                          ("style:Van_Gog+object:Dogs", r"unknown name 'Van_Gog' in style names; did you mean"),
                          ("style:Van_Gogh+style:Monet", "one style and one object, not two styles"),
                          ("object:Dogs+object:Cats", "not two objects"),
                          ("style:Van_Gogh+object:Dogs+object:Cats", "a combination is style:NAME"),
                          ("style:Van_Gogh+Dogs", "a combination is style:NAME"),
                          ("Van_Gogh", "expected style:NAME, object:NAME or style:NAME")):
        with pytest.raises(UsageError, match=pattern) as e:
            parse_forget(spec)
        assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="expected style:NAME or object:NAME"):
        parse_forget("style:Van_Gogh+object:Dogs", combinations=False)
    assert parse_request_dir("object_Dogs+style_Van_Gogh") == ("combination", "Van_Gogh+Dogs")
    assert request_spec("style_Seed_Images+object_Dogs") == "style:Seed_Images+object:Dogs"
    assert request_spec("style_Van_Gogh") == "style:Van_Gogh"
    for name in ("style_Van_Gogh+style_Monet", "style_Van_Gogh+Dogs", "combo_Van_Gogh"):
        with pytest.raises(UsageError, match="request folder is named"):
            parse_request_dir(name)


def test_score_a_combination_by_hand(tmp_path: Path):
    folder = write_answers(tmp_path / "a")
    r = score_answers(folder, "object:Dogs+style:Van_Gogh", [ColourJudge()], workers=0, out=tmp_path / "rep")
    assert r.forget == {"domain": "combination", "target": "Van_Gogh+Dogs", "style": "Van_Gogh", "object": "Dogs"}
    assert (r.fu, r.ua, r.residual_rate, r.n_forget_images) == (0.5, 0.5, 0.5, 2)
    assert r.fr_same_style == 0.75 and r.fr_same_object == 0.5 and r.fr_rest == 0.875   # Seed_Images left out
    assert r.fr_images == {"same_style": 4, "same_object": 4, "rest": 8, "excluded": 6}
    assert r.fr == pytest.approx((0.75 + 0.5 + 0.875) / 3) and r.fr_excluded_style == "Seed_Images"
    assert r.ira is None and r.cra is None and r.forgotten_predicted_as == {"Monet+Dogs": 1, "Van_Gogh+Dogs": 1}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.startswith("# Unlearning report: forget combination `Van_Gogh` × `Dogs`")
    assert "| 50.00 | 70.83 | 75.00 | 50.00 | 87.50 | 50.00 | 24 |" in md
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["fr_same_object"] == 0.5
    kept = score_answers(folder, "style:Van_Gogh+object:Dogs", [ColourJudge()], workers=0,
                         protocol=get_protocol(seed_images_in_style_metrics=True))
    assert kept.fr_same_object == pytest.approx(2 / 6) and kept.fr_rest == pytest.approx(11 / 12)
    assert kept.fr_excluded_style is None and "excluded" not in kept.fr_images


def test_score_a_combination_whose_style_is_seed_images(tmp_path: Path):
    folder = write_answers(tmp_path / "a")
    r = score_answers(folder, "style:Seed_Images+object:Cats", [ColourJudge()], workers=0)
    assert (r.fu, r.n_forget_images, r.fr_excluded_style) == (0.0, 2, None)
    assert r.fr_same_style == 0.5                      # the 4 photos of Dogs and Birds: both Dogs wrong
    assert r.fr_same_object == pytest.approx(5 / 6)    # Van_Gogh Cats seed 1 judged Dogs
    assert r.fr_rest == pytest.approx(8 / 12)          # Van_Gogh Dogs 1, Picasso Dogs 1 and 2, Monet Birds 2
    assert r.fr_images == {"same_style": 4, "same_object": 6, "rest": 12}
    with pytest.raises(UsageError, match="no answer image is prompted as Monet × Frogs"):
        score_answers(folder, "style:Monet+object:Frogs", [ColourJudge()], workers=0)
    with pytest.raises(UsageError, match="unknown name 'Frog' in object names"):
        score_answers(folder, "style:Monet+object:Frog", [ColourJudge()], workers=0)


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    return tiny_judge(tmp_path_factory.mktemp("j") / "judge", {"style": "uc50", "object": "objects"})


def test_ira_near_and_rest_from_the_judges_class_embeddings(judge_dir: Path, tmp_path: Path):
    from canvasdata.judges import load_judge

    judge = load_judge(judge_dir)
    styles = ["Van_Gogh", "Monet", "Picasso", "Cubism", "Pop_Art", "Seed_Images"]
    folder = tmp_path / "a"
    folder.mkdir()
    for s in styles:
        for o in ("Cats", "Dogs"):
            Image.fromarray(np.full((16, 16, 3), 40 * styles.index(s), np.uint8)).save(folder / f"{s}_{o}_seed1.jpg")
    r = score_answers(folder, "style:Van_Gogh", [judge], workers=0, out=tmp_path / "rep")
    emb = judge.class_embeddings("style").numpy()
    assert emb.shape == (51, 32) and judge.class_embeddings("object").shape == (20, 32)
    sims = cosine_similarity(emb, UC50.index("Van_Gogh"))
    retained = [UC50.index(s) for s in styles[1:5]]                 # Seed_Images is not in IRA (the protocol)
    expected = sorted(retained, key=lambda c: (-sims[c], c))[:3]
    assert list(r.neighbours) == [UC50[c] for c in expected] and r.neighbours_k == 3
    assert list(r.neighbours.values()) == pytest.approx([sims[c] for c in expected])
    near = [r.ira_per_class[UC50[c]] for c in expected]
    rest = [v for k, v in r.ira_per_class.items() if k not in r.neighbours]
    assert r.ira_near == pytest.approx(np.mean(near)) and r.ira_rest == pytest.approx(np.mean(rest))
    assert "cosine similarity of the style judge's class embeddings" in r.neighbourhood
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "- IRA near " in md and "## The style classes nearest `Van_Gogh` (IRA near)" in md
    every = score_answers(folder, "style:Van_Gogh", [judge], workers=0, neighbours_k=10)
    assert len(every.neighbours) == 4 and every.ira_rest is None    # k beyond the 4 retained: all near
    none = score_answers(folder, "style:Van_Gogh", [judge], workers=0, neighbours_k=0)
    assert none.neighbours == {} and none.ira_near is None and none.ira_rest == pytest.approx(none.ira)
    plain = score_answers(folder, "object:Cats", [ColourJudge()], workers=0)
    assert plain.neighbours is None and "exposes no class embeddings" in plain.neighbourhood


# --- the suite -----------------------------------------------------------------------------------------

def unlearned_model(folder: Path, seconds: float | None, peak: int, changed: int) -> Path:
    """A model folder holding the unlearn.json an unlearning command writes (None: no unlearn.json)."""
    folder.mkdir(parents=True)
    if seconds is not None:
        (folder / "unlearn.json").write_text(json.dumps({"method": "esd", "seconds": seconds,
                                                         "peak_memory_bytes": peak, "changed_bytes": changed}))
    return folder


def test_suite_with_a_combination_request_and_cost_columns(judge_dir: Path, tmp_path: Path, capsys):
    answers = write_answers(tmp_path / "answers")
    runs, models = tmp_path / "runs", tmp_path / "models"
    for method, request, cost in (("ESD", "object_Dogs+style_Van_Gogh", (12.5, 3 * MiB, MiB // 2)),
                                  ("ESD", "style_Van_Gogh", (7.5, 5 * MiB, 3 * MiB // 2)),
                                  ("FMN", "style_Monet", (None, 0, 0))):
        model = unlearned_model(models / method / request, *cost)
        shutil.copytree(answers, runs / method / request)
        (runs / method / request / "generation.json").write_text(json.dumps({"model": str(model)}))
    suite = score_suite(runs, [ColourJudge()], workers=0, out=tmp_path / "suite", progress=False)
    assert suite.columns == ["method", "style UA", "style IRA", "style CRA", "object UA", "object IRA", "object CRA",
                             "FU", "FR", "FD", "style requests", "object requests", "combination requests",
                             "time (s)", "peak memory (MiB)", "changed (MiB)"]
    esd, fmn = suite.rows
    assert (esd["FU"], esd["FR"], esd["combination requests"], esd["style requests"]) == (50.0, 70.83, 1, 1)
    assert (esd["time (s)"], esd["peak memory (MiB)"], esd["changed (MiB)"]) == (10.0, 4.0, 1.0)
    assert fmn["FU"] is None and fmn["combination requests"] == 0 and fmn["time (s)"] is None
    csv = (tmp_path / "suite" / "suite.csv").read_text().splitlines()
    assert csv[0].endswith(",FU,FR,FD,style requests,object requests,combination requests,time (s),"
                           "peak memory (MiB),changed (MiB)")
    assert csv[2].endswith(",0,,,")                                   # FMN: no unlearn.json, empty cells
    md = (tmp_path / "suite" / "suite.md").read_text()
    assert "| 50.0 | 70.83 |" in md and "FU / FR in %" in md and "Cost: from `unlearn.json`" in md
    saved = json.loads((tmp_path / "suite" / "suite.json").read_text())
    assert saved["costs"]["ESD"]["style_Van_Gogh"]["seconds"] == 7.5 and saved["costs"]["FMN"]["style_Monet"] == {}
    combo = json.loads((tmp_path / "suite" / "ESD" / "object_Dogs+style_Van_Gogh" / "report.json").read_text())
    assert combo["fu"] == 0.5 and combo["forget"]["domain"] == "combination"
    # the same runs with a real (tiny, random) judge from the command line: the columns are there
    assert main(["evaluate", "suite", str(runs), "--judges", str(judge_dir), "--workers", "0", "-q", "--out",
                 str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert "| FU | FR |" in printed and "| time (s) | peak memory (MiB) | changed (MiB) |" in printed
    # neither a combination nor an unlearn.json: the table of before, unchanged
    shutil.rmtree(runs / "ESD" / "object_Dogs+style_Van_Gogh")
    (models / "ESD" / "style_Van_Gogh" / "unlearn.json").unlink()
    plain = score_suite(runs, [ColourJudge()], workers=0, out=tmp_path / "plain", progress=False)
    assert plain.columns == COLUMNS and "costs" not in json.loads((tmp_path / "plain" / "suite.json").read_text())
    assert set(plain.rows[0]) == set(COLUMNS)
    (models / "FMN" / "style_Monet" / "unlearn.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"style_Monet/unlearn.json: unreadable"):
        score_suite(runs, [ColourJudge()], workers=0, progress=False)


def test_the_attacks_refuse_a_combination_in_one_line():
    with pytest.raises(UsageError, match="no combination here"):
        forget_request("style:Van_Gogh+object:Dogs")
