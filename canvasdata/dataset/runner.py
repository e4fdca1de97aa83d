"""Run a build: plan -> shards (in parallel workers or torchrun ranks) -> manifest, card, preview.

A build directory is resumable. Its `.canvasdata/` folder holds the recipe it was started with and
one record per finished shard (sha256, rows, bytes). A rerun keeps every shard whose file still
matches its record and redoes the rest, so an interrupted build, a deleted shard or a corrupt one
costs only that shard.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from canvasdata.dataset.kinds import dataset_kind
from canvasdata.dataset.plan import ShardPlan
from canvasdata.formats import ShardRecord, sha256_file, write_shard
from canvasdata.formats.common import atomic_writer
from canvasdata.recipes import Recipe
from canvasdata.sources import make_painter, make_source

STATE = ".canvasdata"
BUILD_OUTPUTS = ("data", STATE, "manifest.json", "README.md", "preview.jpg", "recipe.toml")


class BuildError(RuntimeError):
    """A build that cannot start or finish; nothing already built is lost."""


@dataclass(frozen=True)
class Rank:
    """This process's place among torchrun ranks (rank 0 of 1 when not under torchrun)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Rank:
        env = dict(os.environ) if env is None else env
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    def mine(self, i: int) -> bool:
        return i % self.world == self.rank


