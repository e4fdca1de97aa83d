"""The `canvasdata` console entry point. Loading the command line takes seconds (torch, datasets); a Ctrl-C
in that time is an interruption like any other: one line and exit 130, no traceback. So the handler is
set before the command line is imported, and `main` handles Ctrl-C from then on."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

INTERRUPTED = 130


def _interrupted_while_loading(signum: int, frame: FrameType | None) -> None:
    """Leave at once: nothing has been written yet, and unwinding a half-done import only adds noise."""
    print("interrupted while loading; nothing was done", file=sys.stderr, flush=True)
    os._exit(INTERRUPTED)


signal.signal(signal.SIGINT, _interrupted_while_loading)

from canvasdata.cli import main  # noqa: E402  (after the handler: this import is the slow part)


def run() -> None:
    """Run the command line with the usual Ctrl-C handling (KeyboardInterrupt, caught by `main`)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
