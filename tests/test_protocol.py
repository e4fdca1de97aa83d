"""The evaluation protocols: each choice of the `unlearncanvas` protocol pinned to the original
benchmark code's arithmetic on small hand-made cases (UA/IRA/CRA, judge resize, Inception input
pipeline, answer-set prompts), reports that say which protocol ran, the export's metadata.jsonl, and
importing original judge checkpoints that carry numpy scalars and an argparse.Namespace."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import datasets
import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from test_build import tiny

from canvasdata.cli import main
from canvasdata.dataset import build
from canvasdata.evaluate import score_answers
from canvasdata.evaluate.answers import Answer
from canvasdata.evaluate.inception import load_inception
from canvasdata.evaluate.preprocess import JudgeInputs, original_load
from canvasdata.evaluate.protocol import CANVASDATA, PROTOCOLS, UNLEARNCANVAS, get_protocol
from canvasdata.evaluate.score import inception_features, run_judges
from canvasdata.judges import JudgeError, import_unlearncanvas, load_judge
from canvasdata.metrics import request_scores
from canvasdata.taxonomy import OBJECTS, UC50, prompt

# A hand-made grid: styles 0 (Van_Gogh), 1 (Monet), 2 (Seed_Images) x objects 0 (Cats), 1 (Dogs) x 2
# seeds, style-major as the original loops; the predictions are chosen so that every choice shows.
TS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
TO = np.array([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
PS = np.array([0, 1, 1, 1, 1, 1, 1, 0, 2, 2, 2, 2])  # Van_Gogh still seen once in 4; Monet 3 of 4; Seed 4 of 4
PO = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0])  # Van_Gogh's Cats lost; one Seed_Images Dogs missed
SEED = 2


def original_accuracy(true: np.ndarray, pred: np.ndarray, n_classes: int) -> list[float]:
    """The original accuracy.py's accumulation: acc[c] += (pred == c) / (images per class) over the grid."""
    per_class = len(true) // n_classes
    acc = [0.0] * n_classes
    for t, p in zip(true, pred, strict=True):
        acc[t] += float(p == t) / per_class
    return acc


def test_original_arithmetic_of_a_style_request():
    """Forget style 0. By hand: UA = 1 - 1/4; IRA = Monet's 3/4 (Seed_Images left out, the paper's
    'other 49 styles'); CRA = the object judge over all 12 images, Van_Gogh's included: Cats 4/6,
    Dogs 5/6, mean 9/12. Leaving out the forgotten style's images (canvasdata) gives 7/8."""
    style_acc, object_acc = original_accuracy(TS, PS, 3), original_accuracy(TO, PO, 2)
    s = request_scores(TS, TO, PS, PO, "style", 0, seed_style=SEED)
    assert (s.ua, s.ira, s.cra, s.n_cra) == (pytest.approx(0.75), pytest.approx(0.75), pytest.approx(0.75), 12)
    assert s.ua == pytest.approx(1 - style_acc[0], abs=1e-4)
    assert s.ira == pytest.approx(style_acc[1], abs=1e-4)
    assert s.cra == pytest.approx(np.mean(object_acc), abs=1e-4)
    assert s.cra_per_class == {0: pytest.approx(4 / 6), 1: pytest.approx(5 / 6)}
    clean = request_scores(TS, TO, PS, PO, "style", 0, seed_style=SEED, cra_includes_forgotten=False)
    assert (clean.ua, clean.ira, clean.cra, clean.n_cra) == (s.ua, s.ira, pytest.approx(7 / 8), 8)
    with_seed = request_scores(TS, TO, PS, PO, "style", 0, seed_style=SEED, seed_images_in_style_metrics=True)
    assert with_seed.ira == pytest.approx((3 / 4 + 1) / 2) and with_seed.cra == s.cra


