"""Reading back what a model folder holds: a file's sha256 and one component's safetensors weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights(folder: Path, component: str) -> dict[str, torch.Tensor]:
    """The tensors of `folder/component/*.safetensors` (one file)."""
    (path,) = (folder / component).glob("*.safetensors")
    return load_file(str(path))
