"""Attacks on unlearned diffusion models, read by the same judges as the evaluators: the concealment
probe (partial diffusion over ψ; UA(ψ), CRS and CCS) and adversarial prompts (UnlearnDiffAtk family;
attack success rate). Both run any diffusers text-to-image pipeline `canvasdata evaluate generate` loads
(the prompt attack: SD 1.x/2.x-style pipelines), write answer sets the scorer reads, and resume."""

from canvasdata.attack.common import Request, Sampling, forget_request
from canvasdata.attack.conceal import ConcealReport, run_conceal
from canvasdata.attack.crs import LinearProbe, confidence_score, retrieval_score, retrieval_scores, similarity_score
from canvasdata.attack.partial import PartialDiffusion, original_steps
from canvasdata.attack.prompts import AttackConfig, PromptReport, attack_prompt, run_prompt_attack

__all__ = ["AttackConfig", "ConcealReport", "LinearProbe", "PartialDiffusion", "PromptReport", "Request", "Sampling",
           "attack_prompt", "confidence_score", "forget_request", "original_steps", "retrieval_score",
           "retrieval_scores", "run_conceal", "run_prompt_attack", "similarity_score"]
