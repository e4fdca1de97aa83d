"""Evaluators end to end: awkward answer names, answer sets from folders and Parquet shards, a tiny
diffusers pipeline generating a resumable answer set, scoring with a rule-based fake judge (exact
UA/IRA/CRA) and with real tiny judges, FD/KID against a reference, Inception weights, suite tables,
the CLI, and clear errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.colour_judge import ColourJudge, colour_image
from helpers.tiny_judges import tiny_judge
from PIL import Image

from canvasdata.cli import main
from canvasdata.data import load_split
from canvasdata.dataset import build
from canvasdata.evaluate import parse_answer_name, read_answer_folder, read_answers, score_answers, score_suite
from canvasdata.evaluate.answers import Answer, read_reference
from canvasdata.evaluate.protocol import CANVASDATA, UNLEARNCANVAS, get_protocol
from canvasdata.evaluate.score import JudgeCache
from canvasdata.judges.evaluate import evaluate_judge
from canvasdata.recipes import load_recipe
from canvasdata.sources.diffusers import PipelineOptions, load_text2image
from canvasdata.taxonomy import OBJECTS, UC50

KW = {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8}
def write_answers(folder: Path, styles, objects, seeds, judged_as=lambda s, o: (s, o)) -> Path:
    """An answer folder whose image for (s, o) looks like `judged_as(s, o)` to the ColourJudge."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in styles:
        for o in objects:
            for seed in seeds:
                colour_image(*judged_as(s, o), noise=seed).save(folder / f"{s}_{o}_seed{seed}.jpg", quality=95)
    return folder


@pytest.mark.parametrize("name, expected", [
    ("Van_Gogh_Cats_seed188.jpg", ("Van_Gogh", "Cats", 188)),
    ("Seed_Images_Human_seed888.jpg", ("Seed_Images", "Human", 888)),
    ("Red_Blue_Ink_Sea_seed5.png", ("Red_Blue_Ink", "Sea", 5)),
    ("Warm_Smear_Towers_seed288.jpg", ("Warm_Smear", "Towers", 288)),
    ("Realistic_Watercolor_Butterfly_seed12.jpg", ("Realistic_Watercolor", "Butterfly", 12)),
])
def test_parse_awkward_names(name, expected):
    assert parse_answer_name(name) == expected


def test_names_parse_against_the_label_space():
    assert parse_answer_name("Ink_Art_Cats_seed1.jpg", styles=["Ink", "Ink_Art"], objects=["Art_Cats", "Cats"]) \
        == ("Ink_Art", "Cats", 1)  # the longest known style wins
    with pytest.raises(ValueError, match="no known style"):
        parse_answer_name("Van_Gog_Cats_seed1.jpg")
    with pytest.raises(ValueError, match="seed"):
        parse_answer_name("Van_Gogh_Cats.jpg")


