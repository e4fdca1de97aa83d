"""Where work runs: the device, and this process's place among `torchrun` ranks.

One set-up for every command that runs on a device: builds (ranks split the shards) and judge training
(DDP). `torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR; a process started without it is
rank 0 of 1. No home-made cluster code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from canvasdata.errors import CanvasdataError

T = TypeVar("T")
K = TypeVar("K")
DEVICES = "cpu, cuda, cuda:N, mps or auto"
JUDGE_BATCH = 64       # images a judge forward pass takes, by default (evaluation, scoring, prediction)
DECODE_WORKERS = 2     # image-decoding worker processes, by default
# How long a rank waits for its partners at a collective before it fails. Long, because some steps are rank 0's
# alone while the others wait at the next barrier (a world's retrained comparison, a sweep's scoring,
# the end of every command): torch's default (30 min for gloo, 10 for nccl) would fail a healthy run.
RANK_TIMEOUT = timedelta(hours=6)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the platform says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cores_per_local_rank() -> int:
    """This rank's share of the machine's cores under torchrun (LOCAL_WORLD_SIZE ranks on one machine)."""
    return max(1, usable_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads, then restore the count. On the CPU torch splits a
    kernel's sums by thread count, so work whose bytes must not depend on the machine pins it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DeviceError(CanvasdataError, ValueError):
    """A device that does not exist here, or ranks that cannot meet."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto` is CUDA when available, else the CPU; any other name must exist on this machine."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"--device {name!r}: allowed {DEVICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"--device {name!r}: allowed {DEVICES}")
    return device


@dataclass(frozen=True)
class Rank:
    """This process's place among torchrun ranks (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Rank:
        """RANK and WORLD_SIZE as torchrun (or a job array) sets them."""
        env = os.environ if env is None else env
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, i: int) -> bool:
        """Whether work item `i` (a shard) is this rank's: items are dealt round-robin."""
        return i % self.world == self.rank


@dataclass
class Session:
    """Where this process works: its device, its place among ranks, and whether it joined a process group."""

    device: torch.device
    rank: int = 0
    world: int = 1
    distributed: bool = False

    @classmethod
    def alone(cls, device: str | torch.device = "cpu") -> Session:
        """One process, no ranks: what a library call runs as when no torchrun session is given."""
        return cls(torch.device(device))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device_or(self, requested: str) -> str:
        """Where to load models: this rank's device under torchrun, else the `requested` one as given."""
        return str(self.device) if self.world > 1 else requested

    @property
    def place(self) -> Rank:
        """This process's place among the ranks."""
        return Rank(self.rank, self.world)

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for outside a process group)."""
        if self.distributed:
            dist.barrier()

    def share(self, value: T) -> T:
        """Rank 0's `value` on every rank (picklable; the value itself outside a process group)."""
        if not self.distributed:
            return value
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 alone and hand its result to every rank. A canvasdata error it raises is
        raised on every rank, so that no rank waits for a partner that has failed."""
        result: T | None = None
        error: CanvasdataError | None = None
        if self.main:
            try:
                result = fn()
            except CanvasdataError as e:
                if not self.distributed:
                    raise
                error = e
        result, error = self.share((result, error))
        if error is not None:
            raise error
        return result  # type: ignore[return-value]

    def merge(self, part: dict[K, T]) -> dict[K, T]:
        """The union of every rank's `part` (picklable), on every rank: what each rank made of the items
        `deal` gave it, keyed so that the caller can put them back in order."""
        if not self.distributed:
            return dict(part)
        parts: list[dict[K, T]] = [{}] * self.world
        dist.all_gather_object(parts, part)
        return {k: v for p in parts for k, v in p.items()}

    def deal(self, items: Sequence[T]) -> list[T]:
        """This rank's share of `items`: dealt round-robin by position, so every rank can tell which are
        whose from the same list."""
        return [x for i, x in enumerate(items) if self.place.mine(i)]


def join_ranks(device: str | torch.device = "auto", *, rank: Rank | None = None, backend: str | None = None,
               independent: bool = False) -> Session:
    """Resolve the device and, under torchrun (WORLD_SIZE > 1 with a MASTER_ADDR rendezvous), join the
    default process group: `backend` (default: nccl on CUDA, else gloo). On CUDA each rank takes the
    GPU of its LOCAL_RANK.

    Ranks without a rendezvous (e.g. a job array setting RANK and WORLD_SIZE) work `independent`ly when
    the caller allows it (builds: each rank writes its own shards); otherwise that is a DeviceError.
    """
    dev = resolve_device(device)
    rank = rank or Rank.from_env()
    if rank.world <= 1:
        return Session(dev, rank.rank, rank.world)
    if "MASTER_ADDR" not in os.environ:
        if independent:
            return Session(dev, rank.rank, rank.world)
        raise DeviceError(f"WORLD_SIZE={rank.world} but no MASTER_ADDR to meet at: start the ranks with torchrun")
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"), timeout=RANK_TIMEOUT)
    return Session(dev, rank.rank, rank.world, distributed=True)


def leave_ranks(finished: bool) -> None:
    """Leave the process group this process joined (nothing to do outside one). A rank that `finished` its
    command first waits for every other rank, so that none exits while a partner still works or talks:
    gloo aborts a process ("terminate called without an active exception") whose group is torn down at
    interpreter exit under a partner's traffic. A rank that failed leaves at once (torchrun stops the rest)."""
    if not dist.is_initialized():
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()
