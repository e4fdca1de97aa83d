"""Run a build: plan -> shards (in parallel workers or torchrun ranks) -> manifest, card, preview.

The content source and painter are made once per process (`sources.make_backends`: in the building
process, and in each worker on its first shard) and render every shard that process builds; a diffusers
pipeline is therefore loaded once per process, not once per shard.

Rendering on the CPU uses one torch thread a process (`RENDER_THREADS`): torch splits a kernel's sums by
its thread count, so with the machine's default the pixels of a build would depend on how many cores it
has. Cores are used by processes instead: `workers=None` (the command line's `--workers auto`) starts one
worker per core this rank may use.

A build directory is resumable. Its `.canvasdata/` folder holds the recipe it was started with and
one record per finished shard (sha256, rows, bytes). A rerun keeps every shard whose file still
matches its record and redoes the rest, so an interrupted build, a deleted shard or a corrupt one
costs only that shard.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import multiprocessing.queues
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from canvasdata.dataset.finalize import finalize
from canvasdata.dataset.kinds import dataset_kind
from canvasdata.dataset.plan import ShardPlan
from canvasdata.dataset.state import BuildError, build_lock, prepare_output, shard_is_complete, write_record
from canvasdata.devices import Rank, Session, cores_per_local_rank, intra_op_threads, join_ranks, resolve_device
from canvasdata.fields import RecipeError
from canvasdata.formats import ShardRecord, write_shard
from canvasdata.manifest import Manifest
from canvasdata.recipes import Recipe
from canvasdata.recipes.portable import portable_recipe
from canvasdata.sources import Backends, make_backends

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
RENDER_THREADS = 1    # torch intra-op threads of a process rendering on the CPU: the bytes must not depend on it
# `--workers auto` renders a small build in the building process: a worker process takes seconds to start
# (it imports torch), more than it saves below about 8 s of one core's rendering (bench/build.py: the 100-image
# 256 px mini build takes 1.8 s in one process, 4.9 s with two workers).
AUTO_MIN_PIXELS = 32 * 2**20

__all__ = ["BuildError", "Rank", "build", "build_shard", "shard_is_complete"]


def build_shard(recipe: Recipe, out: Path, shard: ShardPlan, device: str,
                on_images: Callable[[int], None] | None = None, backends: Backends | None = None) -> ShardRecord:
    """Render and write one shard atomically, then its record: any process can build any shard. `backends`:
    the process's own (`make_backends(recipe)`), made here when not given."""
    kind = dataset_kind(recipe)
    backends = backends or make_backends(recipe)
    rows = kind.render(recipe, shard, backends.source, backends.painter, torch.device(device), on_images)
    rec = write_shard(recipe.output.format, out / shard.name, rows, kind.features(recipe),
                      row_group_rows=recipe.output.row_group_rows)
    rec.path = shard.name
    write_record(out, rec)
    return rec


_progress_queue = None  # set in each worker process by _worker_init: where it reports rendered images
_worker_backends: tuple[str, Backends] | None = None  # a worker's backends (made on its first shard), by recipe


def _exit_with(parent: int) -> None:
    """Watch the parent process; exit at once when it is gone (killed: its pool cannot stop us)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _worker_init(threads: int, progress: mp.queues.Queue | None, parent: int) -> None:
    """In each worker process: its torch thread count (`RENDER_THREADS` on the CPU), where it reports
    rendered images, no Ctrl-C of its own (the parent handles it and stops the pool), and death with the
    parent: PR_SET_PDEATHSIG on Linux, a watcher thread everywhere."""
    global _progress_queue
    torch.set_num_threads(threads)
    _progress_queue = progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _backends_of_worker(recipe: Recipe) -> Backends:
    """This worker process's backends for `recipe`: made on its first shard, reused for every later one."""
    global _worker_backends
    key = f"{recipe.hash()} {recipe.source}"
    if _worker_backends is None or _worker_backends[0] != key:
        _worker_backends = (key, make_backends(recipe))
    return _worker_backends[1]


def _worker_build(args: tuple[Recipe, str, ShardPlan, str]) -> int:
    """Build one shard in a worker process with the worker's backends; returns its rows."""
    recipe, out, shard, device = args
    q = _progress_queue
    return build_shard(recipe, Path(out), shard, device, on_images=(lambda n: q.put(n)) if q is not None else None,
                       backends=_backends_of_worker(recipe)).rows


def render_threads(device: torch.device | str) -> int:
    """Torch intra-op threads of a process rendering on `device`: `RENDER_THREADS` on the CPU (so the
    bytes are the same on every machine), the machine's share of cores elsewhere (the GPU does the work)."""
    return RENDER_THREADS if torch.device(device).type == "cpu" else cores_per_local_rank()


def default_workers(device: torch.device | str, pixels: int) -> int:
    """Worker processes of `--workers auto` for `pixels` to render: one per core this rank may use on the CPU
    (each renders with one thread), one for a small build (`AUTO_MIN_PIXELS`) or on a GPU."""
    small = pixels < AUTO_MIN_PIXELS
    return cores_per_local_rank() if torch.device(device).type == "cpu" and not small else 1


