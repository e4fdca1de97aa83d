"""Atomic writes for the attacks' reports, figures and resumable state: every file is written to a
temporary name beside it and renamed into place, so an interrupted run never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from canvasdata.errors import UsageError


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def write_text(path: Path | str, text: str) -> Path:
    """Write `text` to `path` atomically (temporary file, then rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(path: Path | str, data: Any) -> Path:
    """`data` as indented JSON, written atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def save_image(path: Path | str, image: Image.Image) -> Path:
    """A PNG written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_state(path: Path | str, state: dict) -> Path:
    """A resumable state (tensors, numbers, strings, lists, dicts) with torch.save, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_state(path: Path | str) -> dict | None:
    """A state saved by `save_state` (loaded with weights_only=True), or None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged file: torch raises several types (pickle, zip, runtime)
        raise UsageError(f"{path}: unreadable attack state ({e}); delete it to restart that prompt's attack") from None


def check_settings(path: Path | str, settings: dict) -> None:
    """Record `settings` at `path`; when a record is already there (a resumed run), refuse settings that
    differ from it, naming each change."""
    path = Path(path)
    if path.exists():
        old = json.loads(path.read_text())
        changed = [k for k in settings if k in old and old[k] != settings[k]]
        if changed:
            diff = ", ".join(f"{k}: {old[k]!r} -> {settings[k]!r}" for k in changed)
            raise UsageError(f"{path.parent}: the attack there ran with other settings ({diff}); "
                             "use another folder or the same settings")
    write_json(path, settings)
