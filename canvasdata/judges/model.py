"""A judge: a timm backbone with one classification head per task, plus the facts needed to use it
(class names, label spaces, input size and normalisation), which travel with the weights."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from canvasdata.errors import CanvasdataError


class JudgeError(CanvasdataError, ValueError):
    """A judge that cannot be built or loaded; the message says which file or field."""


@dataclass
class JudgeInfo:
    """What a judge knows about its inputs and outputs (stored in config.json)."""

    model: str
    tasks: list[str]
    class_names: dict[str, list[str]]
    label_space: dict[str, str]
    image_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    model_kwargs: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)        # data recipe name and hash it was trained on
    metrics: dict = field(default_factory=dict)     # held-out accuracy etc.


class Judge(nn.Module):
    """Backbone + heads. The first task's head is the timm model's own head; the others are extra
    linear layers on the same pre-logits features (one forward pass judges every task)."""

    def __init__(self, backbone: nn.Module, info: JudgeInfo) -> None:
        super().__init__()
        self.backbone, self.info = backbone, info
        self.extra = nn.ModuleDict({t: nn.Linear(backbone.num_features, len(info.class_names[t]))
                                    for t in info.tasks[1:]})
        self.register_buffer("_mean", torch.tensor(info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(info.std).view(1, 3, 1, 1), persistent=False)

    def no_weight_decay(self) -> set[str]:
        """The backbone's own no-decay parameters (e.g. ViT position embeddings), for timm's optimizer
        factory, which also leaves every norm and bias undecayed."""
        inner = getattr(self.backbone, "no_weight_decay", lambda: set())()
        return {f"backbone.{n}" for n in inner}

    @property
    def tasks(self) -> list[str]:
        return self.info.tasks

    @property
    def class_names(self) -> dict[str, list[str]]:
        return self.info.class_names

    @property
    def label_space(self) -> dict[str, str]:
        return self.info.label_space

    @property
    def image_size(self) -> int:
        return self.info.image_size

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.info.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.info.std

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] (or uint8) -> resized, normalised input."""
        if x.dtype == torch.uint8:
            x = x.float() / 255
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False,
                              antialias=True).clamp(0, 1)
        return (x - self._mean) / self._std

    def forward_normalized(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)
        out = {self.tasks[0]: self.backbone.get_classifier()(feats)}
        for t, head in self.extra.items():
            out[t] = head(feats)
        return feats, out

    def logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task for images in [0,1] of any size."""
        return self.forward_normalized(self.prepare(x))[1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (pre-logits) features, e.g. for Frechet distance."""
        return self.forward_normalized(self.prepare(x))[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.logits(x)
