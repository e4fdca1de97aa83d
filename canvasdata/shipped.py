"""Where the shipped data lives: dataset recipes (`builders`), judge recipes (`classifiers`) and card
templates (`cards`). The top of the source tree holds them; a wheel carries them under
`canvasdata/resources`."""

from __future__ import annotations

from pathlib import Path


def builtin_dir(kind: str = "builders") -> Path:
    """Folder of the shipped recipes or templates (`builders`, `classifiers`, `models`, `cards`)."""
    here = Path(__file__).resolve().parent
    top = here.parent / kind
    return top if top.is_dir() else here / "resources" / kind