def test_exact_scores_with_a_rule_based_judge(tmp_path: Path):
    """Forget Van_Gogh: its images drift to Monet; Seed_Images photos of Dogs are judged Monet and the
    Monet Dogs images are judged as Cats. Every number below is counted by hand, under the default
    protocol (the original's: CRA over every image) and under `canvasdata` (CRA over the retained)."""
    def unlearned(s, o):
        if s == "Van_Gogh":
            return "Monet", o
        if s == "Seed_Images" and o == "Dogs":
            return "Monet", o
        if s == "Monet" and o == "Dogs":
            return s, "Cats"
        return s, o

    styles, objects = ["Van_Gogh", "Monet", "Picasso", "Seed_Images"], ["Cats", "Dogs"]
    folder = write_answers(tmp_path / "a", styles, objects, [188, 288], unlearned)
    r = score_answers(folder, "style:Van_Gogh", [ColourJudge()], workers=0, out=tmp_path / "rep")
    assert (r.ua, r.residual_rate, r.n_forget_images) == (1.0, 0.0, 4)
    assert r.ira == 1.0 and r.ira_per_class == {"Monet": 1.0, "Picasso": 1.0}
    assert r.cra == pytest.approx(14 / 16) and r.n_cra_images == 16  # Monet Dogs: 2 wrong in all 16
    assert r.cra_per_class == {"Cats": 1.0, "Dogs": pytest.approx(6 / 8)}
    assert r.forgotten_predicted_as == {"Monet": 4}
    clean = score_answers(folder, "style:Van_Gogh", [ColourJudge()], protocol="canvasdata", workers=0)
    assert clean.cra == pytest.approx(10 / 12) and clean.n_cra_images == 12  # Van_Gogh's 4 left out
    assert (clean.ua, clean.ira) == (r.ua, r.ira)
    with_seed = score_answers(folder, "style:Van_Gogh", [ColourJudge()], workers=0,
                              protocol=get_protocol(seed_images_in_style_metrics=True))
    assert with_seed.ira == pytest.approx((1 + 1 + 0.5) / 3) and with_seed.cra == r.cra
    obj = score_answers(folder, "object:Dogs", [ColourJudge()], workers=0)
    assert obj.ua == pytest.approx(2 / 8) and obj.forgotten_predicted_as == {"Dogs": 6, "Cats": 2}
    assert obj.ira == 1.0 and obj.cra == pytest.approx(8 / 12)  # the 4 Van_Gogh images (judged Monet) of 12
    obj_clean = score_answers(folder, "object:Dogs", [ColourJudge()], protocol=CANVASDATA, workers=0)
    assert obj_clean.cra == pytest.approx(4 / 6)  # the 2 Van_Gogh Cats (judged Monet) of 6 Cats
    for proto, cra in ((UNLEARNCANVAS, 10 / 16), (CANVASDATA, 6 / 8)):  # + the 4 (or 2 Cats) Seed_Images
        obj_seed = score_answers(folder, "object:Dogs", [ColourJudge()], workers=0,
                                 protocol=proto.override(seed_images_in_style_metrics=True))
        assert obj_seed.cra == pytest.approx(cra)
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["ua"] == 1.0 and saved["protocol"]["name"] == "unlearncanvas"
    assert saved["protocol"]["seed_images_in_style_metrics"] is False and saved["protocol"]["reproduces_original"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.startswith("# Unlearning report: forget style `Van_Gogh`") and "| Monet | 4 |" in md
    assert "over 16 images, those prompted with `Van_Gogh` included" in md
    assert "- Protocol: `unlearncanvas`: the original UnlearnCanvas code's choices." in md


def test_fd_and_kid_against_a_reference_exclude_the_target_cells(tmp_path: Path):
    styles, objects = ["Van_Gogh", "Monet", "Seed_Images"], ["Cats", "Dogs"]
    answers = write_answers(tmp_path / "a", styles, objects, [188, 288, 588])
    ref = tmp_path / "ref"
    for s in [*styles, "Picasso"]:  # Picasso: a cell the answer set does not cover
        for o in objects:
            (ref / s / o).mkdir(parents=True)
            for k in range(1, 8):
                colour_image(s, o, noise=100 + k).save(ref / s / o / f"{k}.jpg")
    r = score_answers(answers, "style:Van_Gogh", [ColourJudge()], reference=ref, workers=0, kid_subsets=5)
    assert r.num_reference_images == 2 * 2 * 5 and r.num_fd_images == 2 * 2 * 3
    assert np.isfinite(r.frechet_distance) and r.frechet_distance >= 0 and np.isfinite(r.kid)
    same = tmp_path / "same"  # the retained answers themselves as the reference: distance ~0
    for a in read_answer_folder(answers):
        if a.style != "Van_Gogh":
            (same / a.style / a.object).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(a.path, same / a.style / a.object / f"{[188, 288, 588].index(a.seed) + 1}.jpg")
    itself = score_answers(answers, "style:Van_Gogh", [ColourJudge()], reference=same, reference_indices=(1, 2, 3),
                           workers=0, kid_subsets=5)
    assert itself.num_reference_images == itself.num_fd_images == 2 * 2 * 3
    assert abs(itself.frechet_distance) < 1e-3 and itself.kid < r.kid
    assert r.frechet_distance > 100 * max(abs(itself.frechet_distance), 1e-4)
    assert r.feature_extractor == "style judge penultimate layer (ColourJudge, 9-d)"
    only = read_reference(ref, lambda s, o, k: s == "Monet" and o == "Cats" and k in (1, 2))
    assert sorted((a.style, a.object, a.seed) for a in only) == [("Monet", "Cats", 1), ("Monet", "Cats", 2)]


class CountingColourJudge(ColourJudge):
    """A ColourJudge that counts the images it classifies and those it computes features of."""

    def __init__(self) -> None:
        super().__init__()
        self.judged = self.featured = 0

    def logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.judged += len(x)
        return super().logits(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.featured += len(x)
        return super().features(x)


def test_a_judge_cache_judges_each_image_once_and_changes_no_number(tmp_path: Path):
    """Three requests share a JudgeCache (as a suite's do), the last on a link to the first's answer folder
    (as a world links the original model's): the same scores, FD, KID and image counts as without it; the
    reference images two requests compare with are judged once, the linked folder's answers once, and a copy
    of the folder (other files) again."""
    styles, objects = ["Van_Gogh", "Monet", "Seed_Images"], ["Cats", "Dogs"]
    answers = write_answers(tmp_path / "a", styles, objects, [188, 288, 588])
    (tmp_path / "linked").symlink_to(answers, target_is_directory=True)
    shutil.copytree(answers, tmp_path / "copy")
    ref = tmp_path / "ref"
    for s in [*styles, "Picasso"]:
        for o in objects:
            (ref / s / o).mkdir(parents=True)
            for k in range(1, 8):
                colour_image(s, o, noise=100 + k).save(ref / s / o / f"{k}.jpg")
    requests = ((answers, "style:Van_Gogh"), (tmp_path / "copy", "object:Dogs"), (tmp_path / "linked", "object:Dogs"))
    plain_judge, cached_judge, cache = CountingColourJudge(), CountingColourJudge(), JudgeCache()
    plain = [score_answers(a, f, [plain_judge], reference=ref, workers=0, kid_subsets=5) for a, f in requests]
    cached = [score_answers(a, f, [cached_judge], reference=ref, workers=0, kid_subsets=5, cache=cache)
              for a, f in requests]
    for a, b in zip(plain, cached, strict=True):
        assert (a.ua, a.ira, a.cra, a.ira_per_class, a.forgotten_predicted_as) == (
            b.ua, b.ira, b.cra, b.ira_per_class, b.forgotten_predicted_as)
        assert (a.frechet_distance, a.kid, a.num_fd_images, a.num_reference_images) == (
            b.frechet_distance, b.kid, b.num_fd_images, b.num_reference_images)
    assert [r.num_reference_images for r in plain] == [2 * 2 * 5, 3 * 1 * 5, 3 * 1 * 5]
    n = len(styles) * len(objects) * 3   # answers a request
    # the plain judge reads 3 answer sets and 20 + 15 + 15 reference images; the cached one the folder and its
    # copy (the link's answers are the folder's) and 20 + 5 (Monet and Seed_Images x Cats' images 1-5 are in
    # both request 1's and request 2's reference cells; request 3's are request 2's)
    assert (plain_judge.judged, cached_judge.judged) == (3 * n + 20 + 15 + 15, 2 * n + 20 + 5)
    assert (plain_judge.featured, cached_judge.featured) == (plain_judge.judged, cached_judge.judged)


def test_answers_and_references_from_parquet_shards(tmp_path: Path):
    """A directory of data/*.parquet with the datasets metadata (as canvasdata writes and the Hub
    serves), without a manifest: labels come from the schema, images only for the rows kept."""
    import io

    import datasets

    from canvasdata.formats.parquet import write_parquet
    from canvasdata.formats.schema import features_for

    feats = features_for(list(UC50), list(OBJECTS))
    rows = []
    for s in ("Van_Gogh", "Seed_Images"):
        for o in ("Cats", "Human"):
            for k in (1, 2, 7):
                buf = io.BytesIO()
                colour_image(s, o, k).save(buf, format="JPEG")
                rows.append({"image": buf.getvalue(), "style": UC50.index(s), "object": OBJECTS.index(o), "index": k,
                             "content_id": f"{o}-{k:05d}", "prompt": "", "seed": k, "source": "procedural",
                             "split": "train"})
    (tmp_path / "data").mkdir()
    write_parquet(tmp_path / "data" / "train-00000-of-00001.parquet", rows, feats)
    answers = read_answers(tmp_path)
    assert len(answers) == 12 and {(a.style, a.object) for a in answers} == \
        {("Van_Gogh", "Cats"), ("Van_Gogh", "Human"), ("Seed_Images", "Cats"), ("Seed_Images", "Human")}
    r = score_answers(answers, "object:Human", [ColourJudge()], workers=0)
    assert r.ua == 0.0 and r.ira == 1.0 and r.cra == 1.0 and r.n_cra_images == 6  # Van_Gogh's; Seed_Images left out
    ref = read_reference(tmp_path, lambda s, o, k: k <= 5 and o != "Human")
    assert sorted((a.style, a.seed) for a in ref) == [("Seed_Images", 1), ("Seed_Images", 2), ("Van_Gogh", 1),
                                                      ("Van_Gogh", 2)]
    assert datasets.load_dataset(str(tmp_path), split="train").features["style"].names == list(UC50)


def test_parquet_class_names_are_read_as_datasets_reads_them(tmp_path: Path):
    """The style and object names of a bare data/*.parquet are `datasets`' reading of its schema
    (`Features.from_arrow_schema`): a file written by `datasets` itself reads, a column with no datasets type
    does not stand in the way, and a file without (or with unreadable) features metadata is a one-line error."""
    import io

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from canvasdata.errors import UsageError
    from canvasdata.evaluate.answers import read_answer_shards

    buf = io.BytesIO()
    colour_image("Monet", "Cats").save(buf, format="JPEG")
    feats = datasets.Features({"image": datasets.Image(), "style": datasets.ClassLabel(names=["Monet", "Dali"]),
                               "object": datasets.ClassLabel(names=["Dogs", "Cats"]), "index": datasets.Value("int32")})
    (tmp_path / "data").mkdir()
    shard = tmp_path / "data" / "train-00000-of-00001.parquet"
    datasets.Dataset.from_dict({"image": [{"bytes": buf.getvalue(), "path": None}], "style": [1], "object": [1],
                                "index": [4]}, features=feats).to_parquet(str(shard))
    [a] = read_answer_shards(tmp_path)
    assert (a.style, a.object, a.seed, a.data) == ("Dali", "Cats", 4, buf.getvalue())
    table = pq.read_table(shard)
    table = table.append_column("extra", pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())))
    pq.write_table(table, shard)  # the datasets metadata kept, beside a column datasets has no type for
    assert pq.read_schema(shard).metadata[b"huggingface"] and read_answer_shards(tmp_path)[0].key == ("Dali", "Cats", 4)
    for metadata, message in ((None, r"no class names for 'style' and 'object' in the Parquet schema metadata "
                                     r"\(style is Value\('int64'\), object is Value\('int64'\)\)"),
                              ({"huggingface": "{not json"}, r"unreadable datasets features in the Parquet schema "
                                                             r"metadata \(Expecting property name")):
        pq.write_table(table.replace_schema_metadata(metadata), shard)
        with pytest.raises(UsageError, match=message) as err:
            read_answer_shards(tmp_path)
        assert str(err.value).startswith(str(shard)) and "\n" not in str(err.value)