def write_json(path: Path, data: object) -> None:
    """Atomically write pretty JSON."""
    with atomic_writer(path) as f:
        f.write((json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


def _record_path(out: Path, shard_name: str) -> Path:
    return out / STATE / "shards" / (shard_name.replace("/", "__") + ".json")


def shard_is_complete(out: Path, shard_name: str) -> bool:
    """A shard counts as built when its record exists and the file still has the recorded checksum."""
    rec_path, path = _record_path(out, shard_name), out / shard_name
    if not rec_path.exists() or not path.exists():
        return False
    try:
        rec = json.loads(rec_path.read_text())
    except json.JSONDecodeError:
        return False
    return path.stat().st_size == rec.get("bytes") and sha256_file(path) == rec.get("sha256")


def prepare_output(recipe: Recipe, out: Path, overwrite: bool) -> None:
    """Refuse to mix builds: an output directory of another recipe is kept unless `overwrite`."""
    state = out / STATE / "build.json"
    if out.exists() and any(out.iterdir()):
        if state.exists():
            other = json.loads(state.read_text())
            if other.get("recipe_hash") != recipe.hash() and not overwrite:
                raise BuildError(
                    f"{out} holds a build of another recipe ({other.get('recipe_name')!r}, hash "
                    f"{other.get('recipe_hash', '')[:12]}); use another --out, or --overwrite to replace it")
        elif not overwrite:
            raise BuildError(f"{out} is not empty and holds no canvasdata build; use an empty directory "
                             "or --overwrite")
        if overwrite and (not state.exists() or json.loads(state.read_text()).get("recipe_hash") != recipe.hash()):
            for name in BUILD_OUTPUTS:
                target = out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "data").rglob(".*.tmp") if (out / "data").exists() else ():
        stale.unlink(missing_ok=True)
    write_json(state, {"recipe_name": recipe.name, "recipe_hash": recipe.hash(), "recipe": recipe.to_dict()})


def build_shard(recipe: Recipe, out: Path, shard: ShardPlan, device: str,
                on_images: Callable[[int], None] | None = None) -> ShardRecord:
    """Render and write one shard atomically, then its record: any process can build any shard."""
    dev = torch.device(device)
    kind = dataset_kind(recipe)
    rows = kind.render(recipe, shard, make_source(recipe), make_painter(recipe), dev, on_images)
    rec = write_shard(recipe.output.format, out / shard.name, rows, kind.features(recipe),
                      **({"row_group_rows": recipe.output.row_group_rows} if recipe.output.format == "parquet" else {}))
    rec.path = shard.name
    write_json(_record_path(out, shard.name), rec.to_dict())
    return rec


_progress_queue = None  # set in each worker process by _worker_init: where it reports rendered images


def _worker_init(threads: int, progress) -> None:
    global _progress_queue
    torch.set_num_threads(threads)
    _progress_queue = progress


def _worker_build(args: tuple[Recipe, str, ShardPlan, str]) -> int:
    recipe, out, shard, device = args
    q = _progress_queue
    return build_shard(recipe, Path(out), shard, device, on_images=(lambda n: q.put(n)) if q is not None else None).rows


def _run_pool(jobs: list, workers: int, threads: int, bar, shards_done: int, shards_total: int) -> None:
    """Run shard jobs in `workers` spawned processes, advancing `bar` as each batch of images is
    rendered (not only when a shard is written), and propagating the first worker error."""
    ctx = mp.get_context("spawn")
    reported = expected = 0
    with ctx.Manager() as manager:
        progress = manager.Queue()

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

        with ctx.Pool(workers, initializer=_worker_init, initargs=(threads, progress)) as pool:
            pending = [pool.apply_async(_worker_build, (job,)) for job in jobs]
            while pending:
                drain(0.5)
                for res in [r for r in pending if r.ready()]:
                    pending.remove(res)
                    expected += res.get()
                    shards_done += 1
                    bar.set_postfix(shards=f"{shards_done}/{shards_total}")
        drain(0)
    if expected > reported:
        bar.update(expected - reported)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BuildError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise BuildError(f"--device {device!r}: allowed cpu, cuda, cuda:N, auto")
    return device


def _check_painters(recipe: Recipe) -> None:
    """Fail before any work when a style or object cannot be drawn."""
    try:
        source = make_source(recipe)
        make_painter(recipe).check(recipe.styles)
        if any(c.domain == "object" for c in recipe.concepts) and not getattr(source, "supports_removal", False):
            raise ValueError(f"field 'content.source': {recipe.content.source!r} cannot render a scene without its "
                             "object, which object targets of a concept set need; use the procedural source")
    except (KeyError, ValueError) as e:
        msg = e.args[0] if e.args else str(e)
        raise BuildError(f"{recipe.source}: {msg}") from None


def build(recipe: Recipe, out: Path | str, *, device: str = "cpu", workers: int = 1, overwrite: bool = False,
          progress: bool = True, rank: Rank | None = None, preview: bool = True) -> dict | None:
    """Build (or resume) a dataset from `recipe` into `out`; returns the manifest (None on ranks > 0).

    `workers` processes split this rank's shards; under torchrun, ranks split the shards the same
    way and rank 0 writes the manifest and card once every rank is done.
    """
    out = Path(out)
    device = resolve_device(device)
    rank = rank or Rank.from_env()
    _check_painters(recipe)
    dist = _maybe_init_distributed(rank)
    if rank.rank == 0:
        prepare_output(recipe, out, overwrite)
    if dist:
        dist.barrier()
    shards = dataset_kind(recipe).plan(recipe)
    todo = [s for i, s in enumerate(shards) if rank.mine(i) and not shard_is_complete(out, s.name)]
    total = sum(len(s.samples) for i, s in enumerate(shards) if rank.mine(i))
    done_already = total - sum(len(s.samples) for s in todo)
    bar = tqdm(total=total, initial=done_already, unit="img", disable=not progress,
               desc=f"build {recipe.name}" + (f" [rank {rank.rank}]" if rank.world > 1 else ""))
    bar.set_postfix(shards=f"{len(shards) - len(todo)}/{len(shards)}")
    try:
        if workers <= 1 or len(todo) <= 1:
            for k, shard in enumerate(todo):
                build_shard(recipe, out, shard, device, on_images=bar.update)
                bar.set_postfix(shards=f"{len(shards) - len(todo) + k + 1}/{len(shards)}")
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            _run_pool([(recipe, str(out), s, device) for s in todo], workers, threads, bar,
                      len(shards) - len(todo), len(shards))
    finally:
        bar.close()
    if dist:
        dist.barrier()
    if rank.rank != 0:
        return None
    if not dist and rank.world > 1:
        missing = [s.name for s in shards if not shard_is_complete(out, s.name)]
        if missing:
            print(f"rank 0 done; {len(missing)} shard(s) of other ranks pending: rerun rank 0 when they finish "
                  "to write the manifest", flush=True)
            return None
    from canvasdata.dataset.finalize import finalize

    return finalize(recipe, out, shards, device, preview=preview)


def _maybe_init_distributed(rank: Rank):
    """Under torchrun (WORLD_SIZE > 1 and MASTER_ADDR set) join the process group (gloo) for the two
    barriers. Ranks given without a rendezvous (e.g. a job array) run independently instead: rank 0
    writes the manifest once every shard is built, and a rerun of rank 0 finishes a build whose other
    ranks finished later."""
    if rank.world <= 1 or "MASTER_ADDR" not in os.environ:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return dist
