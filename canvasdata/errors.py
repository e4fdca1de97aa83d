"""The base of canvasdata's own errors: what the library raises for bad input (a recipe, a name, a
file, a device) rather than for a bug. The command line prints these as one line `error: ...` and
exits 2; any other exception keeps its traceback. Each subclass also keeps its standard base
(ValueError, RuntimeError, ...) so callers' `except` clauses go on working."""

from __future__ import annotations


class CanvasdataError(Exception):
    """Bad input or a request canvasdata cannot carry out, worded for the user."""


class UsageError(CanvasdataError, ValueError):
    """A command's input is unusable as given: a missing or malformed folder, file, option or name."""


class MissingFileError(CanvasdataError, FileNotFoundError):
    """A file the user named does not exist."""


class MissingExtraError(CanvasdataError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra to install."""


class ModelError(CanvasdataError, RuntimeError):
    """A text-to-image model folder or training state that cannot be used as given."""
