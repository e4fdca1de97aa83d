"""The judges' degradation augmentation: recipe fields validated like the others, a transform that is
deterministic under the trainer's per-sample seeding and really degrades, and no change at all when off."""

from __future__ import annotations

import io

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image
from torchvision.transforms import v2

from canvasdata.data import (
    DEGRADE_KINDS,
    ImageLabels,
    LabelledImages,
    RandomDegrade,
    blur_px,
    down_up,
    jpeg_reencode,
    train_transform,
)
from canvasdata.fields import RecipeError
from canvasdata.judges import load_judge_recipe, parse_judge_recipe
from canvasdata.judges.data import SeededSamples

BASE = {"name": "d", "model": "resnet18", "task": "both", "image_size": 32}
# The fields a judge recipe had before the degradation fields: a recipe without them keeps this table.
OLD_FIELDS = {"name", "model", "task", "image_size", "mean", "std", "pretrained", "freeze", "model_kwargs", "concept",
              "epochs", "batch_size", "lr", "weight_decay", "optimizer", "scheduler", "min_lr", "warmup_epochs",
              "ema_decay", "label_smoothing", "crop_scale", "hflip", "workers", "seed"}


def image(seed: int = 0, size: int = 64) -> torch.Tensor:
    """A uint8 test image with edges and fine texture: a checkerboard of 4 px cells plus noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    board = (((yy // 4) + (xx // 4)) % 2).float() * 160 + 40
    noise = torch.randint(-30, 31, (3, size, size), generator=g).float()
    return (board + noise).clamp(0, 255).to(torch.uint8)


def high_frequency(x: torch.Tensor) -> float:
    """Mean squared Laplacian response (the energy of the finest detail)."""
    f = x.float()
    lap = 4 * f[..., 1:-1, 1:-1] - f[..., :-2, 1:-1] - f[..., 2:, 1:-1] - f[..., 1:-1, :-2] - f[..., 1:-1, 2:]
    return float((lap ** 2).mean())


@pytest.mark.parametrize(("field", "value", "message"), [
    ("degrade_prob", 1.5, r"1\.5 is out of range: allowed \[0, 1\]"),
    ("degrade_prob", -0.1, r"out of range: allowed \[0, 1\]"),
    ("degrade_prob", "half", "expected float or int"),
    ("degrade_blur", [1.5, 0.5], r"allowed 0\.1 <= low <= high <= 10\.0"),
    ("degrade_blur", [0.0, 1.0], "out of range"),
    ("degrade_blur", [1.0], r"expected two numbers \[low, high\]"),
    ("degrade_scale", [0.5, 2.0], r"allowed 1\.0 <= low <= high"),
    ("degrade_scale", "2x", "expected list or tuple"),
    ("degrade_jpeg", [0, 50], "allowed 1 <= low <= high <= 100"),
    ("degrade_jpeg", [30, 101], "out of range"),
    ("degrade_jpeg", [30.5, 70], "expected two integers"),
    ("degrade_jpeg", [True, 70], "expected two integers"),
])
def test_degrade_fields_are_validated_naming_file_and_field(field, value, message):
    with pytest.raises(RecipeError, match=rf"^d\.toml: field '{field}': .*{message}"):
        parse_judge_recipe({**BASE, field: value}, "d.toml")


def test_degrade_fields_default_off_and_keep_the_old_recipe_table():
    r = parse_judge_recipe(BASE, "d.toml")
    assert r.degrade_prob == 0.0
    assert set(r.to_dict()) == OLD_FIELDS, "a recipe without degradation keeps its identity hash and history"
    assert set(load_judge_recipe("vit-base").to_dict()) == OLD_FIELDS
    on = parse_judge_recipe({**BASE, "degrade_prob": 0.5, "degrade_jpeg": [40, 60]}, "d.toml")
    d = on.to_dict()
    assert d["degrade_prob"] == 0.5 and d["degrade_jpeg"] == [40, 60] and d["degrade_blur"] == [0.5, 1.5]
    again = parse_judge_recipe({**d, "freeze": list(on.freeze), "mean": list(on.mean), "std": list(on.std),
                                "model_kwargs": on.kwargs}, "d.toml")
    assert again == on, "the command-line override path (recipe table -> parse) round-trips"


@pytest.mark.parametrize("name", ["effnet-lite0-tiny", "effnet-lite0-cpu"])
def test_shipped_cpu_recipes_turn_degradation_on(name):
    r = load_judge_recipe(name)
    assert 0 < r.degrade_prob <= 1 and r.task == "both"


def test_degradations_lower_fine_detail_and_keep_shape_and_dtype():
    x = image()
    before = high_frequency(x)
    for y in (blur_px(x, 1.0), down_up(x, 2.0)):
        assert y.shape == x.shape and y.dtype == torch.uint8
        assert high_frequency(y) < 0.5 * before
    q30, q70 = jpeg_reencode(x, 30), jpeg_reencode(x, 70)
    assert q30.shape == x.shape and q30.dtype == torch.uint8
    err30, err70 = ((q - x.float()).abs().mean() for q in (q30.float(), q70.float()))
    assert err70 > 1 and err30 > err70, "lower quality, larger loss"
    assert high_frequency(blur_px(x, 1.5)) < high_frequency(blur_px(x, 0.5))
    assert high_frequency(down_up(x, 3.0)) < high_frequency(down_up(x, 1.5))
    f = x.float() / 255
    assert jpeg_reencode(f, 50).dtype == torch.float32 and blur_px(f, 1.0).dtype == torch.float32


def test_random_degrade_is_seeded_by_torch_and_draws_every_kind():
    x, t = image(), RandomDegrade(1.0)
    kinds = set()
    for s in range(40):
        torch.manual_seed(s)
        a = t(x)
        torch.manual_seed(s)
        assert torch.equal(a, t(x)), "a fixed seed gives the same degradation"
        torch.manual_seed(s)
        p = t.make_params([x])
        kinds.add(p["kind"])
        lo, hi = {"blur": t.blur, "downscale": t.scale, "jpeg": t.jpeg}[p["kind"]]
        assert lo <= p["value"] <= hi
        assert not torch.equal(a, x)
    assert kinds == set(DEGRADE_KINDS)
    half = RandomDegrade(0.5)
    torch.manual_seed(0)
    untouched = sum(half.make_params([x])["kind"] is None for _ in range(400))
    assert 150 < untouched < 250
    torch.manual_seed(0)
    assert torch.equal(RandomDegrade(0.0)(x), x)
    with pytest.raises(ValueError, match="out of range"):
        RandomDegrade(2.0)


def test_default_leaves_train_transform_as_before():
    """degrade_prob 0 builds exactly the old pipeline: same steps, same random draws, same pixels."""
    x = image(1)
    old = v2.Compose([v2.RandomResizedCrop(32, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
                      v2.RandomHorizontalFlip()])
    new = train_transform(32, 0.6, True)
    assert [type(s) for s in new.transforms] == [type(s) for s in old.transforms]
    assert [type(s) for s in train_transform(32, 0.6, True, 0.0).transforms] == [type(s) for s in old.transforms]
    for s in range(5):
        torch.manual_seed(s)
        a, after_old = old(x), torch.get_rng_state()
        torch.manual_seed(s)
        b, after_new = new(x), torch.get_rng_state()
        assert torch.equal(a, b) and torch.equal(after_old, after_new), "same pixels, same random draws"
    on = train_transform(32, 0.6, True, 0.5)
    assert isinstance(on.transforms[0], RandomDegrade) and on.transforms[0].p == 0.5


def _jpeg_bytes(x: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_seeded_samples_give_the_same_degraded_sample_every_time():
    """The trainer's per-sample seeding (seed, epoch, index) fixes the degradation as well: any order,
    any worker, any resume; another epoch draws anew; the process's random state is left alone."""
    images = [_jpeg_bytes(image(i)) for i in range(4)]
    data = LabelledImages(images, {"style": np.zeros(4, dtype=np.int64)}, {"style": ["a"]}, {"style": "custom"})
    samples = SeededSamples(ImageLabels(data, 32, train_transform(32, 0.8, True, 1.0)), seed=5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = [samples[(0, i)][0] for i in range(4)]
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, samples[(0, i)][0]) for i, a in reversed(list(enumerate(first))))
    assert not all(torch.equal(a, samples[(1, i)][0]) for i, a in enumerate(first))
    other = SeededSamples(ImageLabels(data, 32, train_transform(32, 0.8, True, 1.0)), seed=6)
    assert not all(torch.equal(a, other[(0, i)][0]) for i, a in enumerate(first))


