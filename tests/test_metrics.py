"""Metric functions on hand-computed cases, and Frechet distance against an independent float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from canvasdata.metrics import aggregate, frechet_distance, kid, request_scores, residual_rate

# 3 styles (0, 1, 2 = Seed_Images) x 2 objects, 2 images each: style-major lists.
TS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
TO = np.array([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])


def test_perfect_forgetting_without_collateral_damage():
    ps = np.array([1, 1, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2])  # style 0 never recognised; others perfect
    s = request_scores(TS, TO, ps, TO, "style", 0, seed_style=2)
    assert s.ua == 1.0 and s.residual_rate == 0.0 and s.ira == 1.0 and s.cra == 1.0
    assert s.n_forget == 4 and s.n_retain == 8


def test_no_forgetting():
    s = request_scores(TS, TO, TS, TO, "style", 0, seed_style=2)
    assert s.ua == 0.0 and s.ira == 1.0 and s.cra == 1.0


def test_collateral_damage_lowers_ira_and_cra():
    ps = np.array([1, 1, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2])  # style 1 half wrong
    po = np.array([0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1])  # objects of style-1 images half wrong
    s = request_scores(TS, TO, ps, po, "style", 0, seed_style=2)
    assert s.ua == 1.0
    assert s.ira == pytest.approx((0.5 + 1.0) / 2)           # mean of per-class accuracies (styles 1 and 2)
    assert s.cra == pytest.approx(6 / 8)                       # object judge over the 8 non-target images
    without_seed = request_scores(TS, TO, ps, po, "style", 0, seed_style=2, include_seed_images=False)
    assert without_seed.ira == pytest.approx(0.5) and without_seed.cra == pytest.approx(2 / 4)


def test_object_request_and_aggregate():
    po = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1])      # object 0 mostly forgotten
    s = request_scores(TS, TO, TS, po, "object", 0, seed_style=2)
    assert s.residual_rate == pytest.approx(1 / 6) and s.ua == pytest.approx(5 / 6)
    assert s.ira == 1.0 and s.cra == 1.0
    a = aggregate([s, request_scores(TS, TO, TS, TO, "object", 1, seed_style=2)])
    assert a["object"]["ua"] == pytest.approx((5 / 6 + 0) / 2) and a["object"]["requests"] == 2


def test_residual_rate_needs_target_images():
    with pytest.raises(ValueError, match="no answer image"):
        residual_rate(np.array([1, 2]), np.array([1, 2]), 0)


def test_frechet_distance_against_a_float64_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = rng.normal(0.3, 1.2, size=(250, 16)) @ rng.normal(size=(16, 16)) * 0.3
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    r1 = linalg.sqrtm(s1).real
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(r1 @ s2 @ r1).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_singular_covariances_is_finite():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(10, 32))  # fewer samples than dimensions: singular covariance
    b = rng.normal(size=(10, 32)) + 1
    assert np.isfinite(frechet_distance(a, b)) and frechet_distance(a, b) > 0


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    assert abs(kid(a, b, subsets=10, subset_size=200)[0]) < 0.05
    assert kid(a, b + 1.0, subsets=10, subset_size=200)[0] > 0.3
