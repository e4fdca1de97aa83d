"""The prompt attack's settings, a value of its own: the command line builds one (and shows its defaults)
without importing diffusers, which the attack itself needs (`canvasdata.attack.prompts`)."""

from __future__ import annotations

from dataclasses import dataclass

from canvasdata.attack.tokens import POSITIONS
from canvasdata.errors import UsageError

PROJECTIONS = ("each-step", "end")


@dataclass(frozen=True)
class AttackConfig:
    """The attack's settings (defaults: UnlearnDiffAtk's 3 prefix tokens, 40 steps, lr 0.01, weight decay 0.1)."""

    tokens: int = 3
    position: str = "prefix"
    steps: int = 40
    lr: float = 0.01
    weight_decay: float = 0.1
    project: str = "each-step"
    batch: int = 1          # noised target draws a step
    eval_draws: int = 8     # fixed draws that score the projected tokens after every step
    targets: int = 4        # target images a prompt (its own cell's first)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("tokens", "steps", "batch", "eval_draws", "targets"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name} {getattr(self, name)!r}: allowed a positive integer")
        if self.position not in POSITIONS:
            raise UsageError(f"position {self.position!r}: allowed {', '.join(POSITIONS)}")
        if self.project not in PROJECTIONS:
            raise UsageError(f"project {self.project!r}: allowed {', '.join(PROJECTIONS)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise UsageError(f"lr {self.lr}, weight_decay {self.weight_decay}: allowed lr > 0, weight_decay >= 0")


DEFAULT_ATTACK = AttackConfig()   # the defaults, shown by `attack prompts --help`
