"""The content engine: determinism, resolution independence, masks, twins, variety."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from canvasdata.content import UnknownObjectError, list_objects, render
from canvasdata.content.preview import content_sheet
from canvasdata.encode import to_uint8
from canvasdata.seeds import content_seed
from canvasdata.taxonomy import OBJECTS


def test_all_twenty_classes_are_registered():
    assert list_objects() == sorted(OBJECTS)


def test_same_seed_same_pixels_and_batch_independence():
    a, ma = render("Cats", [11, 12, 13], 64)
    b, mb = render("Cats", [13], 64)
    c, _ = render("Cats", [11, 12, 13], 64)
    assert torch.equal(a, c) and torch.equal(ma, render("Cats", [11, 12, 13], 64)[1])
    assert torch.equal(a[2], b[0]) and torch.equal(ma[2], mb[0])
    assert not torch.equal(a[0], a[1])


@pytest.mark.parametrize("obj", sorted(OBJECTS))
def test_every_class_renders_with_a_covering_mask(obj):
    img, mask = render(obj, [5, 6], 64)
    assert img.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)
    assert img.dtype == torch.float32 and img.min() >= 0 and img.max() <= 1
    coverage = mask.flatten(1).mean(1)
    assert (coverage > 0.01).all(), f"{obj}: the object covers too little of the image"
    assert (coverage < 0.95).all(), f"{obj}: the object covers the whole image"


@pytest.mark.slow
@pytest.mark.parametrize("obj", sorted(OBJECTS))
def test_every_class_renders_at_1024(obj):
    img, mask = render(obj, [3], 1024)
    assert img.shape == (1, 3, 1024, 1024) and mask.max() > 0.5


def test_resolution_independence():
    for obj in ("Horses", "Architectures", "Butterfly"):
        small, _ = render(obj, [21], 256)
        large, _ = render(obj, [21], 512)
        down = F.interpolate(large, size=(256, 256), mode="area")
        assert (small - down).abs().mean() < 0.03, obj


def test_without_the_object_only_the_object_changes():
    for obj in ("Cats", "Towers", "Fishes"):
        full, mask = render(obj, [8], 128)
        bare, bare_mask = render(obj, [8], 128, draw_object=False)
        assert bare_mask.max() == 0
        grown = F.max_pool2d(mask, 9, stride=1, padding=4)[0, 0] > 0.01
        diff = (full - bare).abs().amax(1)[0]
        assert diff[grown].mean() > 0.05
        assert diff[~grown].mean() < 0.01, f"{obj}: pixels away from the object changed"


def test_no_near_duplicates_among_64_seeds():
    for obj in ("Dogs", "Flowers"):
        imgs, _ = render(obj, list(range(64)), 32)
        flat = imgs.flatten(1)
        d = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
        d.fill_diagonal_(1.0)
        assert d.min() > 0.02, f"{obj}: two seeds gave nearly the same scene"


def test_unknown_object_suggests_the_closest():
    with pytest.raises(UnknownObjectError, match="did you mean Cats"):
        render("Catz", [1], 64)


def test_contact_sheet(tmp_path):
    sheet = content_sheet(objects=["Cats", "Dogs"], seeds=range(3), size=48)
    assert sheet.size[0] > 3 * 48 and sheet.size[1] >= 2 * 48
    # the tiles are the classes in order, row by row (an object's seeds across its row), as the build renders them
    arr = np.asarray(sheet)
    left, pad = 8 + 7 * len("Cats"), 2
    for r, obj in enumerate(["Cats", "Dogs"]):
        want = to_uint8(render(obj, [content_seed(0, obj, k + 1) for k in range(3)], 48)[0])
        for c in range(3):
            y, x = pad + r * (48 + pad), left + pad + c * (48 + pad)
            assert np.array_equal(arr[y:y + 48, x:x + 48], want[c]), (obj, c)
