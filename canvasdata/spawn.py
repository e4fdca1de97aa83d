"""Start a command's ranks from the command itself: what `torchrun --standalone --nproc-per-node N -m
canvasdata.cli ...` does, through torch's own launcher (`torch.distributed.launcher.elastic_launch`), so that
one plain command uses a CPU's cores the way the measured runs did. The ranks print their own errors; the
launcher only waits and passes on the first failed rank's exit status."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Iterator, Sequence

import torch
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from canvasdata.devices import Rank, usable_cores

AUTO = "auto"
CPU_RANKS = 2          # ranks `auto` starts on a CPU with at least this many cores (measured: docs/world.md)
INTERRUPTED = 130
# set for the ranks unless the caller's environment says otherwise: one thread a rank (torchrun's own default
# for more than one rank), and OpenMP threads that sleep instead of spinning while a rank waits at a collective
RANK_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def under_torchrun() -> bool:
    """Whether this process is already one of several ranks (torchrun or this module started it)."""
    return Rank.from_env().world > 1 or "LOCAL_RANK" in os.environ


def ranks_for(requested: str | int, device: torch.device) -> int:
    """How many ranks to start: `requested` as given, or for `auto` CPU_RANKS on a CPU with that many
    usable cores (2 ranks of one thread generated 2.0x the images of one process of two on 2 cores, and the
    ESD requests run side by side), else 1 (one GPU, MPS, or a single core)."""
    if requested != AUTO:
        return int(requested)
    return CPU_RANKS if device.type == "cpu" and usable_cores() >= CPU_RANKS else 1


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """Silence the launcher's own log lines (its failure summary, the signals it sends to the ranks) while it
    runs: the ranks say what went wrong, in one line each."""
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def run_ranks(n: int, argv: Sequence[str]) -> int:
    """`canvasdata ARGV` as `n` local ranks (a c10d rendezvous on a free port, no restarts); the exit status
    of the first rank that failed (128 + the signal of one killed), 128 + the signal that stopped the launcher
    (130: Ctrl-C), else 0."""
    for key, value in RANK_ENV.items():
        os.environ.setdefault(key, value)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=n, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0)
    try:
        with _quiet_launcher():
            elastic_launch(config, sys.executable)("-m", "canvasdata.cli", *argv)
    except ChildFailedError as e:
        _, failure = e.get_first_failure()
        return failure.exitcode if failure.exitcode > 0 else 128 - failure.exitcode   # killed: 128 + signal
    except SignalException as e:   # the launcher was signalled (Ctrl-C: SIGINT) and stopped the ranks with it
        return 128 + int(e.sigval)
    except KeyboardInterrupt:
        return INTERRUPTED
    return 0
