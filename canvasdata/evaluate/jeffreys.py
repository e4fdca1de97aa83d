"""The arithmetic of the distribution score of `canvasdata evaluate retrained` (FADE's bidirectional idea,
arXiv 2510.12981, for diffusion models): the timestep grid the denoising loss is averaged over, and the
Jeffreys-divergence proxy from four sets of per-image losses. A leaf (numpy only), so the command line
shows the defaults without diffusers and the arithmetic is tested on synthetic arrays.

With answer sets X_A (model A's images) and X_B (the reference B's, on the same cells and seeds) and
L_M(x) model M's denoising loss on image x (the mean over the timestep grid and fixed noise draws of
M's noise-prediction error: a term of M's ELBO, so a stand-in for -log p_M(x)),

    J(A, B) = (E_{X_A}[L_B] - E_{X_A}[L_A]) + (E_{X_B}[L_A] - E_{X_B}[L_B]),

the two directions of a KL proxy: how much worse B explains A's samples than A does, plus the reverse.
J is 0 when A and B are the same model and symmetric in A and B by definition."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LOSS_TIMESTEPS = 10   # timesteps of the grid (evenly spaced over the training schedule)
NOISE_SEED = 0        # the seed every noise draw derives from, with the image's identity
LOSS_BATCH = 16       # images a forward pass (each at every timestep of the grid)


def timestep_grid(train_timesteps: int, n: int = LOSS_TIMESTEPS) -> list[int]:
    """`n` evenly spaced timesteps of a `train_timesteps`-step schedule, the midpoints of n equal bins:
    floor((2k + 1) T / 2n) for k = 0..n-1 (T = 1000, n = 10: 50, 150, ..., 950)."""
    if n < 1 or train_timesteps < n:
        raise ValueError(f"a grid of {n} timesteps needs 1 <= n <= the schedule's {train_timesteps} steps")
    return [(2 * k + 1) * train_timesteps // (2 * n) for k in range(n)]


class Jeffreys(NamedTuple):
    """The four mean losses, J and its standard error (None with fewer than two images a set)."""

    a_on_a: float     # E_{X_A}[L_A]
    b_on_a: float     # E_{X_A}[L_B]
    a_on_b: float     # E_{X_B}[L_A]
    b_on_b: float     # E_{X_B}[L_B]
    j: float          # (b_on_a - a_on_a) + (a_on_b - b_on_b)
    stderr: float | None

    def to_dict(self) -> dict[str, float | None]:
        """The fields, for a report."""
        return self._asdict()


def jeffreys(a_on_a: np.ndarray, b_on_a: np.ndarray, a_on_b: np.ndarray, b_on_b: np.ndarray) -> Jeffreys:
    """J(A, B) from per-image losses: `a_on_a[i]` = L_A of A's image i, `b_on_a[i]` = L_B of the same image
    (paired), `a_on_b` / `b_on_b` the same on B's images. The standard error treats each set's paired
    differences (L_B - L_A on X_A, L_A - L_B on X_B) as independent samples. Swapping A and B
    (`jeffreys(b_on_b, a_on_b, b_on_a, a_on_a)`) gives the same J."""
    arrays = [np.asarray(x, np.float64).reshape(-1) for x in (a_on_a, b_on_a, a_on_b, b_on_b)]
    if len(arrays[0]) != len(arrays[1]) or len(arrays[2]) != len(arrays[3]) or not all(len(x) for x in arrays):
        raise ValueError("per-image losses must be paired: the same non-zero number of images for both models "
                         f"on each set, got {[len(x) for x in arrays]}")
    aa, ba, ab, bb = (float(x.mean()) for x in arrays)
    d_a, d_b = arrays[1] - arrays[0], arrays[2] - arrays[3]
    stderr = None
    if len(d_a) > 1 and len(d_b) > 1:
        stderr = float(np.sqrt(d_a.var(ddof=1) / len(d_a) + d_b.var(ddof=1) / len(d_b)))
    return Jeffreys(aa, ba, ab, bb, (ba - aa) + (ab - bb), stderr)
