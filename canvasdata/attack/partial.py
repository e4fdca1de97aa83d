"""Partial diffusion (the concealment attack of Sharma et al., arXiv 2409.05668): the original model
takes the first round(ψ·T) denoising steps of a generation, the unlearned model takes the rest, from the
same initial noise and with one scheduler carrying on through the hand-over.

`PartialDiffusion` is pipeline-shaped (called like a diffusers text-to-image pipeline, with
`scheduler`, `dtype` and `config._name_or_path`), so `generate_answers` writes its images as an answer
set. It runs the pipelines' own denoising loops: the original pipeline runs, and after its step k − 1 a
`callback_on_step_end` hands its denoiser (`unet` or `transformer`) and VAE over to the unlearned model's
and swaps in the unlearned model's text conditioning (read from one step of the unlearned pipeline on
the same prompts). ψ = 0 is plain generation by the unlearned pipeline and ψ = 1 by the original one.
"""

from __future__ import annotations

import inspect
import math
from types import SimpleNamespace
from typing import Any

import torch

from canvasdata.errors import UsageError

HANDED_OVER = ("unet", "transformer", "vae")   # the components the unlearned model brings to the hand-over


def original_steps(psi: float, steps: int) -> int:
    """k = round(ψ·T), halves rounded up: the denoising steps the original model takes."""
    return int(math.floor(psi * steps + 0.5))


def check_psi(grid: list[float] | tuple[float, ...]) -> list[float]:
    """A ψ grid, sorted without repeats, each value kept to 6 significant digits (as its folder name
    `psi_{ψ:g}` writes it); every value must lie in [0, 1]."""
    if not grid:
        raise UsageError("psi: give at least one value in [0, 1]")
    for p in grid:
        if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise UsageError(f"psi {p!r}: allowed values in [0, 1]")
    return sorted({float(f"{float(p):g}") for p in grid})


def _public(config: Any) -> dict:
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}


def check_compatible(original: Any, unlearned: Any) -> None:
    """Refuse two pipelines that partial diffusion cannot join: another pipeline class, another scheduler
    (class or config), another denoiser config, or a pipeline without `callback_on_step_end`."""
    if type(original) is not type(unlearned):
        raise UsageError(f"original is a {type(original).__name__}, unlearned a {type(unlearned).__name__}: "
                         "partial diffusion needs the same pipeline class")
    if "callback_on_step_end" not in inspect.signature(original.__call__).parameters:
        raise UsageError(f"{type(original).__name__} has no callback_on_step_end: partial diffusion needs it")
    so, su = original.scheduler, unlearned.scheduler
    if type(so) is not type(su) or _public(so.config) != _public(su.config):
        diff = sorted(k for k in {*_public(so.config), *_public(su.config)}
                      if _public(so.config).get(k) != _public(su.config).get(k))
        raise UsageError(f"scheduler: original {type(so).__name__} and unlearned {type(su).__name__} differ "
                         f"({', '.join(diff) or 'class'}); load both with the same --scheduler")
    for name in HANDED_OVER:
        a, b = getattr(original, name, None), getattr(unlearned, name, None)
        if (a is None) != (b is None) or (a is not None and _public(a.config) != _public(b.config)):
            raise UsageError(f"{name}: the original and unlearned models' configs differ; partial diffusion "
                             "needs one architecture")


def _clone(generator: Any) -> Any:
    """Copies of a generator (or a list of them) in their present state."""
    if isinstance(generator, (list, tuple)):
        return [_clone(g) for g in generator]
    if isinstance(generator, torch.Generator):
        copy = torch.Generator(generator.device)
        copy.set_state(generator.get_state())
        return copy
    return generator


def _inputs(pipe: Any) -> list[str]:
    return list(getattr(pipe, "_callback_tensor_inputs", ["latents"]))


class _HandOver:
    """The callback that gives the host pipeline the guest's denoiser, VAE and conditioning after step k − 1."""

    def __init__(self, host: Any, guest: Any, psi: float, conditioning: dict) -> None:
        self.host, self.guest, self.psi, self.conditioning = host, guest, psi, conditioning
        self.saved = {n: getattr(host, n) for n in HANDED_OVER if getattr(host, n, None) is not None}

    def __call__(self, pipe: Any, i: int, t: Any, tensors: dict) -> dict:
        n = len(pipe.scheduler.timesteps)
        if i != min(max(original_steps(self.psi, n), 1), n - 1) - 1:
            return {}
        for name in self.saved:
            setattr(pipe, name, getattr(self.guest, name))
        return dict(self.conditioning)

    def restore(self) -> None:
        """Give the host its own components back; under model CPU offload, each pipeline's offload hooks
        are laid again over its own components (`maybe_free_model_hooks`; a no-op without offload)."""
        for name, module in self.saved.items():
            setattr(self.host, name, module)
        for pipe in (self.host, self.guest):
            if hasattr(pipe, "maybe_free_model_hooks"):
                pipe.maybe_free_model_hooks()


class PartialDiffusion:
    """Pipeline-shaped partial diffusion at one ψ (see the module docstring)."""

    def __init__(self, original: Any, unlearned: Any, psi: float, name: str = "") -> None:
        check_compatible(original, unlearned)
        self.original, self.unlearned, self.psi = original, unlearned, float(check_psi([psi])[0])
        self.scheduler, self.dtype = unlearned.scheduler, unlearned.dtype
        self.config = SimpleNamespace(_name_or_path=name or f"partial diffusion psi={self.psi:g}")

    def _conditioning(self, prompt: Any, kwargs: dict) -> dict:
        """The unlearned pipeline's in-loop conditioning tensors for these prompts (one step, then stop)."""
        captured: dict = {}

        def grab(pipe: Any, i: int, t: Any, tensors: dict) -> dict:
            captured.update({k: v for k, v in tensors.items() if k != "latents"})
            pipe._interrupt = True  # diffusers' own stop flag: the remaining steps are skipped
            return {}

        kw = {**kwargs, "generator": _clone(kwargs.get("generator")), "output_type": "latent"}
        self.unlearned(prompt, callback_on_step_end=grab, callback_on_step_end_tensor_inputs=_inputs(self.unlearned),
                       **kw)
        return captured

    def __call__(self, prompt: Any, **kwargs: Any) -> Any:
        """Generate as a pipeline call would (`num_inference_steps` required); returns the pipeline's output."""
        steps = kwargs.get("num_inference_steps")
        if not isinstance(steps, int) or steps < 1:
            raise UsageError(f"num_inference_steps {steps!r}: allowed a positive integer")
        k = original_steps(self.psi, steps)
        if k == 0:
            return self.unlearned(prompt, **kwargs)
        if k >= steps:
            return self.original(prompt, **kwargs)
        hand_over = _HandOver(self.original, self.unlearned, self.psi, self._conditioning(prompt, kwargs))
        try:
            return self.original(prompt, callback_on_step_end=hand_over,
                                 callback_on_step_end_tensor_inputs=_inputs(self.original), **kwargs)
        finally:
            hand_over.restore()