def test_original_arithmetic_of_an_object_request():
    """Forget object 1 (Dogs). By hand: UA = 1 - 5/6; IRA = Cats' 4/6; CRA = the style judge over
    every image of styles 0 and 1, Dogs included: (1/4 + 3/4) / 2; with Seed_Images counted, its 4/4
    joins the mean (8/12). Without the Dogs images (canvasdata): 3/4, or 5/6 with Seed_Images."""
    style_acc, object_acc = original_accuracy(TS, PS, 3), original_accuracy(TO, PO, 2)
    s = request_scores(TS, TO, PS, PO, "object", 1, seed_style=SEED)
    assert (s.ua, s.ira, s.cra, s.n_cra) == (pytest.approx(1 / 6), pytest.approx(4 / 6), pytest.approx(0.5), 8)
    assert s.ua == pytest.approx(1 - object_acc[1], abs=1e-4)
    assert s.ira == pytest.approx(object_acc[0], abs=1e-4)
    assert s.cra == pytest.approx(np.mean(style_acc[:2]), abs=1e-4)
    with_seed = request_scores(TS, TO, PS, PO, "object", 1, seed_style=SEED, seed_images_in_style_metrics=True)
    assert with_seed.cra == pytest.approx(np.mean(style_acc), abs=1e-4) == pytest.approx(8 / 12)
    clean = request_scores(TS, TO, PS, PO, "object", 1, seed_style=SEED, cra_includes_forgotten=False)
    assert (clean.cra, clean.n_cra) == (pytest.approx(3 / 4), 4)
    clean_seed = request_scores(TS, TO, PS, PO, "object", 1, seed_style=SEED, cra_includes_forgotten=False,
                                seed_images_in_style_metrics=True)
    assert clean_seed.cra == pytest.approx(5 / 6)


def test_protocols_and_overrides():
    assert get_protocol() == UNLEARNCANVAS and UNLEARNCANVAS.reproduces_original
    assert UNLEARNCANVAS.options() == {"cra_includes_forgotten": True, "judge_resize": "torchvision-bilinear",
                                       "inception_pipeline": "original", "seed_images_words": "Seed Images",
                                       "seed_images_in_style_metrics": False}
    assert CANVASDATA.options() == {"cra_includes_forgotten": False, "judge_resize": "pil-bicubic-draft",
                                    "inception_pipeline": "canvasdata", "seed_images_words": "Photo",
                                    "seed_images_in_style_metrics": False}
    assert not CANVASDATA.reproduces_original and set(PROTOCOLS) == {"unlearncanvas", "canvasdata"}
    mixed = get_protocol("unlearncanvas", judge_resize="pil-bicubic-draft", cra_includes_forgotten=None)
    assert mixed.overridden == {"judge_resize": "pil-bicubic-draft"} and not mixed.reproduces_original
    assert mixed.describe() == ("`unlearncanvas` with judge_resize=pil-bicubic-draft: differs from the original "
                                "UnlearnCanvas code in judge_resize")
    back = get_protocol("canvasdata", **UNLEARNCANVAS.options())
    assert back.reproduces_original and back.to_dict()["name"] == "canvasdata"
    with pytest.raises(ValueError, match="unknown protocol 'clean'"):
        get_protocol("clean")
    with pytest.raises(ValueError, match="judge_resize='nearest'"):
        get_protocol(judge_resize="nearest")


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


STEP = np.tile(np.array([0, 0, 255, 255], np.uint8)[None, :, None], (4, 1, 3))  # 4 x 4, a vertical edge


def test_judge_resize_paths_on_a_tiny_image():
    """4 px -> 2 px across an edge 0 0 255 255. PIL bilinear (torchvision Resize) weighs pixels 0, 1, 2
    by 3/7, 3/7, 1/7: 255/7 = 36.4 -> 36, and 219 on the other side. PIL bicubic (a = -0.5) over the
    four pixels: 255 * (0.2265625 - 0.0703125) / 1.890625 = 21.07 -> 21, and 234. So the normalised
    inputs (mean = std = 0.5) differ by 2 * 15 / 255."""
    a = Answer("Monet", "Cats", 1, data=png(STEP))
    bilinear = JudgeInputs([a], [2], "torchvision-bilinear")[0][2]
    bicubic = JudgeInputs([a], [2], "pil-bicubic-draft")[0][2]
    assert bilinear.dtype == torch.uint8 and bilinear.tolist() == [[[36, 219], [36, 219]]] * 3
    assert bicubic.tolist() == [[[21, 234], [21, 234]]] * 3
    direct = torchvision.transforms.Resize((2, 2))(Image.fromarray(STEP))
    assert np.array_equal(np.asarray(direct).transpose(2, 0, 1), bilinear.numpy())
    diff = ((bilinear.float() / 255 - 0.5) / 0.5 - (bicubic.float() / 255 - 0.5) / 0.5).abs().max().item()
    assert diff == pytest.approx(2 * 15 / 255)