def test_generated_answer_set_is_complete_recorded_and_resumes_in_the_same_batches(tiny_sd_pipeline: Path,
                                                                                   tmp_path: Path):
    from canvasdata.evaluate.generate import generate_answers

    kw = dict(styles=["Van_Gogh", "Seed_Images"], objects=["Cats", "Dogs"], seeds=[188], size=32, steps=2,
              progress=False)
    out = generate_answers(str(tiny_sd_pipeline), tmp_path / "a", batch_size=3, **kw)
    files = sorted(p.name for p in out.glob("*.jpg"))
    assert files == ["Seed_Images_Cats_seed188.jpg", "Seed_Images_Dogs_seed188.jpg", "Van_Gogh_Cats_seed188.jpg",
                     "Van_Gogh_Dogs_seed188.jpg"]
    assert Image.open(out / files[0]).size == (32, 32)
    settings = json.loads((out / "generation.json").read_text())
    assert settings["scheduler"] == "DDIMScheduler" and settings["eta"] == 0.0 and settings["guidance"] == 9.0
    assert settings["seeds"] == [188] and settings["example_prompt"] == "A Cats image in Van Gogh style."
    assert settings["protocol"] == "unlearncanvas" and settings["seed_images_words"] == "Seed Images"
    assert settings["batch_size"] == 3 and settings["ranks"] == 1
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}
    lost = {n: (out / n).read_bytes() for n in ("Van_Gogh_Dogs_seed188.jpg", "Seed_Images_Dogs_seed188.jpg")}
    for n in lost:  # one of the first batch (3 prompts), the second batch (1 prompt)
        (out / n).unlink()
    generate_answers(str(tiny_sd_pipeline), out, batch_size=3, **kw)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}
    assert set(after) == set(before)
    assert all(after[k] == v for k, v in before.items() if k not in lost)  # the rest of a redone batch: kept
    assert all((out / n).read_bytes() == b for n, b in lost.items())      # made again in their own batches
    with pytest.raises(ValueError, match="batch_size: 3 -> 1"):
        generate_answers(str(tiny_sd_pipeline), out, batch_size=1, **kw)
    with pytest.raises(ValueError, match="steps: 2 -> 3"):
        generate_answers(str(tiny_sd_pipeline), out, **{**kw, "steps": 3})
    with pytest.raises(ValueError, match="seed_images_words: 'Seed Images' -> 'Photo'"):
        generate_answers(str(tiny_sd_pipeline), out, protocol="canvasdata", **kw)
    legacy = {k: v for k, v in settings.items() if k not in ("protocol", "seed_images_words")}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "generation.json").write_text(json.dumps(legacy))  # written before the option existed
    with pytest.raises(ValueError, match="seed_images_words: 'Photo' -> 'Seed Images'"):
        generate_answers(str(tiny_sd_pipeline), tmp_path / "old", **kw)
    r = score_answers(out, "object:Cats", [ColourJudge()], workers=2)  # decoded in worker processes
    assert r.num_images == 4 and 0 <= r.ua <= 1 and r.generation["steps"] == 2 and "Note:" not in r.to_markdown()
    other = score_answers(out, "object:Cats", [ColourJudge()], protocol="canvasdata", workers=0)
    assert 'prompts name Seed_Images "Seed Images" (generation.json), not "Photo"' in other.to_markdown()


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    return tiny_judge(tmp_path_factory.mktemp("j") / "judge", {"style": "uc50", "object": "objects"})


