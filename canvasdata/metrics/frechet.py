"""Frechet distance between two feature sets (rows = images), computed in float64.

FD = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), the Gaussian-fit distance behind FID. The
matrix square root comes from `scipy.linalg.sqrtm`; when the product is near-singular (fewer images
than feature dimensions, duplicated features) the root is inaccurate or not finite, so `eps` is
added to both covariance diagonals and the root recomputed, as pytorch-fid does. Rounding leaves a
tiny imaginary part on the root: it is dropped after checking that it is negligible.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

SQRTM_TOLERANCE = 1e-5   # relative Frobenius residual ||X X - A|| / ||A|| accepted from sqrtm
IMAGINARY_TOLERANCE = 1e-3


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a [N, D] feature array, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors as rows, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("features contain NaN or infinite values")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrtm(a: np.ndarray) -> tuple[np.ndarray, float]:
    """sqrtm(a) and its relative residual (inf when the root is not finite)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(a)
    if not np.isfinite(root).all():
        return root, float("inf")
    scale = max(float(np.linalg.norm(a)), np.finfo(np.float64).tiny)
    return root, float(np.linalg.norm(root @ root - a) / scale)


def frechet_from_statistics(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray,
                            eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, s1) and N(mu2, s2); see the module docstring for the
    near-singular fallback (`eps` on the covariance diagonals) and the imaginary-part check."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, np.float64)), np.atleast_2d(np.asarray(s2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"feature dimensions differ: means {mu1.shape} and {mu2.shape}, "
                         f"covariances {s1.shape} and {s2.shape}")
    diff = mu1 - mu2
    covmean, err = _sqrtm(s1 @ s2)
    if err > SQRTM_TOLERANCE:
        offset = np.eye(len(s1)) * eps
        covmean, err = _sqrtm((s1 + offset) @ (s2 + offset))
        if not np.isfinite(err):
            raise ValueError("the covariance product has no finite square root even with eps "
                             f"{eps:g} on the diagonals")
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if imag > IMAGINARY_TOLERANCE:
            raise ValueError(f"imaginary component {imag:.3g} in the matrix square root of the covariance "
                             "product (numerically unstable features)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_distance(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (rows = images)."""
    return frechet_from_statistics(*statistics(a), *statistics(b), eps=eps)
