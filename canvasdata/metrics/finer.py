"""Finer-scale unlearning (UnlearnCanvas's FU and FR) as pure functions on arrays: the target is one
style × object combination (S, O), one entry per answer image, class ids as in the judges' label spaces.

- FU (finer-scale unlearning accuracy): among the combination's images (prompted style == S and
  object == O), the fraction NOT judged as the combination, i.e. whose style judge says another style
  than S or whose object judge says another object than O (or both). `residual_rate` = 1 − FU is the
  fraction judged as both S and O.
- FR (finer-scale retain accuracy), in three parts, each the fraction of its images judged correctly
  on BOTH style and object (predicted style == prompted style and predicted object == prompted
  object), micro-averaged over the part's images:
  - `same_style`: prompted style S with another object than O;
  - `same_object`: prompted object O with another style than S;
  - `rest`: every other image (neither style S nor object O).
  `fr` is the mean of the non-empty parts (each part weighs the same, whatever its image count).
- `exclude_style` (the `Seed_Images` class id when a protocol leaves it out of the style metrics):
  images of that style are left out of the FR parts, except when it is the combination's own style
  (then they are the `same_style` part and the combination's images, and nothing is left out). FU
  never leaves an image out.

A part with no image is NaN (its count 0); a combination with no image is a ValueError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PARTS = ("same_style", "same_object", "rest")


@dataclass(frozen=True)
class CombinationScores:
    """Scores of one combination request (fractions in [0, 1]; NaN for an empty part) and the image
    count behind each."""

    style: int
    object: int
    fu: float
    residual_rate: float
    same_style: float
    same_object: float
    rest: float
    fr: float
    n_combination: int
    n_same_style: int
    n_same_object: int
    n_rest: int
    excluded_style: int | None

    def to_dict(self) -> dict:
        return asdict(self)


def _both_correct(sel: np.ndarray, ts: np.ndarray, to: np.ndarray, ps: np.ndarray, po: np.ndarray) -> float:
    return float(((ps[sel] == ts[sel]) & (po[sel] == to[sel])).mean()) if sel.any() else float("nan")


def combination_scores(true_style: np.ndarray, true_object: np.ndarray, pred_style: np.ndarray,
                       pred_object: np.ndarray, style_id: int, object_id: int, *,
                       exclude_style: int | None = None) -> CombinationScores:
    """FU and the FR parts of forgetting the combination (`style_id`, `object_id`); see the module
    docstring for the exact denominators."""
    ts, to, ps, po = (np.asarray(a) for a in (true_style, true_object, pred_style, pred_object))
    if not len(ts) == len(to) == len(ps) == len(po):
        raise ValueError(f"label arrays differ in length: {len(ts)}, {len(to)}, {len(ps)}, {len(po)}")
    is_s, is_o = ts == style_id, to == object_id
    combo = is_s & is_o
    if not combo.any():
        raise ValueError(f"no answer image names the combination (style {style_id}, object {object_id})")
    residual = float(((ps[combo] == style_id) & (po[combo] == object_id)).mean())
    keep = np.ones(len(ts), bool)
    excluded = None
    if exclude_style is not None and exclude_style != style_id:
        keep, excluded = ts != exclude_style, int(exclude_style)
    sels = {"same_style": is_s & ~is_o & keep, "same_object": is_o & ~is_s & keep, "rest": ~is_s & ~is_o & keep}
    parts = {k: _both_correct(sel, ts, to, ps, po) for k, sel in sels.items()}
    present = [v for v in parts.values() if v == v]
    return CombinationScores(int(style_id), int(object_id), 1.0 - residual, residual, parts["same_style"],
                             parts["same_object"], parts["rest"],
                             float(np.mean(present)) if present else float("nan"), int(combo.sum()),
                             int(sels["same_style"].sum()), int(sels["same_object"].sum()), int(sels["rest"].sum()),
                             excluded)
