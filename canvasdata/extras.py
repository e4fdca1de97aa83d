"""Optional extras imported on first use: a command whose module needs an extra (diffusers, transformers,
...) imports it here, so the bare command line starts without the extra and a missing one is one line
naming what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from canvasdata.errors import MissingExtraError


def load_extra(module: str, extra: str) -> ModuleType:
    """Import `module` (e.g. "canvasdata.unlearn.esd"); a third-party package it needs that is missing
    becomes a MissingExtraError saying `pip install 'canvasdata[EXTRA]'`. A missing canvasdata module is
    a bug and keeps its traceback."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        missing = e.name or "a dependency"
        if missing.partition(".")[0] == "canvasdata" or isinstance(e, MissingExtraError):
            raise
        raise MissingExtraError(f"{module} needs {missing}, which is not installed: "
                                f"pip install 'canvasdata[{extra}]'") from None
