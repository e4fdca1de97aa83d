"""Continual unlearning (UnlearnCanvas's SU / SR; CUIG's sequential and simultaneous requests) as pure
functions on arrays, one entry per answer image, class ids as in the judges' label spaces.

A target is (domain, style id, object id): `("style", s, None)`, `("object", None, o)` or
`("combination", s, o)`.

- `target_ua`: among the images prompted with the target (its style; its object; its cell), the
  fraction NOT judged as it (a combination: not judged as both its style and its object). This is each
  request's UA, and for a combination its FU.
- `untargeted`: the images of cells that no target touches (a style target touches every cell of its
  style, an object target every cell of its object, a combination its one cell), the never-targeted
  part of the set. `retention` gives the style judge's and the object judge's accuracy on them (SR's two
  halves; `Seed_Images` images are left out of the style half when `exclude_style` names its id, as the
  `unlearncanvas` protocol does for IRA) and `sr`, the mean of the non-empty halves.
- `rebound`: for each target, how far its UA fell from its best after it was forgotten, to the last
  step (0 when it never fell): an earlier request coming back.

An empty selection gives NaN (a target with no image is a ValueError: nothing to forget).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Target(NamedTuple):
    """One request in class ids: `style` / `object` are None where the request does not name them."""

    domain: str
    style: int | None
    object: int | None


def cell_mask(ts: np.ndarray, to: np.ndarray, t: Target) -> np.ndarray:
    """The images prompted with the target."""
    mask = np.ones(len(ts), bool)
    if t.style is not None:
        mask &= ts == t.style
    if t.object is not None:
        mask &= to == t.object
    return mask


def target_ua(ts: np.ndarray, to: np.ndarray, ps: np.ndarray, po: np.ndarray, t: Target) -> float:
    """The fraction of the target's images not judged as the target."""
    ts, to, ps, po = (np.asarray(a) for a in (ts, to, ps, po))
    sel = cell_mask(ts, to, t)
    if not sel.any():
        raise ValueError(f"no answer image is prompted with the target {t}")
    judged = np.ones(int(sel.sum()), bool)
    if t.style is not None:
        judged &= ps[sel] == t.style
    if t.object is not None:
        judged &= po[sel] == t.object
    return float(1.0 - judged.mean())


def untargeted(ts: np.ndarray, to: np.ndarray, targets: Sequence[Target]) -> np.ndarray:
    """The mask of the images that no target touches."""
    ts, to = np.asarray(ts), np.asarray(to)
    keep = np.ones(len(ts), bool)
    for t in targets:
        keep &= ~cell_mask(ts, to, t)
    return keep


class Retention(NamedTuple):
    """SR's halves on the never-targeted images (NaN when empty), their image counts, and `sr`."""

    style: float
    object: float
    n_style: int
    n_object: int

    @property
    def sr(self) -> float:
        halves = [v for v in (self.style, self.object) if not np.isnan(v)]
        return float(np.mean(halves)) if halves else float("nan")


def retention(ts: np.ndarray, to: np.ndarray, ps: np.ndarray, po: np.ndarray, targets: Sequence[Target],
              exclude_style: int | None = None) -> Retention:
    """Style and object accuracy on the images no target touches (the style half without `exclude_style`)."""
    ts, to, ps, po = (np.asarray(a) for a in (ts, to, ps, po))
    keep = untargeted(ts, to, targets)
    style_keep = keep & (ts != exclude_style) if exclude_style is not None else keep
    style = float((ps[style_keep] == ts[style_keep]).mean()) if style_keep.any() else float("nan")
    obj = float((po[keep] == to[keep]).mean()) if keep.any() else float("nan")
    return Retention(style, obj, int(style_keep.sum()), int(keep.sum()))


def rebound(history: Sequence[float | None]) -> float:
    """One target's UA over the steps (None before it was forgotten): its best UA after it was forgotten
    minus its UA at the last step, 0 when it never fell; NaN when it was never forgotten."""
    seen = [v for v in history if v is not None]
    if not seen:
        return float("nan")
    return float(max(seen) - seen[-1])
