"""UnlearnCanvas's UA / IRA / CRA, derived from one residual-detection quantity, as pure functions on
arrays (one entry per answer image; class ids are positions in the judges' label spaces).

Definitions for one unlearning request (forget one style, or one object):

- residual rate: among the images whose prompt names the forgotten concept, the fraction the
  target domain's judge still classifies as that concept. UA = 1 - residual rate. DataIGM's
  "forgetting" rate and an attack's success rate are this same quantity.
- IRA (in-domain retain accuracy): the judge of the forgotten concept's domain, on the images whose
  prompt names another class of that domain; per-class accuracy first, then the mean over those
  classes (a macro average: every retained class weighs the same, whatever its image count).
- CRA (cross-domain retain accuracy): the other domain's judge, micro-averaged over images: for a
  style request, the object judge on the object labels of the images; for an object request, the
  style judge on the style labels of the images. `cra_includes_forgotten` decides which images:
  True (the original benchmark code) counts every image, those prompted with the forgotten concept
  included: its `accuracy.py` averages each class's accuracy over the whole grid, which on a full
  grid (every cell the same number of images) equals this micro average. False counts only the
  images whose target-domain class is not the forgotten one.
- `seed_images_in_style_metrics`: whether the `Seed_Images` style (the unstylized photos) counts in
  the style denominators, i.e. the IRA of style requests (as one retained class) and the CRA of
  object requests (its images). It never changes UA nor the object-judge metrics (the object judge's
  CRA of a style request counts the Seed_Images photos, as the original loops over every style). The
  default, False, follows the paper's "other 49 styles" for a 51-class style space; the original code
  does not aggregate IRA and CRA itself and re-implementations differ, so every report records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from canvasdata.taxonomy import DOMAINS


@dataclass(frozen=True)
class RequestScores:
    """Scores of one unlearning request (fractions in [0, 1]); `per_class_accuracy` holds the
    retained classes of the target domain that entered IRA, `cra_per_class` the other domain's
    classes over the images that entered CRA."""

    domain: str
    target: int
    residual_rate: float
    ua: float
    ira: float
    cra: float
    n_forget: int
    n_cra: int
    per_class_accuracy: dict[int, float]
    cra_per_class: dict[int, float]
    seed_images_in_style_metrics: bool
    cra_includes_forgotten: bool

    def to_dict(self) -> dict:
        return asdict(self)


def residual_rate(true: np.ndarray, pred: np.ndarray, target: int) -> float:
    """Fraction of the images whose prompt names `target` that the judge still classifies as `target`."""
    true, pred = np.asarray(true), np.asarray(pred)
    sel = true == target
    if not sel.any():
        raise ValueError(f"no answer image names the forgotten class {target}")
    return float((pred[sel] == target).mean())


def per_class_accuracy(true: np.ndarray, pred: np.ndarray, classes: np.ndarray | list[int]) -> dict[int, float]:
    """{class: accuracy of the judge on the images of that class}, for the listed classes present in `true`."""
    true, pred = np.asarray(true), np.asarray(pred)
    return {int(c): float((pred[true == c] == c).mean()) for c in classes if (true == c).any()}


def request_scores(true_style: np.ndarray, true_object: np.ndarray, pred_style: np.ndarray,
                   pred_object: np.ndarray, domain: str, target: int, *, seed_style: int | None = None,
                   seed_images_in_style_metrics: bool = False, cra_includes_forgotten: bool = True) -> RequestScores:
    """UA, IRA and CRA of one request (see the module docstring for the exact denominators).
    `seed_style` is the class id of `Seed_Images` in the style space, or None when it has none.
    The defaults are the `unlearncanvas` protocol's choices."""
    if domain not in DOMAINS:
        raise ValueError(f"domain {domain!r}: allowed style, object")
    ts, to, ps, po = (np.asarray(a) for a in (true_style, true_object, pred_style, pred_object))
    if not len(ts) == len(to) == len(ps) == len(po):
        raise ValueError(f"label arrays differ in length: {len(ts)}, {len(to)}, {len(ps)}, {len(po)}")
    style_keep = np.ones(len(ts), bool)
    if not seed_images_in_style_metrics and seed_style is not None:
        style_keep = ts != seed_style
    if domain == "style":
        own_true, own_pred, other_true, other_pred = ts, ps, to, po
        ira_keep, cra_keep = style_keep, np.ones(len(ts), bool)
    else:
        own_true, own_pred, other_true, other_pred = to, po, ts, ps
        ira_keep, cra_keep = np.ones(len(ts), bool), style_keep
    rate = residual_rate(own_true, own_pred, target)
    retained = [c for c in np.unique(own_true[ira_keep]) if c != target]
    pcs = per_class_accuracy(own_true[ira_keep], own_pred[ira_keep], retained)
    ira = float(np.mean(list(pcs.values()))) if pcs else float("nan")
    cra_sel = cra_keep if cra_includes_forgotten else cra_keep & (own_true != target)
    cra = float((other_pred[cra_sel] == other_true[cra_sel]).mean()) if cra_sel.any() else float("nan")
    cra_pcs = per_class_accuracy(other_true[cra_sel], other_pred[cra_sel], np.unique(other_true[cra_sel]))
    return RequestScores(domain, int(target), rate, 1.0 - rate, ira, cra, int((own_true == target).sum()),
                         int(cra_sel.sum()), pcs, cra_pcs, seed_images_in_style_metrics, cra_includes_forgotten)


def aggregate(scores: list[RequestScores]) -> dict[str, dict[str, float]]:
    """Mean UA / IRA / CRA (and residual rate) over the style requests and, separately, over the
    object requests, as the benchmark's Table 2 reports them; NaNs (no retained image) are skipped."""
    out: dict[str, dict[str, float]] = {}
    for d in DOMAINS:
        sel = [s for s in scores if s.domain == d]
        if sel:
            out[d] = {k: float(np.nanmean([getattr(s, k) for s in sel])) for k in ("ua", "ira", "cra", "residual_rate")}
            out[d]["requests"] = len(sel)
    return out
