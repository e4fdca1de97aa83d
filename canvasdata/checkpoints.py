"""One training checkpoint format: tensors and a JSON state in one safetensors file, written
temp-then-rename (a kill at any moment leaves the previous checkpoint or the new one, never a mix),
read back with a one-line error of the caller's type when it is truncated or foreign."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from canvasdata.formats.common import atomic_path


def save_state(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], error: type[Exception]) -> None:
    """Write `tensors` (detached, on the CPU) and `meta` (JSON) atomically to `path`."""
    blob = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, error) as tmp:
        safetensors.torch.save_file(blob, str(tmp), {"state": json.dumps(meta)})


def read_meta(path: Path, fmt: str, error: type[Exception]) -> dict[str, Any]:
    """The JSON state of a checkpoint of format `fmt`, from its header alone."""
    try:
        with safetensors.safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {})["state"])
    except Exception as e:  # safetensors raises its own types for a bad header or a short file
        raise error(f"{path}: not a readable training checkpoint ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise error(f"{path}: not a {fmt} training checkpoint")
    return meta


def read_state(path: Path, fmt: str, error: type[Exception], hint: str = "") -> tuple[dict[str, torch.Tensor],
                                                                                     dict[str, Any]]:
    """The tensors and JSON state of a checkpoint; one line naming it (and `hint`, what to do) when it is
    truncated or foreign."""
    meta = read_meta(path, fmt, error)
    try:
        return safetensors.torch.load_file(str(path)), meta
    except Exception as e:  # a truncated file or a bad header
        raise error(f"{path}: corrupt or truncated training checkpoint ({e}){hint}") from None


def under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `tensors` whose key starts with `prefix`, the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str = "opt.") -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as tensors (`{prefix}{param}.{key}`) and JSON-able values."""
    tensors, values = {}, {}
    for pid, entries in opt.state_dict()["state"].items():
        for k, v in entries.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}{pid}.{k}"] = v
            else:
                values.setdefault(str(pid), {})[k] = v
    return tensors, values


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], values: dict,
                   prefix: str = "opt.") -> None:
    """Restore what `optimizer_tensors` saved (the parameter groups are the optimizer's own)."""
    state: dict[int, dict] = {int(pid): dict(v) for pid, v in values.items()}
    for k, v in under(tensors, prefix).items():
        pid, name = k.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