class RecordingJudge:
    """Judges every image as Monet / Cats and keeps what it was given."""

    tasks = ["style", "object"]
    class_names = {"style": list(UC50), "object": list(OBJECTS)}
    image_size = 2

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.seen.append(x)
        n = len(x)
        return {"style": F.one_hot(torch.full((n,), UC50.index("Monet")), 51).float(),
                "object": F.one_hot(torch.full((n,), OBJECTS.index("Cats")), 20).float()}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_the_protocol_decides_what_the_judges_see(tmp_path: Path):
    answers = [Answer("Monet", "Cats", 1, data=png(STEP)), Answer("Van_Gogh", "Cats", 1, data=png(STEP))]
    seen = {}
    for proto in (UNLEARNCANVAS, CANVASDATA):
        judge = RecordingJudge()
        r = score_answers(answers, "style:Van_Gogh", [judge], protocol=proto, workers=0, out=tmp_path / proto.name)
        seen[proto.name] = (judge.seen[0][0, 0, 0] * 255).round().tolist()
        saved = json.loads((tmp_path / proto.name / "report.json").read_text())
        assert saved["protocol"] == {"name": proto.name, **proto.options(), "overridden": [],
                                     "reproduces_original": proto is UNLEARNCANVAS}
        assert r.cra == 1.0 and r.n_cra_images == (2 if proto.cra_includes_forgotten else 1)
        md = (tmp_path / proto.name / "report.md").read_text()
        assert f"- Protocol: `{proto.name}`" in md and f"judge_resize = {proto.judge_resize}" in md
        assert ("the original UnlearnCanvas code's choices" in md) is (proto is UNLEARNCANVAS)
    assert seen == {"unlearncanvas": [36, 219], "canvasdata": [21, 234]}
    judge = RecordingJudge()
    run_judges([judge], answers, workers=0)  # the library's default is the original's resize
    assert (judge.seen[0][0, 0, 0] * 255).round().tolist() == [36, 219]


def test_inception_features_follow_the_original_fid_pipeline(tmp_path: Path):
    """A random-weights torchvision Inception v3 with transform_input=True, as `inception_v3(
    pretrained=True)` builds it in the original fid.py. Its features through canvasdata equal a direct
    transcription of fid.py: read RGB, resize to 512 (8-bit), /255, resize to 299 (bilinear), x*2-1,
    Mixed_7c output average-pooled (8-bit: halves up, as OpenCV)."""
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                          transform_input=True).eval()
    torch.save(net.state_dict(), tmp_path / "inception_v3_google.pth")
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate((512, 256)):  # the 256 px image takes the 512 px step
        paths.append(tmp_path / f"Monet_Cats_seed{i}.png")
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(paths[-1])

    mixed_7c = {}
    net.Mixed_7c.register_forward_hook(lambda m, i, o: mixed_7c.update(out=o))
    batch = []
    for p in paths:
        x = torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1).float()[None]
        if x.shape[-2:] != (512, 512):
            x = F.interpolate(x, size=(512, 512), mode="bilinear", align_corners=False)
            x = torch.floor(x + 0.5).clamp(0, 255)  # OpenCV's uint8 resize rounds halves up
        batch.append(F.interpolate(x / 255, size=(299, 299), mode="bilinear", align_corners=False))
    with torch.no_grad():
        net(torch.cat(batch) * 2 - 1)
    expected = F.adaptive_avg_pool2d(mixed_7c["out"], (1, 1)).view(len(paths), 2048).numpy()

    answers = [Answer("Monet", "Cats", i, path=p) for i, p in enumerate(paths)]
    ours = load_inception(tmp_path / "inception_v3_google.pth", pipeline="original")
    assert ours.net.transform_input and "the original UnlearnCanvas fid.py features" in ours.description
    got = inception_features(answers, ours, batch_size=2, workers=0)
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    clean = load_inception(tmp_path / "inception_v3_google.pth", pipeline="canvasdata")
    assert not clean.net.transform_input and "not the original" in clean.description
    other = inception_features(answers, clean, batch_size=2, workers=0)
    assert np.abs(other - expected).max() > 100 * np.abs(got - expected).max()


def test_answer_set_prompts_name_seed_images_as_the_protocol_says():
    assert prompt("Seed_Images", "Cats", seed_words=UNLEARNCANVAS.seed_images_words) == \
        "A Cats image in Seed Images style."
    assert prompt("Seed_Images", "Cats", seed_words=CANVASDATA.seed_images_words) == "A Cats image in Photo style."
    assert prompt("Seed_Images", "Cats") == "A Cats image in Photo style."  # the dataset's captions


