"""Optional extras imported on first use: a command whose module needs an extra (diffusers, transformers,
...) imports it here, so the bare command line starts without the extra and a missing one is one line
naming what to install."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Iterator
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


QUIETED = ("diffusers", "transformers")  # libraries whose own bars and warnings `--quiet` silences


@contextlib.contextmanager
def library_bars(show: bool) -> Iterator[None]:
    """diffusers' and transformers' loading/saving bars and warnings (those installed), off unless `show`;
    their settings are restored afterwards. `--quiet` runs every command inside `library_bars(False)`."""
    if show:
        yield
        return
    libraries = [importlib.import_module(f"{name}.utils.logging") for name in QUIETED if importlib.util.find_spec(name)]
    before = [(lib.is_progress_bar_enabled(), lib.get_verbosity()) for lib in libraries]
    for lib in libraries:
        lib.disable_progress_bar()
        lib.set_verbosity_error()
    try:
        yield
    finally:
        for lib, (bars, verbosity) in zip(libraries, before, strict=True):
            (lib.enable_progress_bar if bars else lib.disable_progress_bar)()
            lib.set_verbosity(verbosity)
