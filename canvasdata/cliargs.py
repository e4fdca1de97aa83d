"""Command-line pieces that every `canvasdata` command shares, declared once so they read the same
everywhere (names, defaults, help): the parser class with the global `--verbose/--quiet` flags and a
help formatter that shows defaults, `--device`, the batch flags and the Hub upload arguments."""

from __future__ import annotations

import argparse
import os
from typing import Any

from canvasdata.devices import DECODE_WORKERS, DEVICES, JUDGE_BATCH


class DefaultsFormatter(argparse.HelpFormatter):
    """Help text ending in "(default: X)" for every option with a default other than None/False,
    unless the help already says its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults and which takes the global `-v/--verbose` and
    `-q/--quiet` flags both before and after a subcommand's name (subparsers inherit this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)
        loud = self.add_mutually_exclusive_group()
        loud.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="also log debugging detail (default: progress and results)")
        loud.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="no progress bars; log warnings and errors only (default: off)")


def _int_at_least(text: str, lowest: int, what: str) -> int:
    """`text` as an integer >= `lowest`; anything else is argparse's one-line usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type of counts and sizes (batch size, workers of a build, steps, px): an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def ranks_or_auto(text: str) -> str | int:
    """argparse type of a command's --ranks: `auto` (the command decides by its device) or an integer >= 1."""
    return "auto" if text == "auto" else _int_at_least(text, 1, "'auto' or a positive integer")


def workers_or_auto(text: str) -> int | None:
    """argparse type of a build's --workers: `auto` (None: one per core on the CPU) or an integer >= 1."""
    return None if text == "auto" else _int_at_least(text, 1, "'auto' or a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type of counts where 0 means none (image-decoding workers: 0 decodes in the main process)."""
    return _int_at_least(text, 0, "an integer >= 0")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """--device, the same everywhere: `auto` is CUDA when available, else the CPU."""
    p.add_argument("--device", default="auto", help=f"where to run: {DEVICES}")


def add_device_args(p: argparse.ArgumentParser, *, batch_size: int = JUDGE_BATCH, workers: bool = True) -> None:
    """--device, --batch-size and (optionally) --workers of the commands that run a model over images
    (judges, diffusers pipelines)."""
    add_device_arg(p)
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help="images a batch")
    if workers:
        p.add_argument("--workers", type=non_negative_int, default=DECODE_WORKERS,
                       help="image-decoding worker processes (0: decode in the main process)")


def add_hub_args(p: argparse.ArgumentParser) -> None:
    """DIR, REPO_ID, --private and --token of the commands that upload a folder to the Hub."""
    p.add_argument("dir", help="the folder to upload")
    p.add_argument("repo_id", help="the Hub repository, user/name")
    p.add_argument("--private", action="store_true", help="create the repository private (default: public)")
    p.add_argument("--token", default=os.environ.get("HF_TOKEN"),
                   help="Hub token (default: $HF_TOKEN or the saved login)")


def add_partial_arg(p: argparse.ArgumentParser) -> None:
    """--allow-partial of the commands that read a build: use an unfinished or damaged build's good shards."""
    p.add_argument("--allow-partial", action="store_true",
                   help="use an unfinished build, or a build with damaged shards, skipping what fails its checksum "
                        "with a warning (default: refuse, naming the first bad shard)")