def _run_pool(jobs: list, workers: int, threads: int, bar: tqdm, shards_done: int, shards_total: int) -> None:
    """Run shard jobs in `workers` spawned processes, advancing `bar` as each batch of images is
    rendered (not only when a shard is written), and propagating the first worker error. No manager
    process: the progress queue is handed to the workers when they start."""
    ctx = mp.get_context("spawn")
    reported = expected = 0
    progress = ctx.Queue()

    def drain(wait: float) -> None:
        nonlocal reported
        try:
            while True:
                n = progress.get(timeout=wait) if wait else progress.get_nowait()
                bar.update(n)
                reported += n
                wait = 0
        except queue.Empty:
            return

    with ctx.Pool(workers, initializer=_worker_init, initargs=(threads, progress, os.getpid())) as pool:
        pending = [pool.apply_async(_worker_build, (job,)) for job in jobs]
        while pending:
            drain(0.5)
            for res in [r for r in pending if r.ready()]:
                pending.remove(res)
                expected += res.get()
                shards_done += 1
                bar.set_postfix(shards=f"{shards_done}/{shards_total}")
    drain(0)
    progress.close()
    if expected > reported:
        bar.update(expected - reported)


def _checked_backends(recipe: Recipe) -> Backends:
    """The build's backends, made once; fail before any work when a style or object cannot be drawn."""
    try:
        backends = make_backends(recipe)
        backends.painter.check(recipe.styles)
        removes = getattr(backends.source, "supports_removal", False)
        if any(c.domain == "object" for c in recipe.concepts) and not removes:
            raise RecipeError(f"field 'content.source': {recipe.content.source!r} cannot render a scene without its "
                             "object, which object targets of a concept set need; use the procedural source")
    except (KeyError, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        raise BuildError(msg if msg.startswith(f"{recipe.source}: ") else f"{recipe.source}: {msg}") from None
    return backends


def _render_shards(recipe: Recipe, out: Path, shards: list[ShardPlan], session: Session, workers: int | None,
                   progress: bool, backends: Backends) -> None:
    """Build this rank's shards that are not built yet, in `workers` processes (each making its own backends
    once), or here with `backends`, with one progress bar."""
    rank = session.place
    todo = [s for i, s in enumerate(shards) if rank.mine(i) and not shard_is_complete(out, s.name)]
    total = sum(len(s.samples) for i, s in enumerate(shards) if rank.mine(i))
    done_already = total - sum(len(s.samples) for s in todo)
    bar = tqdm(total=total, initial=done_already, unit="img", disable=not progress,
               desc=f"build {recipe.name}" + (f" [rank {rank.rank}]" if rank.world > 1 else ""))
    bar.set_postfix(shards=f"{len(shards) - len(todo)}/{len(shards)}")
    device = str(session.device)
    threads = render_threads(device)
    if workers is None:
        workers = default_workers(device, sum(len(s.samples) for s in todo) * recipe.resolution ** 2)
    try:
        if workers <= 1 or len(todo) <= 1:
            with intra_op_threads(threads):
                for k, shard in enumerate(todo):
                    build_shard(recipe, out, shard, device, on_images=bar.update, backends=backends)
                    bar.set_postfix(shards=f"{len(shards) - len(todo) + k + 1}/{len(shards)}")
        else:
            _run_pool([(recipe, str(out), s, device) for s in todo], min(workers, len(todo)), threads, bar,
                      len(shards) - len(todo), len(shards))
    finally:
        bar.close()


def build(recipe: Recipe, out: Path | str, *, device: str = "cpu", workers: int | None = 1, overwrite: bool = False,
          progress: bool = True, rank: Rank | None = None, preview: bool = True) -> Manifest | None:
    """Build (or resume) a dataset from `recipe` into `out`; returns the manifest (None on ranks > 0).

    `workers` processes split this rank's shards (None: `default_workers`, one per core on the CPU for all
    but small builds); the
    bytes are the same whatever the workers, ranks or cores (`RENDER_THREADS`). Under torchrun, ranks split
    the shards the same way and rank 0 writes the manifest and card once every rank is done. Rank 0 holds
    the directory's lock for the whole build, so a second build of the same directory fails at once.
    """
    out = Path(out)
    dev = resolve_device(device)
    backends = _checked_backends(recipe)
    portable_recipe(recipe)   # the build's copy of the recipe file can be written: checked now, not at the end
    session = join_ranks(dev, rank=rank, backend="gloo", independent=True)
    with build_lock(out) if session.main else contextlib.nullcontext():
        inputs = backends.source.fingerprint()
        if session.main:
            prepare_output(recipe, out, overwrite, inputs)
        session.barrier()
        shards = dataset_kind(recipe).plan(recipe)
        _render_shards(recipe, out, shards, session, workers, progress, backends)
        session.barrier()
        if not session.main:
            return None
        if not session.distributed and session.world > 1:
            missing = [s.name for s in shards if not shard_is_complete(out, s.name)]
            if missing:
                log.warning("rank 0 done; %d shard(s) of other ranks pending: rerun rank 0 when they finish "
                            "to write the manifest", len(missing))
                return None
        with intra_op_threads(render_threads(session.device)):  # the preview is rendered too
            return finalize(recipe, out, shards, session.device, preview=preview, inputs=inputs, backends=backends)
