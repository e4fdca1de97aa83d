"""A judge: a timm backbone with one classification head per task, plus the facts needed to use it
(class names, label spaces, input size and normalisation), which travel with the weights."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F


class JudgeError(ValueError):
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


def create_backbone(name: str, num_classes: int, image_size: int, kwargs: dict | None = None,
                    pretrained: str = "") -> nn.Module:
    """A timm model; `pretrained` is "" (random init), a local weights file or a Hub id."""
    kwargs = dict(kwargs or {})
    if "vit" in name or "deit" in name:
        kwargs.setdefault("img_size", image_size)
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        raise JudgeError(f"unknown timm model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if pretrained.endswith((".safetensors", ".pth", ".bin", ".pt")):
        return timm.create_model(name, pretrained=True, num_classes=num_classes,
                                 pretrained_cfg_overlay=dict(file=pretrained), **kwargs)
    return timm.create_model(name, pretrained=True, num_classes=num_classes,
                             pretrained_cfg_overlay=dict(hf_hub_id=pretrained), **kwargs)


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
