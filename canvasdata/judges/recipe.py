"""Judge recipes: TOML under `classifiers/`, validated into a frozen dataclass."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import timm.optim

from canvasdata.data import DEGRADE_BLUR, DEGRADE_JPEG, DEGRADE_SCALE
from canvasdata.fields import Fields
from canvasdata.recipes import load_toml, resolve_recipe_path

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
    degrade_prob: float = 0.0        # per image: one random degradation (blur, downscale, JPEG) before the crop
    degrade_blur: tuple[float, float] = DEGRADE_BLUR      # its Gaussian sigma range, stored-image px
    degrade_scale: tuple[float, float] = DEGRADE_SCALE    # its downscale factor range (down, then back up)
    degrade_jpeg: tuple[int, int] = DEGRADE_JPEG          # its JPEG quality range
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
        """The fields (not `source`), as a recipe table; the degradation fields only where one differs
        from its default, so that a recipe without degradation keeps the identity (and history) it had
        before they existed."""
        d = asdict(self)
        d.pop("source")
        if all(d[k] == DEFAULTS[k] for k in DEGRADE_FIELDS):
            for k in DEGRADE_FIELDS:
                d.pop(k)
        else:
            for k in DEGRADE_FIELDS[1:]:
                d[k] = list(d[k])
        return d


DEFAULTS = {f.name: f.default for f in fields(JudgeRecipe) if f.default is not MISSING}  # declared once, above
DEGRADE_FIELDS = ("degrade_prob", "degrade_blur", "degrade_scale", "degrade_jpeg")


def _triple(f: Fields, key: str) -> tuple[float, float, float]:
    """Three numbers (an RGB mean or std)."""
    v = f.get(key, list, list(DEFAULTS[key]))
    if len(v) != 3 or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in v):
        raise f.fail(key, "expected three numbers")
    return tuple(float(t) for t in v)


def _number(f: Fields, key: str) -> float:
    return float(f.get(key, (float, int), DEFAULTS[key]))


def _range(f: Fields, key: str, kind: type, lo: float, hi: float, what: str) -> tuple:
    """Two numbers [low, high] with lo <= low <= high <= hi (a degradation's parameter range)."""
    v = f.get(key, (list, tuple), list(DEFAULTS[key]))
    kinds = (int,) if kind is int else (int, float)
    if len(v) != 2 or not all(isinstance(t, kinds) and not isinstance(t, bool) for t in v):
        raise f.fail(key, f"expected two {'integers' if kind is int else 'numbers'} [low, high] ({what})")
    a, b = (kind(t) for t in v)
    if not lo <= a <= b <= hi:
        raise f.fail(key, f"{[a, b]} is out of range: allowed {lo} <= low <= high <= {hi} ({what})")
    return a, b


def parse_judge_recipe(data: dict, source: str = "<memory>") -> JudgeRecipe:
    """Validate a judge recipe's table; every error names the file, the field and what is allowed."""
    f = Fields(data, source)
    kwargs = f.get("model_kwargs", dict, {})
    r = JudgeRecipe(
        name=f.get("name", str),
        model=f.get("model", str),
        task=f.get("task", str, allowed=TASKS),
        image_size=f.get("image_size", int, lo=16, hi=1024),
        mean=_triple(f, "mean"), std=_triple(f, "std"),
        pretrained=f.get("pretrained", str, DEFAULTS["pretrained"]),
        freeze=tuple(_prefixes(f, "freeze")),
        model_kwargs=json.dumps(kwargs, sort_keys=True) if kwargs else "",
        concept=f.get("concept", str, DEFAULTS["concept"]),
        epochs=f.get("epochs", int, DEFAULTS["epochs"], lo=1, hi=10_000),
        batch_size=f.get("batch_size", int, DEFAULTS["batch_size"], lo=1, hi=65_536),
        lr=_number(f, "lr"), weight_decay=_number(f, "weight_decay"),
        optimizer=f.get("optimizer", str, DEFAULTS["optimizer"], allowed=timm.optim.list_optimizers()),
        scheduler=f.get("scheduler", str, DEFAULTS["scheduler"], allowed=SCHEDULERS),
        min_lr=_number(f, "min_lr"), warmup_epochs=_number(f, "warmup_epochs"), ema_decay=_number(f, "ema_decay"),
        label_smoothing=_number(f, "label_smoothing"), crop_scale=_number(f, "crop_scale"),
        hflip=f.get("hflip", bool, DEFAULTS["hflip"]),
        degrade_prob=_number(f, "degrade_prob"),
        degrade_blur=_range(f, "degrade_blur", float, 0.1, 10.0, "Gaussian sigma, px"),
        degrade_scale=_range(f, "degrade_scale", float, 1.0, 16.0, "downscale factor"),
        degrade_jpeg=_range(f, "degrade_jpeg", int, 1, 100, "JPEG quality"),
        workers=f.get("workers", int, DEFAULTS["workers"], lo=0, hi=64),
        seed=f.get("seed", int, DEFAULTS["seed"], lo=0),
        source=source,
    )
    f.get("description", str, "")
    f.get("note", str, "")
    f.check_unknown()
    _check_ranges(f, r)
    return r


def _check_ranges(f: Fields, r: JudgeRecipe) -> None:
    """What each field's type does not say: positive std, ordered learning rates, a warmup within the run,
    a concept exactly for the binary task."""
    if not 0 < r.crop_scale <= 1:
        raise f.fail("crop_scale", f"{r.crop_scale} is out of range: allowed (0, 1]")
    if min(r.std) <= 0:
        raise f.fail("std", f"{list(r.std)}: allowed positive numbers (images are divided by them)")
    for key in ("lr", "min_lr", "weight_decay", "warmup_epochs", "label_smoothing"):
        if getattr(r, key) < 0 or (key == "lr" and r.lr == 0):
            raise f.fail(key, f"{getattr(r, key)} is out of range: allowed {'> 0' if key == 'lr' else '>= 0'}")
    if r.min_lr > r.lr:
        raise f.fail("min_lr", f"{r.min_lr} is above lr {r.lr}: allowed 0 <= min_lr <= lr")
    if r.warmup_epochs > r.epochs:
        raise f.fail("warmup_epochs", f"{r.warmup_epochs} is more than the {r.epochs} epochs: allowed <= epochs")
    if not 0 <= r.degrade_prob <= 1:
        raise f.fail("degrade_prob", f"{r.degrade_prob} is out of range: allowed [0, 1] (0 = no degradation)")
    if not 0 <= r.ema_decay < 1:
        raise f.fail("ema_decay", f"{r.ema_decay} is out of range: allowed [0, 1) (0 = no EMA)")
    if r.task == "binary" and not r.concept:
        raise f.fail("concept", "the binary task needs the concept to detect (a concept-set config name)")
    if r.concept and r.task != "binary":
        raise f.fail("concept", f"{r.concept!r} is only read by the binary task (task is {r.task!r})")


def _prefixes(f: Fields, key: str) -> list[str]:
    """Module-name prefixes, each non-empty and listed once."""
    value = f.get(key, list, [])
    if not all(isinstance(v, str) and v for v in value):
        raise f.fail(key, "expected a list of module-name prefixes such as \"blocks.0\"")
    if len(set(value)) != len(value):
        raise f.fail(key, f"lists {sorted({v for v in value if value.count(v) > 1})} more than once")
    return value


def load_judge_recipe(name_or_path: str | Path) -> JudgeRecipe:
    """A judge recipe by shipped name (`effnet-lite0-cpu`, `vit-base`, `vit-large-uc`, ...) or path."""
    path = resolve_recipe_path(name_or_path, kind="classifiers")
    return parse_judge_recipe(load_toml(path), str(path))
