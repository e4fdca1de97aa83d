"""One process at a time in a folder: a lock file created exclusively, holding the holder's pid, host and
start time. A second process fails at once with one line naming the holder; a lock left by a process of
this host that is gone is stale and taken over. Builds and judge training hold one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from canvasdata.errors import CanvasdataError

log = logging.getLogger(__name__)


class LockError(CanvasdataError, RuntimeError):
    """A folder another process is working in."""


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def check_unlocked(path: Path, doing: str) -> None:
    """Readers' side of `folder_lock`: a LockError naming the holder while another live process of this
    host holds `path` (a stale lock, or this process's own, lets the reader through)."""
    if not path.exists():
        return
    other = _holder(path)
    pid = int(other.get("pid", 0) or 0)
    if other.get("host") == socket.gethostname() and (pid == os.getpid() or not pid_alive(pid or -1)):
        return
    raise LockError(f"{doing} by pid {other.get('pid', '?')} on {other.get('host', '?')} (since "
                    f"{other.get('since', '?')}); wait for it to finish")


@contextlib.contextmanager
def folder_lock(path: Path, doing: str) -> Iterator[None]:
    """Hold the lock file `path` (its folder must exist) while the caller works; `doing` says what, for the
    message another process gets ("DIR is being built")."""
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for attempt in (1, 2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            other = _holder(path)
            stale = other.get("host") == me["host"] and not pid_alive(int(other.get("pid", 0)) or -1)
            if attempt == 2 or not stale:
                raise LockError(f"{doing} by pid {other.get('pid', '?')} on {other.get('host', '?')} (since "
                                f"{other.get('since', '?')}); wait for it to finish, or delete {path} if that "
                                "process is gone") from None
            log.warning("%s: taking over the stale lock of pid %s (no longer running)", path, other.get("pid"))
            path.unlink(missing_ok=True)
    with os.fdopen(fd, "w") as f:
        json.dump(me, f)
    try:
        yield
    finally:
        if _holder(path).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)
