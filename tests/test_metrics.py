"""Metric functions on hand-computed cases, with CRA over the retained images (the `canvasdata`
protocol) and over all images (the original's, see also test_protocol.py); Frechet distance against an
independent float64 reference (eigendecomposition of sqrt(S1) S2 sqrt(S1)); KID sanity."""

from __future__ import annotations

import numpy as np
import pytest

from canvasdata.metrics import aggregate, frechet_distance, kid, polynomial_mmd2, request_scores, residual_rate

# 3 styles (0, 1, 2 = Seed_Images) x 2 objects, 2 images a cell, style-major.
TS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
TO = np.array([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
SEED = 2


def scores(ps, po, domain, target, with_seed, include_forgotten=False):
    return request_scores(TS, TO, ps, po, domain, target, seed_style=SEED, seed_images_in_style_metrics=with_seed,
                          cra_includes_forgotten=include_forgotten)


@pytest.mark.parametrize("with_seed", [True, False])
def test_perfect_forgetting_without_collateral_damage(with_seed):
    ps = np.array([1, 1, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2])  # style 0 never recognised; the rest perfect
    s = scores(ps, TO, "style", 0, with_seed)
    assert (s.ua, s.residual_rate, s.ira, s.cra) == (1.0, 0.0, 1.0, 1.0)
    assert s.n_forget == 4 and s.n_cra == 8 and s.seed_images_in_style_metrics is with_seed
    assert set(s.per_class_accuracy) == ({1, 2} if with_seed else {1})


def test_no_forgetting():
    s = scores(TS, TO, "style", 0, False)
    assert (s.ua, s.residual_rate, s.ira, s.cra) == (0.0, 1.0, 1.0, 1.0)


def test_partial_forgetting_counts_only_the_target_prediction():
    ps = np.array([0, 1, 2, 0, 1, 1, 1, 1, 2, 2, 2, 2])  # target judged 0 twice in 4: a wrong non-target
    s = scores(ps, TO, "style", 0, True)               # guess is still forgetting
    assert s.residual_rate == 0.5 and s.ua == 0.5


def test_collateral_damage_of_a_style_request():
    ps = np.array([1, 1, 1, 1, 0, 0, 1, 1, 2, 2, 2, 2])  # style 1: 2 of 4 wrong
    po = np.array([0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1])  # objects of style-1 images: 2 of 4 wrong
    s = scores(ps, po, "style", 0, True)
    assert s.ua == 1.0
    assert s.ira == pytest.approx((0.5 + 1.0) / 2)  # macro: styles 1 (0.5) and Seed_Images (1.0)
    assert s.cra == pytest.approx(6 / 8)             # object judge over the 8 images not in style 0
    s = scores(ps, po, "style", 0, False)
    assert s.ira == pytest.approx(0.5)               # Seed_Images leaves the style mean ...
    assert s.cra == pytest.approx(6 / 8) and s.n_cra == 8  # ... but its objects still count
    assert s.cra_per_class == {0: 0.5, 1: 1.0}        # Cats of style 1 misjudged
    s = scores(ps, po, "style", 0, False, include_forgotten=True)
    assert s.cra == pytest.approx(10 / 12) and s.n_cra == 12  # + the 4 style-0 images, objects right
    assert s.ira == pytest.approx(0.5) and s.ua == 1.0     # IRA and UA do not depend on it


def test_collateral_damage_of_an_object_request():
    po = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1])  # object 0 recognised once in 6
    ps = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 0])  # Seed_Images photos of object 1 judged style 0
    s = scores(ps, po, "object", 0, True)
    assert s.residual_rate == pytest.approx(1 / 6) and s.ua == pytest.approx(5 / 6)
    assert s.ira == 1.0 and s.per_class_accuracy == {1: 1.0}
    assert s.cra == pytest.approx(4 / 6) and s.n_cra == 6  # style judge over the object-1 images
    s = scores(ps, po, "object", 0, False)
    assert s.ua == pytest.approx(5 / 6) and s.ira == 1.0   # UA and the object judge are unaffected
    assert s.cra == 1.0 and s.n_cra == 4                   # Seed_Images images leave the style CRA
    s = scores(ps, po, "object", 0, True, include_forgotten=True)
    assert s.cra == pytest.approx(10 / 12) and s.n_cra == 12  # all images: only 2 Seed photos misjudged
    s = scores(ps, po, "object", 0, False, include_forgotten=True)
    assert s.cra == 1.0 and s.n_cra == 8                   # styles 0 and 1, both objects


