"""UnlearnCanvas's UA / IRA / CRA, from one residual-detection quantity, as pure functions on arrays.

Definitions (one unlearning request = forget one style or one object; one entry per answer image):
- residual rate: among images whose prompt names the forgotten concept, the fraction the target
  domain's judge still classifies as that concept. UA = 1 - residual rate (DataIGM's "forgetting"
  is the residual rate itself).
- IRA: the mean over the other classes of the same domain of the per-class accuracy of that domain's
  judge (a macro average: every retained class weighs the same).
- CRA: the accuracy of the other domain's judge over the images whose prompt does not name the
  forgotten concept (a micro average over those images).
- `include_seed_images`: whether images and classes of the `Seed_Images` style count in the style
  denominators: the IRA of style requests, and the images scored for CRA. Re-implementations of the
  benchmark differ here; the choice is recorded in every report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DOMAINS = ("style", "object")


@dataclass(frozen=True)
class RequestScores:
    """Scores of one unlearning request (fractions in [0, 1])."""

    domain: str
    target: int
    residual_rate: float
    ua: float
    ira: float
    cra: float
    n_forget: int
    n_retain: int
    per_class_accuracy: dict[int, float]

    def to_dict(self) -> dict:
        return asdict(self)


def residual_rate(true: np.ndarray, pred: np.ndarray, target: int) -> float:
    """Fraction of images whose prompt names `target` that the judge still classifies as `target`."""
    sel = np.asarray(true) == target
    if not sel.any():
        raise ValueError(f"no answer image names the forgotten class {target}")
    return float((np.asarray(pred)[sel] == target).mean())


def per_class_accuracy(true: np.ndarray, pred: np.ndarray, classes: np.ndarray | list[int]) -> dict[int, float]:
    true, pred = np.asarray(true), np.asarray(pred)
    return {int(c): float((pred[true == c] == c).mean()) for c in classes if (true == c).any()}


def request_scores(true_style: np.ndarray, true_object: np.ndarray, pred_style: np.ndarray, pred_object: np.ndarray,
                   domain: str, target: int, seed_style: int | None = None,
                   include_seed_images: bool = True) -> RequestScores:
    """UA, IRA and CRA of one request. `seed_style` is the class id of Seed_Images in the style space
    (None if the space has none)."""
    if domain not in DOMAINS:
        raise ValueError(f"domain {domain!r}: allowed style, object")
    ts, to, ps, po = (np.asarray(a) for a in (true_style, true_object, pred_style, pred_object))
    if not len(ts) == len(to) == len(ps) == len(po):
        raise ValueError("true and predicted label arrays differ in length")
    keep = np.ones(len(ts), bool)
    if not include_seed_images and seed_style is not None:
        keep = ts != seed_style
    own_true, own_pred = (ts, ps) if domain == "style" else (to, po)
    other_true, other_pred = (to, po) if domain == "style" else (ts, ps)
    rate = residual_rate(own_true, own_pred, target)
    others = [c for c in np.unique(own_true[keep]) if c != target]
    pcs = per_class_accuracy(own_true[keep], own_pred[keep], others)
    retain = keep & (own_true != target)
    cra = float((other_pred[retain] == other_true[retain]).mean()) if retain.any() else float("nan")
    return RequestScores(domain, int(target), rate, 1.0 - rate, float(np.mean(list(pcs.values()))) if pcs else float("nan"),
                         cra, int((own_true == target).sum()), int(retain.sum()), pcs)


def aggregate(scores: list[RequestScores]) -> dict[str, dict[str, float]]:
    """Mean UA / IRA / CRA over the requests of each domain (as the benchmark's Table 2 reports)."""
    out = {}
    for d in DOMAINS:
        sel = [s for s in scores if s.domain == d]
        if sel:
            out[d] = {k: float(np.nanmean([getattr(s, k) for s in sel])) for k in ("ua", "ira", "cra", "residual_rate")}
            out[d]["requests"] = len(sel)
    return out
