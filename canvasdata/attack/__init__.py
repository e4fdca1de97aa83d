"""Attacks on unlearned diffusion models, read by the same judges as the evaluators: the concealment
probe (partial diffusion over ψ; UA(ψ), CRS and CCS) and adversarial prompts (UnlearnDiffAtk family;
attack success rate). Both run any diffusers text-to-image pipeline `canvasdata evaluate generate` loads
(the prompt attack: SD 1.x/2.x-style pipelines), write answer sets the scorer reads, and resume. The prompt
attack's functions import diffusers on first use (the diffusers extra); its settings (`AttackConfig`) do not."""

from typing import Any

from canvasdata.attack.common import Request, Sampling, forget_request
from canvasdata.attack.conceal import ConcealReport, run_conceal
from canvasdata.attack.config import AttackConfig
from canvasdata.attack.crs import LinearProbe, confidence_score, retrieval_score, retrieval_scores, similarity_score
from canvasdata.attack.partial import PartialDiffusion, original_steps
from canvasdata.extras import load_extra

LAZY = ("PromptReport", "attack_prompt", "run_prompt_attack")   # canvasdata.attack.prompts (diffusers extra)


def __getattr__(name: str) -> Any:
    """`run_prompt_attack`, ... from canvasdata.attack.prompts, imported on first use (diffusers extra)."""
    if name in LAZY:
        return getattr(load_extra("canvasdata.attack.prompts", "diffusers"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AttackConfig", "ConcealReport", "LinearProbe", "PartialDiffusion", "Request", "Sampling",
           "confidence_score", "forget_request", "original_steps", "retrieval_score", "retrieval_scores",
           "run_conceal", "similarity_score", *LAZY]