def test_cli_evaluate_and_suite_with_real_judges(judge_dir: Path, tmp_path: Path, capsys):
    answers = write_answers(tmp_path / "a", ["Van_Gogh", "Monet", "Seed_Images"], ["Cats", "Dogs"], [188, 288])
    assert main(["evaluate", "score", "--answers", str(answers), "--forget", "object:Dogs", "--judges", str(judge_dir),
                 "--out", str(tmp_path / "rep"), "--workers", "0"]) == 0
    assert "UA" in capsys.readouterr().out and (tmp_path / "rep" / "report.json").exists()
    assert main(["evaluate", "score", "--answers", str(answers), "--forget", "object:Dogs", "--judges", str(judge_dir),
                 "--out", str(tmp_path / "rep2"), "--workers", "0", "--protocol", "canvasdata",
                 "--seed-images-in-style-metrics", "--judge-resize", "torchvision-bilinear"]) == 0
    printed = capsys.readouterr().out
    assert "protocol `canvasdata` with judge_resize=torchvision-bilinear, seed_images_in_style_metrics=True" in printed
    recorded = json.loads((tmp_path / "rep2" / "report.json").read_text())["protocol"]
    assert recorded == {"name": "canvasdata", **CANVASDATA.options(), "judge_resize": "torchvision-bilinear",
                        "seed_images_in_style_metrics": True,
                        "overridden": ["judge_resize", "seed_images_in_style_metrics"], "reproduces_original": False}
    runs = tmp_path / "runs"
    for method, req in (("ESD", "style_Van_Gogh"), ("ESD", "object_Cats"), ("FMN", "style_Monet")):
        (runs / method).mkdir(parents=True, exist_ok=True)
        (runs / method / req).symlink_to(answers, target_is_directory=True)
    from canvasdata.judges import load_judge

    suite = score_suite(runs, [load_judge(judge_dir)], workers=0, out=tmp_path / "suite", progress=False)
    assert [r["method"] for r in suite.rows] == ["ESD", "FMN"] and suite.rows[1]["object UA"] is None
    assert suite.rows[0]["style requests"] == 1 and suite.rows[0]["object requests"] == 1
    assert (tmp_path / "suite" / "suite.md").read_text().startswith("| method | style UA")
    assert (tmp_path / "suite" / "suite.csv").read_text().splitlines()[0].startswith("method,style UA")
    assert (tmp_path / "suite" / "ESD" / "object_Cats" / "report.json").exists()
    assert json.loads((tmp_path / "suite" / "suite.json").read_text())["protocol"]["name"] == "unlearncanvas"
    assert "- Protocol: `unlearncanvas`" in (tmp_path / "suite" / "suite.md").read_text()
    for _ in range(2):  # the default output, RUNS/suite, is not taken for a method on the next run
        assert main(["evaluate", "suite", str(runs), "--judges", str(judge_dir), "--workers", "0"]) == 0
        assert "| ESD |" in capsys.readouterr().out and (runs / "suite" / "suite.csv").exists()


