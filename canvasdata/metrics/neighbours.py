"""Over-erasure by neighbourhood (after EraseBench, ICCV 2025: erasing a concept harms the concepts
near it more than an average over all others shows), as pure functions on arrays.

- `nearest`: the k classes most similar to the target, under a stated similarity: either a given
  similarity row (one score per class) or class embeddings (one row per class), compared by cosine
  similarity. Ties are broken by class id (the smaller first), so the choice is reproducible; a NaN
  similarity (e.g. a zero embedding) ranks below every number. The target and `exclude` are never
  neighbours; `among` restricts the candidates (e.g. to the classes present in an answer set).
  Fewer than k candidates: all of them.
- `split_retention`: in-domain retention split into the mean per-class accuracy over the neighbours
  (`near`) and over the other retained classes (`rest`); both are plain (macro) means over classes,
  NaN classes skipped, NaN for an empty side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

COSINE = "cosine similarity of class embeddings"
GIVEN = "given similarity row"


@dataclass(frozen=True)
class Neighbourhood:
    """The `k` nearest classes to `target` (nearest first) with their similarities, and the measure."""

    target: int
    k: int
    classes: tuple[int, ...]
    similarities: tuple[float, ...]
    measure: str

    def to_dict(self) -> dict:
        return asdict(self)


def cosine_similarity(embeddings: np.ndarray, target: int) -> np.ndarray:
    """Cosine similarity of every row of `embeddings` [classes, dims] with row `target` (NaN where a row
    or the target row is all zeros)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"class embeddings must be 2-D [classes, dims], got shape {e.shape}")
    norms = np.linalg.norm(e, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (e @ e[target]) / (norms * norms[target])


def nearest(scores: np.ndarray, target: int, k: int, *, exclude: Iterable[int] = (),
            among: Iterable[int] | None = None, measure: str | None = None) -> Neighbourhood:
    """The k classes nearest to `target`. `scores`: a 1-D similarity row (higher = nearer) or 2-D class
    embeddings (compared by cosine similarity; pass a [classes, classes] similarity matrix as its
    target row). `measure` names the similarity in the result (default: what `scores` was)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2:
        sim, default = cosine_similarity(s, target), COSINE
    elif s.ndim == 1:
        sim, default = s, GIVEN
    else:
        raise ValueError(f"expected a similarity row or class embeddings, got shape {s.shape}")
    if not 0 <= target < len(sim):
        raise ValueError(f"target class {target} outside the {len(sim)} classes")
    banned = {int(target), *(int(c) for c in exclude)}
    pool = range(len(sim)) if among is None else sorted({int(c) for c in among})
    candidates = [c for c in pool if 0 <= c < len(sim) and c not in banned]
    ranked = sorted(candidates, key=lambda c: (np.isnan(sim[c]), -sim[c] if not np.isnan(sim[c]) else 0.0, c))[:k]
    return Neighbourhood(int(target), int(k), tuple(ranked), tuple(float(sim[c]) for c in ranked),
                         measure or default)


def _mean(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return float(np.mean(values)) if values else float("nan")


def split_retention(per_class_accuracy: Mapping[int, float], neighbours: Iterable[int]) -> tuple[float, float]:
    """(mean accuracy over the neighbours present in `per_class_accuracy`, mean over its other classes);
    NaN for a side with no class (an empty neighbour set: NaN near, every class in rest)."""
    near = {int(c) for c in neighbours}
    return (_mean([v for c, v in per_class_accuracy.items() if int(c) in near]),
            _mean([v for c, v in per_class_accuracy.items() if int(c) not in near]))