def test_aggregate_means_each_domain_separately():
    a = aggregate([scores(TS, TO, "object", 0, False), scores(TS, np.ones(12, int), "object", 1, False),
                   scores(np.ones(12, int), TO, "style", 0, False)])
    assert a["object"]["ua"] == pytest.approx(0.0) and a["object"]["requests"] == 2
    assert a["object"]["cra"] == 1.0 and a["object"]["ira"] == pytest.approx((1.0 + 0.0) / 2)
    assert a["style"] == {"ua": 1.0, "ira": 1.0, "cra": 1.0, "residual_rate": 0.0, "requests": 1}


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="no answer image"):
        residual_rate(np.array([1, 2]), np.array([1, 2]), 0)
    with pytest.raises(ValueError, match="differ in length"):
        request_scores(TS, TO[:3], TS, TO, "style", 0)
    with pytest.raises(ValueError, match="domain"):
        request_scores(TS, TO, TS, TO, "artist", 0)


def reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """FD from eigendecompositions: Tr (S1 S2)^1/2 = sum of sqrt(eig(sqrt(S1) S2 sqrt(S1)))."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr)


def test_frechet_distance_against_an_eigendecomposition_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 16))
    b = (rng.normal(0.3, 1.2, size=(250, 16)) @ rng.normal(size=(16, 16))) * 0.3
    assert frechet_distance(a, b) == pytest.approx(reference_fd(a, b), rel=1e-9)
    assert frechet_distance(a.astype(np.float32), b) == pytest.approx(reference_fd(a, b), rel=1e-5)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_singular_covariances_uses_the_regularised_root():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(10, 32))  # fewer images than dimensions: rank-9 covariances
    b = rng.normal(size=(12, 32)) * 2 + 1
    fd = frechet_distance(a, b)
    assert np.isfinite(fd) and fd == pytest.approx(reference_fd(a, b), rel=1e-3)
    low_rank = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 8))  # rank 2 in 8 dimensions, many images
    assert frechet_distance(low_rank, low_rank) == pytest.approx(0.0, abs=1e-3)


def test_frechet_distance_falls_back_to_eps_on_the_diagonals(monkeypatch):
    """A root that is not finite (as sqrtm returns for some near-singular products) is recomputed
    from the covariances with eps added to their diagonals."""
    from canvasdata.metrics import frechet

    calls, real_sqrtm = [], frechet.linalg.sqrtm

    def flaky_sqrtm(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(frechet.linalg, "sqrtm", flaky_sqrtm)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 6)), rng.normal(size=(60, 6)) + 0.5
    assert frechet.frechet_distance(a, b, eps=1e-6) == pytest.approx(reference_fd(a, b), rel=1e-5)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    assert len(calls) == 2 and np.allclose(calls[1], (s1 + 1e-6 * np.eye(6)) @ (s2 + 1e-6 * np.eye(6)))


def test_frechet_distance_errors():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.ones((5, 4)) + np.eye(5, 4), np.ones((5, 3)) + np.eye(5, 3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))


def test_polynomial_mmd2_matches_a_hand_computation():
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 0.0]])
    k = lambda p, q: (p @ q / 2 + 1) ** 3  # noqa: E731
    expected = (2 * k(x[0], x[1])) / 2 + (2 * k(y[0], y[1])) / 2 - 2 * np.mean([k(p, q) for p in x for q in y])
    assert polynomial_mmd2(x, y) == pytest.approx(expected)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    mean, std = kid(a, b, subsets=10, subset_size=200)
    assert abs(mean) < 0.05 and std >= 0
    assert kid(a, b + 1.0, subsets=10, subset_size=200)[0] > 0.3
    assert kid(a, b, subsets=3, subset_size=50, seed=7) == kid(a, b, subsets=3, subset_size=50, seed=7)