def test_export_writes_imagefolder_metadata_for_a_subset(tmp_path: Path, monkeypatch):
    """metadata.jsonl at the export root, `file_name` relative to it: what `load_dataset("imagefolder",
    data_dir=...)` (diffusers' --train_data_dir) reads as the `text` column."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = tiny(name="subset", styles=["Seed_Images", "Van_Gogh"], objects=["Cats"], images_per_cell=2,
                  resolution=32, splits={"train": "1", "test": "2"})
    build(recipe, tmp_path / "b", progress=False, preview=False)
    assert main(["export", str(tmp_path / "b"), "--layout", "unlearncanvas", "--out", str(tmp_path / "uc"),
                 "--quiet"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "uc" / "metadata.jsonl").read_text().splitlines()]
    assert sorted((d["file_name"], d["text"]) for d in lines) == [
        ("Seed_Images/Cats/1.jpg", "A Cats image in Photo style."),
        ("Seed_Images/Cats/2.jpg", "A Cats image in Photo style."),
        ("Van_Gogh/Cats/1.jpg", "A Cats image in Van Gogh style."),
        ("Van_Gogh/Cats/2.jpg", "A Cats image in Van Gogh style.")]
    ds = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "uc"), split="train")
    assert sorted(ds["text"]) == sorted(d["text"] for d in lines) and ds[0]["image"].size == (32, 32)


TINY_VIT = {"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}


class Payload:
    """A class no checkpoint may bring along."""

    def __init__(self) -> None:
        self.x = 1


def tiny_object_judge() -> torch.nn.Module:
    return timm.create_model("vit_tiny_patch16_224", num_classes=20, img_size=32, **TINY_VIT)


def as_numpy1_pickle(path: Path) -> None:
    """Rewrite a checkpoint's pickle so its numpy scalars name `numpy.core.multiarray.scalar`, as
    checkpoints saved with numpy 1 (the original's) do."""
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    pkl = next(n for n in entries if n.endswith("/data.pkl"))
    assert b"numpy._core.multiarray" in entries[pkl]
    entries[pkl] = entries[pkl].replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)


def test_import_accepts_the_original_checkpoints_extras_only(tmp_path: Path):
    src = tiny_object_judge().eval()
    extras = {"best_acc": np.float64(0.93), "epoch": np.int64(7),
              "args": argparse.Namespace(lr=1e-4, theme="Van_Gogh", seeds=[188, 288])}
    torch.save({"model_state_dict": src.state_dict(), **extras}, tmp_path / "cls.pth")
    with pytest.raises(Exception, match="weights_only"):  # torch alone refuses it
        torch.load(tmp_path / "cls.pth", weights_only=True)
    as_numpy1_pickle(tmp_path / "cls.pth")
    out = import_unlearncanvas(tmp_path / "cls.pth", "objects", tmp_path / "judge", arch="vit_tiny_patch16_224",
                               image_size=32, model_kwargs=TINY_VIT)
    judge = load_judge(out)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(judge.logits(x)["object"], src((x - 0.5) / 0.5), atol=1e-5)

    torch.save({"model_state_dict": src.state_dict(), "hook": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(JudgeError, match=r"evil.pth: holds \S*Payload, which canvasdata does not load"):
        import_unlearncanvas(tmp_path / "evil.pth", "objects", tmp_path / "j2", arch="vit_tiny_patch16_224",
                             image_size=32, model_kwargs=TINY_VIT)
    assert not (tmp_path / "j2").exists()
    assert main(["judge", "import", str(tmp_path / "evil.pth"), "--space", "objects", "--out",
                 str(tmp_path / "j3"), "--arch", "vit_tiny_patch16_224", "--image-size", "32",
                 "--model-kwargs", json.dumps(TINY_VIT)]) == 2


def test_original_load_rounds_halves_up_as_opencv() -> None:
    """1024 -> 512 px: each output is the mean of a 2x2 block; columns alternating 0 and 1 average to 0.5,
    which OpenCV's uint8 resize gives as 1 (torch's round would give 0); 2.5 gives 3; a 512 px image is
    left as it is."""
    x = torch.zeros(1, 3, 1024, 1024)
    x[..., 1::2] = 1.0
    x[:, 1, :, 1::2], x[:, 1, :, ::2] = 3.0, 2.0
    y = original_load(x)
    assert y.shape == (1, 3, 512, 512)
    assert torch.equal(y[:, 0], torch.ones(1, 512, 512)) and torch.equal(y[:, 1], torch.full((1, 512, 512), 3.0))
    same = torch.randint(0, 256, (1, 3, 512, 512)).float()
    assert original_load(same) is same
