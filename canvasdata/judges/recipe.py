"""Judge recipes: TOML under `classifiers/`, validated into a frozen dataclass."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import timm.optim

from canvasdata.recipes import RecipeError, _Fields, load_toml, resolve_recipe_path

TASKS = ("style", "object", "both", "binary")
SCHEDULERS = ("cosine", "tanh", "poly", "step")


@dataclass(frozen=True)
class JudgeRecipe:
    """How to build and train a judge."""

    name: str
    model: str
    task: str
    image_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pretrained: str = ""             # "" = random init; package:NAME, a local weights file or a Hub id
    freeze: tuple[str, ...] = ()     # backbone module-name prefixes kept fixed (BatchNorm statistics too)
    model_kwargs: str = ""           # JSON of extra timm.create_model arguments
    concept: str = ""                # binary task: the concept set config to train on
    epochs: int = 10
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.05
    optimizer: str = "adamw"         # any timm.optim optimizer name
    scheduler: str = "cosine"        # timm scheduler, stepped per update
    min_lr: float = 1e-6
    warmup_epochs: float = 1.0
    ema_decay: float = 0.0           # > 0: keep an EMA of the weights (timm ModelEmaV3), evaluate and export it
    label_smoothing: float = 0.1
    crop_scale: float = 0.8          # random-resized-crop minimum area (1.0 = no crop)
    hflip: bool = True
    workers: int = 2
    seed: int = 0
    source: str = "<memory>"

    @property
    def tasks(self) -> list[str]:
        return ["style", "object"] if self.task == "both" else [self.task]

    @property
    def kwargs(self) -> dict[str, Any]:
        return json.loads(self.model_kwargs) if self.model_kwargs else {}

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return d


def parse_judge_recipe(data: dict, source: str = "<memory>") -> JudgeRecipe:
    f = _Fields(data, source)
    triple = lambda key: f.get(key, list, [0.5, 0.5, 0.5])  # noqa: E731
    mean, std = triple("mean"), triple("std")
    for key, v in (("mean", mean), ("std", std)):
        if len(v) != 3 or not all(isinstance(t, (int, float)) for t in v):
            raise f.fail(key, "expected three numbers")
    kwargs = f.get("model_kwargs", dict, {})
    r = JudgeRecipe(
        name=f.get("name", str),
        model=f.get("model", str),
        task=f.get("task", str, allowed=TASKS),
        image_size=f.get("image_size", int, lo=16, hi=1024),
        mean=tuple(float(t) for t in mean), std=tuple(float(t) for t in std),
        pretrained=f.get("pretrained", str, ""),
        freeze=tuple(_prefixes(f, "freeze")),
        model_kwargs=json.dumps(kwargs, sort_keys=True) if kwargs else "",
        concept=f.get("concept", str, ""),
        epochs=f.get("epochs", int, 10, lo=1, hi=10_000),
        batch_size=f.get("batch_size", int, 64, lo=1, hi=65_536),
        lr=float(f.get("lr", (float, int), 5e-4)),
        weight_decay=float(f.get("weight_decay", (float, int), 0.05)),
        optimizer=f.get("optimizer", str, "adamw", allowed=timm.optim.list_optimizers()),
        scheduler=f.get("scheduler", str, "cosine", allowed=SCHEDULERS),
        min_lr=float(f.get("min_lr", (float, int), 1e-6)),
        warmup_epochs=float(f.get("warmup_epochs", (float, int), 1.0)),
        ema_decay=float(f.get("ema_decay", (float, int), 0.0)),
        label_smoothing=float(f.get("label_smoothing", (float, int), 0.1)),
        crop_scale=float(f.get("crop_scale", (float, int), 0.8)),
        hflip=f.get("hflip", bool, True),
        workers=f.get("workers", int, 2, lo=0, hi=64),
        seed=f.get("seed", int, 0, lo=0),
        source=source,
    )
    f.get("description", str, "")
    f.get("note", str, "")
    f.check_unknown()
    if not 0 < r.crop_scale <= 1:
        raise f.fail("crop_scale", f"{r.crop_scale} is out of range: allowed (0, 1]")
    for key in ("lr", "min_lr", "weight_decay", "warmup_epochs", "label_smoothing"):
        if getattr(r, key) < 0 or (key == "lr" and r.lr == 0):
            raise f.fail(key, f"{getattr(r, key)} is out of range: allowed {'> 0' if key == 'lr' else '>= 0'}")
    if not 0 <= r.ema_decay < 1:
        raise f.fail("ema_decay", f"{r.ema_decay} is out of range: allowed [0, 1) (0 = no EMA)")
    if r.task == "binary" and not r.concept:
        raise f.fail("concept", "the binary task needs the concept to detect (a concept-set config name)")
    return r


def _prefixes(f: _Fields, key: str) -> list[str]:
    value = f.get(key, list, [])
    if not all(isinstance(v, str) and v for v in value):
        raise f.fail(key, "expected a list of module-name prefixes such as \"blocks.0\"")
    return value


def load_judge_recipe(name_or_path: str | Path) -> JudgeRecipe:
    """A judge recipe by shipped name (`effnet-lite0-cpu`, `vit-base`, `vit-large-uc`, ...) or path."""
    path = resolve_recipe_path(name_or_path, kind="classifiers")
    try:
        return parse_judge_recipe(load_toml(path), str(path))
    except RecipeError:
        raise
