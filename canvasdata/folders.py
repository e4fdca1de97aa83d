"""What canvasdata's writers leave in a folder that may hold other files, and how a command cleans up only
its own: the temporary names of atomic writes (`.NAME.PID.tmp`, made by `formats.common.atomic_path`),
removing files with the folders they leave empty, naming files in a one-line message, and refusing a rerun
whose settings differ from those a folder's work was done with. Which files are
a command's own is the command's to say (`dataset.state.owned_files`, `judges.output.sort_files`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from canvasdata.errors import UsageError

TEMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")   # an atomic write's temporary file: .NAME.PID.tmp


def temp_path(path: Path) -> Path:
    """The temporary sibling through which this process writes `path`: `.NAME.PID.tmp`."""
    return path.parent / f".{path.name}.{os.getpid()}.tmp"


def temp_of(name: str) -> tuple[str, int] | None:
    """(NAME, PID) when the file name `name` is an atomic write's temporary file `.NAME.PID.tmp`, else None."""
    m = TEMP.fullmatch(name)
    return (m["name"], int(m["pid"])) if m else None


def remove_files(root: Path, files: Iterable[str]) -> None:
    """Delete `files` (relative to `root`), then the folders they leave empty (not `root` itself)."""
    files = list(files)
    for rel in files:
        (root / rel).unlink(missing_ok=True)
    for folder in sorted({(root / rel).parent for rel in files}, key=lambda p: len(p.parts), reverse=True):
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def listing(names: Sequence[str], most: int) -> str:
    """At most `most` of `names`, comma-separated, then "and N more"."""
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def refuse_changed(folder: Path, what: str, recorded: Mapping, settings: Mapping, keys: Iterable[str]) -> None:
    """A rerun continues the work in `folder` only with the settings it was done with: a UsageError naming
    each of `keys` that `recorded` holds with another value than `settings` ("FOLDER: WHAT with other
    settings (k: old -> new); use another folder or the same settings")."""
    changed = [k for k in keys if k in recorded and recorded[k] != settings[k]]
    if changed:
        diff = ", ".join(f"{k}: {recorded[k]!r} -> {settings[k]!r}" for k in changed)
        raise UsageError(f"{folder}: {what} with other settings ({diff}); use another folder or the same settings")
