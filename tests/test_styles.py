"""The style engine: every style runs and keeps shape and range; determinism; custom styles; errors."""

from __future__ import annotations

import pytest
import torch

from canvasdata.content import render
from canvasdata.styles import StyleError, get_style, list_styles, ops_paint, ops_pattern, paint, styles_from_toml
from canvasdata.styles.base import WIDE_BLUR_PX, gaussian, gaussian_exact
from canvasdata.taxonomy import UC60


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.cat([render("Horses", [1], 64)[0], render("Flowers", [2], 64)[0]])


def test_all_uc60_styles_are_registered():
    assert set(UC60) <= set(list_styles())


@pytest.mark.parametrize("style", UC60)
def test_every_style_keeps_shape_dtype_and_range(style, images):
    out = paint(style, images, [1, 2])
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1 and torch.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("style", UC60)
def test_every_style_runs_at_1024(style):
    x = render("Cats", [4], 1024)[0]
    out = paint(style, x, [9])
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_seed_images_is_identity(images):
    assert torch.equal(paint("Seed_Images", images, [1, 2]), images)


def test_determinism_and_batch_independence(images):
    for style in ("Van_Gogh", "Pointillism", "Winter", "Color_Fantasy"):
        a = paint(style, images, [5, 6])
        assert torch.equal(a, paint(style, images, [5, 6]))
        assert torch.equal(a[1:], paint(style, images[1:], [6]))
        assert not torch.equal(a, paint(style, images, [7, 8])), f"{style} ignores its seed"


def test_styles_are_distinct(images):
    """No two styles give (nearly) the same picture of the same content."""
    outs = {s: paint(s, images[:1], [3]).flatten() for s in UC60}
    names = list(outs)
    stack = torch.stack([outs[n] for n in names])
    d = torch.cdist(stack, stack) / stack.shape[1] ** 0.5
    d.fill_diagonal_(1.0)
    i, j = divmod(int(d.argmin()), len(names))
    assert d.min() > 0.03, f"{names[i]} and {names[j]} look the same"


def test_custom_style_from_toml(images):
    (spec,) = styles_from_toml({"Glitter": {"description": "sparkly", "steps": [
        {"op": "grade", "saturation": [1.2, 1.6]}, {"op": "sparkles", "count": 50}]}}, "my.toml")
    out = paint(spec, images, [1, 2])
    assert out.shape == images.shape and not torch.equal(out, images)
    assert spec.varies


@pytest.mark.parametrize("table, pattern", [
    ({"X": {"steps": [{"op": "kuwahra"}]}}, r"my\.toml: style 'X' step 1: field 'op': unknown operator 'kuwahra'; did you mean kuwahara"),
    ({"X": {"steps": [{"op": "posterize", "levels": 500}]}}, r"style 'X' step 1 \(posterize\): field 'levels': 500 is out of range: allowed 2..64"),
    ({"X": {"steps": [{"op": "blur", "radius": 1}]}}, r"field 'radius' is not a parameter of blur"),
    ({"X": {"steps": [{"op": "tint", "color": [1, 2]}]}}, r"field 'color': expected an RGB triple"),
    ({"X": {"steps": [{"op": "hatching", "layers": "many"}]}}, r"field 'layers': expected a float"),
    ({"X": {"colour": 1, "steps": []}}, r"field 'colour' is not a known field"),
])
def test_bad_custom_styles_name_the_style_and_field(table, pattern):
    with pytest.raises(StyleError, match=pattern):
        styles_from_toml(table, "my.toml")


def test_unknown_style_name_suggests():
    with pytest.raises(StyleError, match="did you mean Van_Gogh"):
        get_style("Van_Gog")


def test_recipe_custom_styles_build(tmp_path):
    from canvasdata.dataset import build
    from canvasdata.recipes import parse_recipe

    recipe = parse_recipe({"name": "custom", "seed": 1, "label_spaces": {"mine": ["Seed_Images", "Glitter"]},
                           "style_space": "mine", "styles": "all", "objects": ["Cats"], "images_per_cell": 1,
                           "resolution": 48, "custom_styles": {"Glitter": {"steps": [{"op": "sparkles"}]}}}, "c.toml")
    manifest = build(recipe, tmp_path / "out", progress=False, preview=False)
    assert manifest["counts"]["style"] == {"Glitter": 1, "Seed_Images": 1}


def test_wide_blurs_at_reduced_resolution_stay_within_a_few_levels_of_the_full_one(monkeypatch):
    x = render("Horses", [0], 512)[0]
    for sigma in (WIDE_BLUR_PX, 16, 40):
        assert (gaussian(x, sigma) - gaussian_exact(x, sigma)).abs().max() * 255 < 5, sigma
    assert torch.equal(gaussian(x, WIDE_BLUR_PX - 0.1), gaussian_exact(x, WIDE_BLUR_PX - 0.1))  # narrow: exact
    new = paint("Glowing_Sunset", x, [1])   # its glow is a wide blur
    monkeypatch.setattr(ops_paint, "gaussian", gaussian_exact)
    monkeypatch.setattr(ops_pattern, "gaussian", gaussian_exact)
    diff = ((new * 255).round() - (paint("Glowing_Sunset", x, [1]) * 255).round()).abs()
    assert 0 < diff.max() <= 3 and diff.mean() < 0.1