def test_missing_or_unreadable_images_are_named(tmp_path: Path):
    Image.new("RGB", (16, 16)).save(tmp_path / "Van_Gogh_Cats_seed1.jpg")
    (tmp_path / "Van_Gogh_Dogs_seed1.jpg").write_bytes(b"not a jpeg")
    for workers in (0, 1):
        with pytest.raises(ValueError, match="Van_Gogh_Dogs_seed1.jpg: unreadable image"):
            score_answers(tmp_path, "style:Van_Gogh", [ColourJudge()], workers=workers)
    missing = [Answer("Van_Gogh", "Cats", 1, path=tmp_path / "gone.jpg")]
    with pytest.raises(ValueError, match="gone.jpg: missing answer image"):
        score_answers(missing, "style:Van_Gogh", [ColourJudge()], workers=0)
    good = [Answer("Van_Gogh", "Cats", 1, path=tmp_path / "Van_Gogh_Cats_seed1.jpg")]
    with pytest.raises(ValueError, match="did you mean Van_Gogh"):
        score_answers(good, "style:Van_Gog", [ColourJudge()], workers=0)
    with pytest.raises(ValueError, match="Palette_Knife"):
        score_answers([Answer("Palette_Knife", "Cats", 1, path=good[0].path)], "style:Monet", [ColourJudge()])
    with pytest.raises(FileNotFoundError, match="never downloads"):
        score_answers(good, "style:Van_Gogh", [ColourJudge()], reference=tmp_path, inception=tmp_path / "x.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    from canvasdata.evaluate.inception import load_inception

    with pytest.raises(ValueError, match="junk.pth: not a torch weights file"):
        load_inception(tmp_path / "junk.pth")


def test_fd_with_user_provided_fid_inception_weights(tmp_path: Path, monkeypatch):
    """pytorch-fid's file layout (state dict of the FID Inception, 1008 classes): randomly initialised
    here, loaded from the path the user gives, and its 2048-d features used for FD/KID. (The matrix
    square root of a 2048-d product takes a minute on two cores; FD itself is tested in test_metrics.)"""
    from canvasdata.evaluate import score
    from canvasdata.evaluate.inception import FID_WEIGHTS_NAME, fid_inception_v3

    def mean_distance(a, b):
        assert a.shape[1] == b.shape[1] == 2048
        return float(((a.mean(0) - b.mean(0)) ** 2).sum())

    monkeypatch.setattr(score, "frechet_distance", mean_distance)

    torch.save(fid_inception_v3().state_dict(), tmp_path / FID_WEIGHTS_NAME)
    answers = write_answers(tmp_path / "a", ["Van_Gogh", "Monet"], ["Cats"], [1, 2])
    ref = tmp_path / "ref"
    for k in (1, 2, 3):
        (ref / "Monet" / "Cats").mkdir(parents=True, exist_ok=True)
        colour_image("Monet", "Cats", k).save(ref / "Monet" / "Cats" / f"{k}.jpg")
    r = score_answers(answers, "style:Van_Gogh", [ColourJudge()], reference=ref, inception=tmp_path / FID_WEIGHTS_NAME,
                      workers=0, kid_subsets=2)
    assert r.feature_extractor.startswith("FID Inception v3") and np.isfinite(r.frechet_distance)
    assert "not the original benchmark's network" in r.feature_extractor
    assert (r.num_fd_images, r.num_reference_images) == (2, 3)


def test_concept_detector_and_paired_evaluation(tiny_sd_pipeline: Path, tmp_path: Path):
    """Train a binary detector on a concept set, generate images for the forget prompts and their
    concept-removed pairs with the tiny pipeline, and score forgetting rate and paired FD."""
    from canvasdata.dataset import build
    from canvasdata.evaluate.concepts import generate_prompt_images, score_concept
    from canvasdata.judges import load_judge, parse_judge_recipe
    from canvasdata.judges.train import train_judge
    from canvasdata.recipes import parse_recipe

    concept = parse_recipe({"kind": "concepts", "name": "cs", "seed": 2, "prompts_per_theme": 2, "images_per_prompt": 2,
                            "resolution": 48, "splits": {"train": "1", "test": "2"},
                            "concepts": [{"target": "style:Van_Gogh", "themes": ["Cats", "Towers"]}]}, "cs.toml")
    build(concept, tmp_path / "cs", progress=False, preview=False)
    det = parse_judge_recipe({"name": "det", "model": "vit_tiny_patch16_224", "task": "binary", "concept": "Van_Gogh",
                              "image_size": 32, "epochs": 2, "batch_size": 4, "workers": 0, "model_kwargs": KW},
                             "d.toml")
    hist = train_judge(det, tmp_path / "cs", tmp_path / "det", device="cpu", progress=False)
    assert hist["epochs"][-1]["test_accuracy"]["binary"] >= 0
    detector = load_judge(tmp_path / "det")
    test = load_split(tmp_path / "cs", "test", ["binary"], "Van_Gogh")
    again = evaluate_judge(detector, test, degradations=False, progress=False, workers=0)["tasks"]["binary"]["top1"]
    assert hist["epochs"][-1]["test_accuracy"]["binary"] == pytest.approx(again, abs=1e-9)
    assert detector.class_names["binary"] == ["negative", "positive"]
    prompts = tmp_path / "cs" / "prompts" / "Van_Gogh"
    forget = generate_prompt_images(str(tiny_sd_pipeline), prompts / "forget_prompts.json", tmp_path / "u", size=32,
                                    steps=2, progress=False)
    original = generate_prompt_images(str(tiny_sd_pipeline), prompts / "retain_prompts.json", tmp_path / "o", size=32,
                                      steps=2, progress=False)
    assert sorted(p.name for p in forget.glob("*.jpg")) == sorted(p.name for p in original.glob("*.jpg"))
    r = score_concept(forget, original, detector, workers=0, out=tmp_path / "rep")
    assert r["pairs"] == 4 * 2 and 0 <= r["forgetting_rate"] <= 1 and np.isfinite(r["frechet_distance"])
    next(original.glob("*.jpg")).unlink()
    with pytest.raises(ValueError, match="no pair"):
        score_concept(forget, original, detector, workers=0)


def test_generate_pipeline_flags_are_used_recorded_and_checked_on_resume(tiny_sd_pipeline: Path, tmp_path: Path,
                                                                         monkeypatch, capsys):
    diffusers = pytest.importorskip("diffusers")
    out = tmp_path / "euler"
    assert main(["evaluate", "generate", "--model", str(tiny_sd_pipeline), "--out", str(out), "--styles", "Van_Gogh",
                 "--objects", "Cats", "--seeds", "188", "--size", "16", "--steps", "2", "--device", "cpu",
                 "--dtype", "float32", "--scheduler", "EulerDiscreteScheduler", "--attention-slicing", "-q"]) == 0
    settings = json.loads((out / "generation.json").read_text())
    assert (settings["scheduler"], settings["dtype"]) == ("EulerDiscreteScheduler", "float32")
    assert settings["attention_slicing"] is True and settings["cpu_offload"] is False
    assert (out / "Van_Gogh_Cats_seed188.jpg").exists()
    assert main(["evaluate", "generate", "--model", str(tiny_sd_pipeline), "--out", str(out), "--styles", "Van_Gogh",
                 "--objects", "Cats", "--seeds", "188", "--size", "16", "--steps", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "scheduler: 'EulerDiscreteScheduler' -> 'DDIMScheduler'" in err and "attention_slicing: True -> False" in err
    assert main(["evaluate", "generate", "--model", str(tiny_sd_pipeline), "--out", str(tmp_path / "x"), "--scheduler",
                 "EulerDiscreteSchedular", "--device", "cpu"]) == 2
    assert "did you mean EulerDiscreteScheduler" in capsys.readouterr().err
    pipe = load_text2image(str(tiny_sd_pipeline), "cpu", PipelineOptions(dtype="bfloat16", scheduler="ddim"))
    assert pipe.dtype == torch.bfloat16 and type(pipe.scheduler).__name__ == "DDIMScheduler"

    def unmapped(*args, **kwargs):
        raise ValueError("AutoPipeline can't find a pipeline linked to TinyPipeline")

    monkeypatch.setattr(diffusers.AutoPipelineForText2Image, "from_pretrained", unmapped)
    pipe = load_text2image(str(tiny_sd_pipeline), "cpu")  # DiffusionPipeline loads what AutoPipeline does not map
    assert type(pipe).__name__ == "StableDiffusionPipeline" and pipe.dtype == torch.float32


def test_cpu_offload_without_accelerate_names_what_to_install(tiny_sd_pipeline: Path, tmp_path: Path, monkeypatch,
                                                              capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    assert main(["evaluate", "generate", "--model", str(tiny_sd_pipeline), "--out", str(tmp_path / "o"),
                 "--cpu-offload", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == "error: --cpu-offload needs accelerate: pip install accelerate\n"


def test_score_takes_one_split_of_a_build_and_never_writes_into_it(tmp_path: Path, capsys):
    data = tmp_path / "data"
    build(load_recipe("tiny-mini"), data, progress=False, preview=False)
    judge = tiny_judge(tmp_path / "judge", {"style": "uc60", "object": "objects"})
    args = ["evaluate", "score", "--answers", str(data), "--forget", "style:Van_Gogh", "--judges", str(judge),
            "--workers", "0", "-q"]
    assert main(args) == 2
    assert "give --out" in capsys.readouterr().err and not (data / "report").exists()
    assert main([*args, "--split", "test", "--out", str(tmp_path / "test")]) == 0
    assert main([*args, "--out", str(tmp_path / "all")]) == 0
    n_test, n_all = (json.loads((tmp_path / d / "report.json").read_text())["num_images"] for d in ("test", "all"))
    assert (n_test, n_all) == (9, 36)  # tiny-mini: 3 x 3 cells, index 4 of 4 is the test split
    assert main([*args, "--split", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "no images in split 'nope'" in capsys.readouterr().err
