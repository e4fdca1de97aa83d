"""The attacks' figures and resumable state, written atomically (`formats.common.atomic_path`: a temporary
name beside the file, then a rename, so an interrupted run never leaves half a file), and their settings
record, which a resumed run must match."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from canvasdata.errors import UsageError
from canvasdata.folders import refuse_changed
from canvasdata.formats.common import atomic_path, write_json


def save_image(path: Path | str, image: Image.Image) -> None:
    """A PNG written atomically."""
    with atomic_path(Path(path)) as tmp:
        image.save(tmp, format="PNG")


def save_state(path: Path | str, state: dict) -> None:
    """A resumable state (tensors, numbers, strings, lists, dicts) with torch.save, written atomically."""
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


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
        refuse_changed(path.parent, "the attack there ran", json.loads(path.read_text()), settings, settings)
    write_json(path, settings)