@pytest.mark.slow
def test_training_with_degradation_resumes_bit_identical(tmp_path):
    """With every image degraded, an interrupted run resumed ends where an uninterrupted one does: the
    degradation draws from the per-sample seed, not the process state."""
    from canvasdata.dataset import build
    from canvasdata.judges.train import train_judge
    from canvasdata.recipes import parse_recipe

    data = tmp_path / "data"
    build(parse_recipe({"name": "deg", "seed": 5, "styles": ["Seed_Images", "Pop_Art"], "objects": ["Cats", "Towers"],
                        "images_per_cell": 4, "resolution": 48, "splits": {"train": "1-3", "test": "4"},
                        "content": {"pairing": "unpaired"}, "output": {"shard_rows": 20, "batch_size": 4}}, "deg.toml"),
          data, progress=False, preview=False)
    table = {"name": "deg", "model": "vit_tiny_patch16_224", "task": "both", "image_size": 32, "epochs": 2,
             "batch_size": 4, "lr": 2e-3, "warmup_epochs": 0.5, "crop_scale": 0.5, "workers": 0, "degrade_prob": 1.0,
             "model_kwargs": {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8, "drop_path_rate": 0.1}}
    recipe = parse_judge_recipe(table, "deg.toml")
    full = train_judge(recipe, data, tmp_path / "full", device="cpu", progress=False)
    train_judge(recipe, data, tmp_path / "cut", device="cpu", progress=False, max_steps=4)
    again = train_judge(recipe, data, tmp_path / "cut", device="cpu", progress=False)
    assert again["resumed_at"] == [4] and again["loss"] == full["loss"] and len(full["loss"]) == 6
    assert full["recipe"]["degrade_prob"] == 1.0
    a, b = (safetensors.torch.load_file(str(tmp_path / d / "model.safetensors")) for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
