"""A judge: a timm backbone with one classification head per task, plus the facts needed to use it
(class names, label spaces, input size and normalisation), which travel with the weights."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from canvasdata.errors import CanvasdataError
from canvasdata.fields import Fields, RecipeError

TASK_NAMES = ("style", "object", "binary")


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


def parse_info(facts: object, source: str) -> JudgeInfo:
    """JudgeInfo from the `canvasdata` block of a judge's config.json, every field checked: an error
    names the file, the field and what is allowed (one line)."""
    if not isinstance(facts, dict):
        raise JudgeError(f"{source}: field 'canvasdata': expected an object with the judge's facts, "
                         f"got {type(facts).__name__}")
    f = Fields(facts, source, "canvasdata.")
    try:
        tasks = _tasks(f)
        info = JudgeInfo(model=f.get("model", str), tasks=tasks, class_names=_per_task(f, "class_names", tasks),
                         label_space=_per_task(f, "label_space", tasks),
                         image_size=f.get("image_size", int, lo=1, hi=8192),
                         mean=_triple(f, "mean", positive=False), std=_triple(f, "std", positive=True),
                         model_kwargs=f.get("model_kwargs", dict, {}), data=f.get("data", dict, {}),
                         metrics=f.get("metrics", dict, {}))
        f.check_unknown()
    except RecipeError as e:
        raise JudgeError(str(e)) from None
    if not info.model:
        raise JudgeError(f"{source}: field 'canvasdata.model': expected a timm architecture name, got ''")
    return info


def _tasks(f: Fields) -> list[str]:
    tasks = f.get("tasks", list)
    if not tasks or len(set(map(str, tasks))) != len(tasks) or not all(t in TASK_NAMES for t in tasks):
        raise f.fail("tasks", f"expected a non-empty list of distinct tasks among {', '.join(TASK_NAMES)}, "
                              f"got {tasks!r}")
    return tasks


def _per_task(f: Fields, key: str, tasks: list[str]) -> dict:
    """class_names (a list of names per task) or label_space (a name per task)."""
    value = f.get(key, dict)
    for t in tasks:
        v = value.get(t)
        if key == "class_names" and not (isinstance(v, list) and v and all(isinstance(n, str) and n for n in v)):
            raise f.fail(f"{key}.{t}", f"expected a non-empty list of class names (strings), got {v!r}")
        if key == "label_space" and not (isinstance(v, str) and v):
            raise f.fail(f"{key}.{t}", f"expected the name of a label space (a string), got {v!r}")
    return value


def _triple(f: Fields, key: str, positive: bool) -> tuple[float, float, float]:
    """mean or std: three finite numbers (per RGB channel), each > 0 for std."""
    value = f.get(key, list, [0.5, 0.5, 0.5])
    good = len(value) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                   and (v > 0 or not positive) for v in value)
    if not good:
        allowed = "numbers > 0" if positive else "finite numbers"
        raise f.fail(key, f"expected three {allowed} (one per RGB channel), got {value!r}")
    return tuple(float(v) for v in value)


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

    def class_embeddings(self, task: str) -> torch.Tensor:
        """The task head's weight rows, [classes, features]: the judge's class embeddings (e.g. for the
        cosine similarity of classes); a JudgeError when the head has no weight matrix."""
        head = self.backbone.get_classifier() if task == self.tasks[0] else self.extra[task]
        weight = getattr(head, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.shape[0] != len(self.class_names[task]):
            raise JudgeError(f"the {task} head ({type(head).__name__}) has no weight row per class")
        return weight.detach().reshape(weight.shape[0], -1)

    def logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task for images in [0,1] of any size."""
        return self.forward_normalized(self.prepare(x))[1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (pre-logits) features, e.g. for Frechet distance."""
        return self.forward_normalized(self.prepare(x))[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.logits(x)
