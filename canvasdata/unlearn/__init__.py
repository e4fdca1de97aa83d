"""Unlearning methods that write an unlearned diffusers pipeline folder: the reference method, Erased
Stable Diffusion (ESD; Gandikota et al., ICCV 2023), in `canvasdata.unlearn.esd`.

`ESDConfig` lives here, importable without the diffusers extra, so that the command line shows its
defaults; `erase`, `ESDResult` and `parse_forget` are imported from `canvasdata.unlearn.esd` on first
use (that module needs `pip install 'canvasdata[diffusers]'`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canvasdata.errors import UsageError
from canvasdata.extras import load_extra

METHODS = ("auto", "xattn", "xattn-strict", "noxattn", "full")   # parameter sets, named as in the authors' code
# where ESD's retain term is taken: on the erased concept's x_t (the default) or on an x_t sampled the same way
# along the retain text's own trajectory (one more partial DDIM run an iteration)
RETAIN_LATENTS = ("erased", "own")
LAZY = ("ESDResult", "erase", "parse_forget", "default_prompt", "check_vocabulary", "trainable_names")


@dataclass(frozen=True)
class ESDConfig:
    """ESD's settings. `method`: the UNet parameters trained: `xattn` (ESD-x, cross-attention only: the
    paper's choice for styles), `xattn-strict` (the cross-attention's key and value projections alone: the
    authors' later `esd-x-strict`, which touches only what reads the prompt), `noxattn` (ESD-u, all but
    cross-attention: objects), `full`, or `auto` (xattn for a style, noxattn for an object). `iterations`
    optimiser steps of batch 1 at `lr` (Adam); `negative_guidance` (eta) scales the push away from the
    concept; `start_guidance` is the classifier-free guidance of the DDIM sampling (`sample_steps` steps)
    that makes each x_t.
    `checkpoint_every` iterations a resumable checkpoint is written. `seed` derives every draw; `size`
    is the image size in px (default: the UNet's sample_size x the VAE's scale factor)."""

    method: str = "auto"
    iterations: int = 200
    lr: float = 1e-5
    negative_guidance: float = 1.0
    start_guidance: float = 3.0
    sample_steps: int = 50
    checkpoint_every: int = 50
    seed: int = 0
    size: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"ESD method {self.method!r}: allowed {', '.join(METHODS)}")
        for name in ("iterations", "sample_steps", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"ESD {name} {getattr(self, name)}: expected a positive integer")
        if not self.lr > 0:
            raise UsageError(f"ESD lr {self.lr}: expected a positive number")
        if self.size is not None and self.size < 1:
            raise UsageError(f"ESD size {self.size}: expected a positive number of px")


def __getattr__(name: str) -> Any:
    """`erase`, `ESDResult`, ... from canvasdata.unlearn.esd, imported on first use (diffusers extra)."""
    if name in LAZY:
        return getattr(load_extra("canvasdata.unlearn.esd", "diffusers"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "ESDConfig", *LAZY]
