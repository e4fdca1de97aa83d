"""Train a judge from a recipe, the way timm trains: `create_optimizer_v2` (no weight decay on norms,
biases and position embeddings), a timm scheduler stepped per update, torchvision v2 augmentation on the
full-resolution image, optional weight EMA, frozen early stages for CPU budgets, channels-last tensors,
bf16 autocast on CUDA only, DDP under torchrun and held-out accuracy each epoch.

Resume is exact: one checkpoint file (checkpoint/last.safetensors, written temp-then-rename) holds the
weights, EMA, optimizer, scheduler, RNG states and the data position (epoch and batches done in it), and
the data order and augmentation derive from the recipe seed, the epoch and the sample alone, so an
interrupted run resumed on the CPU ends bit-identical to an uninterrupted one, whatever the workers."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import timm.optim
import timm.scheduler
import timm.utils
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from canvasdata.checkpoints import read_meta, read_state, under
from canvasdata.data import ImageLabels, LabelledImages, load_split, make_loader, train_transform
from canvasdata.devices import Session, join_ranks
from canvasdata.formats.common import write_json
from canvasdata.judges.backbone import create_backbone, start_license
from canvasdata.judges.card import judge_card
from canvasdata.judges.io import (
    CHECKPOINT,
    LEGACY_CHECKPOINT,
    LOCK,
    STAGING,
    TEMP,
    is_judge_dir,
    remove_files,
    save_judge,
    sort_files,
    write_atomically,
)
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo
from canvasdata.judges.recipe import JudgeRecipe
from canvasdata.locks import folder_lock
from canvasdata.manifest import MANIFEST, STATE, Manifest, open_build

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "canvasdata-judge-checkpoint/1"


def accuracy(judge: nn.Module, loader, device: torch.device, amp: bool) -> dict[str, float]:
    """Top-1 accuracy per task over a loader."""
    judge.eval()
    correct: dict[str, int] = {}
    total = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            for t, logits in judge.logits(x).items():
                correct[t] = correct.get(t, 0) + int((logits.argmax(1).cpu() == y[t]).sum())
            total += x.shape[0]
    return {t: c / max(total, 1) for t, c in correct.items()}


def freeze(judge: Judge, prefixes: tuple[str, ...]) -> list[nn.Module]:
    """Fix the backbone parameters under `prefixes`; returns the frozen modules (kept in eval mode so
    their BatchNorm statistics stay those of the starting weights)."""
    modules = dict(judge.backbone.named_modules())
    frozen = []
    for prefix in prefixes:
        if prefix not in modules:
            top = ", ".join(n for n, _ in judge.backbone.named_children())
            raise JudgeError(f"field 'freeze': {prefix!r} is no module of {judge.info.model}; top-level modules: {top}")
        frozen.append(modules[prefix])
        for p in modules[prefix].parameters():
            p.requires_grad_(False)
    return frozen


@dataclass
class Data:
    train: LabelledImages
    test: LabelledImages | None
    facts: dict = field(default_factory=dict)


def read_manifest(data: str | Path, allow_partial: bool = False) -> Manifest | None:
    """The build's manifest (checked as every reader does: `manifest.open_build`), or None for a `datasets`
    dataset, or for an unfinished build used with `allow_partial`."""
    path = Path(data)
    if (path / MANIFEST).exists() or (path / STATE).is_dir():
        return open_build(path, allow_partial=allow_partial)
    return None


def run_identity(recipe: JudgeRecipe, data: str | Path, manifest: Manifest | None) -> dict:
    """What makes a checkpoint this run's: the training recipe (the sha256 of its fields, all but
    `workers`, which does not change the result) and the data (the build's recipe hash, else the source:
    a local folder's absolute path or a Hub id)."""
    fields = {k: v for k, v in recipe.to_dict().items() if k != "workers"}
    recipe_hash = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    where = Path(data).resolve() if Path(data).exists() else data
    source = ({"recipe": manifest.recipe_name, "recipe_hash": manifest.recipe_hash} if manifest is not None
              else {"source": str(where)})
    return {"recipe": recipe.name, "recipe_hash": recipe_hash, "data": source}


def load_data(recipe: JudgeRecipe, data: str | Path, allow_partial: bool = False) -> Data:
    """The train and (if any) test split, and the facts of the build they come from; a damaged or unfinished
    build is refused unless `allow_partial` (then its good shards are used)."""
    concept = recipe.concept or None
    manifest = read_manifest(data, allow_partial)
    train = load_split(data, "train", recipe.tasks, concept, manifest=manifest, allow_partial=allow_partial)
    try:
        test = load_split(data, "test", recipe.tasks, concept, manifest=manifest, allow_partial=allow_partial)
    except ValueError:
        test = None
    facts: dict = {"source": str(data)}
    if manifest is not None:
        facts.update(recipe=manifest.recipe_name, recipe_hash=manifest.recipe_hash)
    return Data(train, test, facts)


def build_judge(recipe: JudgeRecipe, data: Data) -> Judge:
    """Backbone (from the recipe's starting weights) with one head per task, and the facts it carries."""
    info = JudgeInfo(model=recipe.model, tasks=recipe.tasks, class_names=data.train.class_names,
                     label_space=data.train.label_space, image_size=recipe.image_size, mean=recipe.mean,
                     std=recipe.std, model_kwargs=recipe.kwargs,
                     data={**data.facts, "training_recipe": recipe.name, "start_weights": recipe.pretrained or "none",
                           "start_license": start_license(recipe.pretrained)})
    first = recipe.tasks[0]
    backbone = create_backbone(recipe.model, len(info.class_names[first]), recipe.image_size, recipe.kwargs,
                               recipe.pretrained)
    return Judge(backbone, info).to(memory_format=torch.channels_last)


def mix(*parts: int) -> int:
    """A 63-bit seed derived from integers (blake2b): nearby inputs give unrelated random streams."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") >> 1


class EpochSampler(Sampler):
    """The training order: a permutation drawn from (seed, epoch) alone, padded and dealt over the
    ranks as DistributedSampler does, yielding (epoch, index) keys; `set_epoch(epoch, start)` starts
    part-way through an epoch (a resume)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.per_rank = math.ceil(n / world)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate over epoch `epoch`'s order from its `start`-th sample (of this rank) on."""
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        """This rank's sample indices for the current epoch, in order."""
        g = torch.Generator().manual_seed(mix(self.seed, self.epoch))
        perm = torch.randperm(self.n, generator=g).tolist()
        total = self.per_rank * self.world
        perm = (perm * math.ceil(total / self.n))[:total]
        return perm[self.rank::self.world]

    def __iter__(self):
        return iter([(self.epoch, i) for i in self.order()[self.start:]])

    def __len__(self) -> int:
        return self.per_rank - self.start


class SeededSamples(Dataset):
    """Training samples keyed (epoch, index) whose augmentation draws from (seed, epoch, index) alone,
    not from the process's random state: any worker, in any order, after any resume, gives the same
    crop and flip, and the trainer's own random state (dropout) is left untouched."""

    def __init__(self, samples: ImageLabels, seed: int) -> None:
        self.samples, self.seed = samples, seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix(self.seed, epoch, i))
            return self.samples[i]


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from its torch seed (the loader's base seed, drawn
    from a generator seeded with the recipe seed, plus the worker id)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def train_loader(recipe: JudgeRecipe, data: LabelledImages, session: Session) -> DataLoader:
    """The training DataLoader: EpochSampler order, SeededSamples augmentation, worker processes whose
    number does not change a batch."""
    transform = train_transform(recipe.image_size, recipe.crop_scale, recipe.hflip, recipe.degrade_prob,
                                recipe.degrade_blur, recipe.degrade_scale, recipe.degrade_jpeg)
    samples = SeededSamples(ImageLabels(data, recipe.image_size, transform), recipe.seed)
    sampler = EpochSampler(len(samples), recipe.seed, session.rank, session.world)
    return DataLoader(samples, recipe.batch_size, sampler=sampler, num_workers=recipe.workers,
                      pin_memory=torch.cuda.is_available(), drop_last=sampler.per_rank > recipe.batch_size,
                      generator=torch.Generator().manual_seed(recipe.seed), worker_init_fn=seed_worker,
                      persistent_workers=recipe.workers > 0)


def steps_per_epoch(loader: DataLoader) -> int:
    """Batches in a whole epoch of `loader` (whatever epoch position its sampler is set to)."""
    n, bs = loader.sampler.per_rank, loader.batch_size
    return max(1, n // bs if loader.drop_last else math.ceil(n / bs))


class Trainer:
    """One training run: model, optimizer, scheduler, EMA and the loop state that a checkpoint holds."""

    def __init__(self, recipe: JudgeRecipe, judge: Judge, steps_per_epoch: int, session: Session,
                 identity: dict | None = None) -> None:
        self.recipe, self.judge, self.session = recipe, judge.to(session.device), session
        self.identity = identity or {}
        self.frozen = freeze(judge, recipe.freeze)
        self.model: nn.Module = judge
        if session.world > 1:
            dev = session.device
            ids = [dev.index] if dev.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(judge, device_ids=ids)
        self.opt = timm.optim.create_optimizer_v2(judge, opt=recipe.optimizer, lr=recipe.lr,
                                                  weight_decay=recipe.weight_decay)
        self.sched, _ = timm.scheduler.create_scheduler_v2(
            self.opt, sched=recipe.scheduler, num_epochs=recipe.epochs, warmup_epochs=recipe.warmup_epochs,
            warmup_lr=recipe.lr * 1e-3, min_lr=recipe.min_lr, step_on_epochs=False, updates_per_epoch=steps_per_epoch)
        self.ema = timm.utils.ModelEmaV3(judge, decay=recipe.ema_decay) if recipe.ema_decay else None
        self.amp = session.device.type == "cuda"
        self.step, self.epoch, self.position = 0, 0, 0    # updates done; whole epochs done; batches of this one
        self.seconds, self.images = 0.0, 0                # training time and images, over every resume
        self.history: dict = {"loss": [], "epochs": [], "recipe": recipe.to_dict()}

    @property
    def evaluated(self) -> Judge:
        """The weights that are evaluated and exported: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.judge

    def train_mode(self) -> None:
        """Training mode, the frozen modules kept in eval mode."""
        self.model.train()
        for m in self.frozen:
            m.eval()

    def update(self, x: torch.Tensor, y: dict[str, torch.Tensor]) -> float:
        """One optimisation step on a uint8 batch."""
        dev = self.session.device
        x = (x.to(dev, non_blocking=True).float() / 255).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            logits = self.model(x)
            loss = sum(F.cross_entropy(logits[t].float(), y[t].to(dev), label_smoothing=self.recipe.label_smoothing)
                       for t in self.recipe.tasks)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.judge.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        self.position += 1
        self.images += x.shape[0]
        self.sched.step_update(num_updates=self.step)
        if self.ema is not None:
            self.ema.update(self.judge, step=self.step)
        return float(loss.detach())

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything a resume needs: tensors (weights, EMA, optimizer tensors, torch RNG states) and
        JSON-able values (loop position, scheduler, optimizer hyper-parameters, Python and numpy RNG)."""
        tensors = {f"model.{k}": v for k, v in self.judge.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.module.state_dict().items()})
        opt = self.opt.state_dict()
        values: dict[str, dict] = {}
        for pid, entries in opt["state"].items():
            for k, v in entries.items():
                if torch.is_tensor(v):
                    tensors[f"optimizer.{pid}.{k}"] = v
                else:
                    values.setdefault(str(pid), {})[k] = v
        tensors["rng.torch"] = torch.get_rng_state()
        if self.session.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.session.device)
        np_state = np.random.get_state(legacy=False)
        np_state["state"]["key"] = np_state["state"]["key"].tolist()
        meta = {"format": CHECKPOINT_FORMAT, "identity": self.identity, "step": self.step, "epoch": self.epoch,
                "position": self.position, "seconds": self.seconds, "images": self.images,
                "optimizer": {"param_groups": opt["param_groups"], "state": values},
                "scheduler": self.sched.state_dict(), "rng": {"python": random.getstate(), "numpy": np_state},
                "history": self.history}
        return tensors, meta

    def save(self, path: Path) -> None:
        """The whole state in one safetensors file, written temp-then-rename: a kill at any moment leaves
        the previous checkpoint or this one, never weights and optimizer state of different steps."""
        tensors, meta = self.state()
        blob = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        write_atomically(path, lambda tmp: safetensors.torch.save_file(blob, str(tmp), {"state": json.dumps(meta)}))

    def load(self, path: Path) -> None:
        """Restore the state that `save` wrote."""
        tensors, meta = read_checkpoint(path)
        self.judge.load_state_dict(under(tensors, "model."))
        if self.ema is not None:
            self.ema.module.load_state_dict(under(tensors, "ema."))
        state: dict[int, dict] = {int(pid): dict(v) for pid, v in meta["optimizer"]["state"].items()}
        for k, v in under(tensors, "optimizer.").items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        groups = [{k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in saved.items()}
                  for saved, now in zip(meta["optimizer"]["param_groups"], self.opt.param_groups, strict=False)]
        self.opt.load_state_dict({"state": state, "param_groups": groups})
        self.sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and self.session.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.session.device)
        version, internal, gauss = meta["rng"]["python"]
        random.setstate((version, tuple(internal), gauss))
        np_state = meta["rng"]["numpy"]
        np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
        np.random.set_state(np_state)
        self.step, self.epoch, self.position = meta["step"], meta["epoch"], meta["position"]
        self.seconds, self.images, self.history = meta["seconds"], meta["images"], meta["history"]


def checkpoint_meta(path: Path) -> dict:
    """The JSON part of a checkpoint (read from its header only); one-line JudgeError if unreadable."""
    return read_meta(path, CHECKPOINT_FORMAT, JudgeError)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the JSON part of a checkpoint; one-line JudgeError naming it if unreadable."""
    return read_state(path, CHECKPOINT_FORMAT, JudgeError, "; rerun with --overwrite to train afresh")


def plan_out(out: Path, identity: dict, overwrite: bool) -> tuple[bool, list[str]]:
    """What training does with `out`: (resume from its checkpoint?, files to delete first). A new or
    empty folder (leftovers of interrupted writes aside) starts afresh and this run's checkpoint (same
    recipe, same data) is resumed; anything else is refused in one line, except that `overwrite` replaces
    a judge: its files are deleted, and it is refused when the folder holds files of anything else."""
    if out.exists() and not out.is_dir():
        raise JudgeError(f"{out}: a file, not a folder; choose another --out")
    if not out.exists():
        return False, []
    judge = is_judge_dir(out)
    foreign = [] if judge else sorted(p.name for p in out.iterdir() if p.name not in (STAGING, "checkpoint", LOCK)
                                      and not TEMP.fullmatch(p.name))
    ours, left, others = ([], [], foreign) if foreign else sort_files(out)   # no walk through a big folder
    if not ours and not others:
        return False, left
    if not judge:
        raise JudgeError(f"{out}: not empty ({_listing(ours + others)}) and holds no judge; choose an empty or new "
                         "--out (nothing there is replaced, even with --overwrite)")
    found = _found_identity(out)
    if found is not None and found.get("recipe_hash") == identity["recipe_hash"] and found.get(
            "data") == identity["data"]:
        return True, left
    if not overwrite:
        raise JudgeError(f"{out}: {_mismatch(found, identity)}; rerun with --overwrite to replace that judge (only "
                         "its own files are deleted), or choose another --out")
    if others:
        raise JudgeError(f"{out}: --overwrite deletes only a judge's own files, and {out} also holds "
                         f"{_listing(others)}; move them away or choose another --out")
    return False, ours + left


def _found_identity(out: Path) -> dict | None:
    """The identity recorded in out's checkpoint, None without one, {"unreadable": why} if unreadable."""
    if not (out / CHECKPOINT).is_file():
        return {"legacy": True} if any((out / c).is_file() for c in LEGACY_CHECKPOINT) else None
    try:
        found = checkpoint_meta(out / CHECKPOINT).get("identity")
    except JudgeError as e:
        return {"unreadable": str(e)}
    return found if isinstance(found, dict) else {"unreadable": f"{out / CHECKPOINT}: names no training run"}


def _mismatch(found: dict | None, identity: dict) -> str:
    """Why `out` is not this run's checkpoint, in words."""
    if found is None:
        return "holds a judge but no checkpoint of this training run"
    if "legacy" in found:
        return "holds the checkpoint of an older canvasdata, which cannot be resumed exactly"
    if "unreadable" in found:
        return found["unreadable"]
    if found.get("recipe_hash") != identity["recipe_hash"]:
        return (f"holds the checkpoint of another training recipe ({found.get('recipe')!r}, "
                f"{str(found.get('recipe_hash'))[:12]}; this run: {identity['recipe']!r}, "
                f"{identity['recipe_hash'][:12]})")
    return f"holds a judge trained on other data ({_data(found.get('data'))}; this run: {_data(identity['data'])})"


def _data(d: object) -> str:
    if isinstance(d, dict) and "recipe_hash" in d:
        return f"a build of recipe {d.get('recipe')!r}, {str(d['recipe_hash'])[:12]}"
    return f"{d.get('source') if isinstance(d, dict) else d}"


def _listing(files: list[str], most: int = 5) -> str:
    shown = ", ".join(files[:most])
    return shown + (f" and {len(files) - most} more" if len(files) > most else "")


def train_judge(recipe: JudgeRecipe, data: str | Path, out: str | Path, *, device: str = "auto",
                max_steps: int | None = None, overwrite: bool = False, allow_partial: bool = False,
                progress: bool = True) -> dict:
    """Train, evaluate each epoch, export to `out`; returns the history (losses, accuracies, timing).
    `out` is new or empty, or holds this run's checkpoint (same recipe and data: resumed exactly), or,
    with `overwrite`, a judge whose files are replaced; anything else is a JudgeError (see plan_out)."""
    out = Path(out)
    session = join_ranks(device)
    if not session.main:
        return _train(recipe, data, out, session, max_steps, overwrite, allow_partial, progress)
    if out.exists() and not out.is_dir():
        raise JudgeError(f"{out}: a file, not a folder; choose another --out")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(out / LOCK, f"{out} is being trained"):
            return _train(recipe, data, out, session, max_steps, overwrite, allow_partial, progress)
    finally:
        if created and not any(out.iterdir()):
            out.rmdir()


def _train(recipe: JudgeRecipe, data: str | Path, out: Path, session: Session, max_steps: int | None,
           overwrite: bool, allow_partial: bool, progress: bool) -> dict:
    """train_judge's work, with the folder's lock held (on rank 0)."""
    identity = run_identity(recipe, data, read_manifest(data, allow_partial))
    resume, remove = plan_out(out, identity, overwrite)
    torch.manual_seed(recipe.seed)
    d = load_data(recipe, data, allow_partial)
    judge = build_judge(recipe, d)
    loader = train_loader(recipe, d.train, session)
    test_loader = None if d.test is None else make_loader(ImageLabels(d.test, recipe.image_size), recipe.batch_size,
                                                          shuffle=False, workers=recipe.workers)
    trainer = Trainer(recipe, judge, steps_per_epoch(loader), session, identity)
    session.barrier()
    if session.main:
        remove_files(out, remove)
    if resume:
        trainer.load(out / CHECKPOINT)
        trainer.history.setdefault("resumed_at", []).append(trainer.step)
    _loop(trainer, loader, test_loader, out, max_steps, progress)
    return _finish(trainer, out, test_loader)


def _loop(trainer: Trainer, loader: DataLoader, test_loader: DataLoader | None, out: Path, max_steps: int | None,
          progress: bool) -> None:
    """Train up to `max_steps` (else the recipe's epochs) from wherever the trainer stands; evaluate at
    each epoch's end; checkpoint then and where the run stops."""
    recipe, session = trainer.recipe, trainer.session
    per_epoch = steps_per_epoch(loader)
    total = max_steps or recipe.epochs * per_epoch
    t0, before = time.perf_counter(), trainer.seconds
    bar = tqdm(total=total, initial=min(trainer.step, total), unit="step", desc=f"train {recipe.name}",
               disable=not progress or not session.main)
    while trainer.step < total:
        loader.sampler.set_epoch(trainer.epoch, trainer.position * recipe.batch_size)
        trainer.train_mode()
        for x, y in loader:
            trainer.history["loss"].append(trainer.update(x, y))
            bar.update()
            bar.set_postfix(loss=f"{trainer.history['loss'][-1]:.3f}", epoch=trainer.epoch)
            if trainer.step >= total:
                break
        trainer.seconds = before + time.perf_counter() - t0
        if trainer.position >= per_epoch:
            trainer.epoch, trainer.position = trainer.epoch + 1, 0
            acc = accuracy(trainer.evaluated, test_loader, session.device, trainer.amp) if test_loader else {}
            trainer.history["epochs"].append({"epoch": trainer.epoch, "step": trainer.step, "test_accuracy": acc,
                                              "seconds": round(trainer.seconds, 1)})
            if acc and session.main:  # a log line (stderr): --quiet hides it, the bar stays intact
                with logging_redirect_tqdm([logging.getLogger("canvasdata")]):
                    log.info("epoch %d: held-out top-1 %s", trainer.epoch,
                             ", ".join(f"{t} {v * 100:.2f}%" for t, v in acc.items()))
        if session.main:
            trainer.save(out / CHECKPOINT)
    bar.close()


def _finish(trainer: Trainer, out: Path, test_loader: DataLoader | None) -> dict:
    """Record timing and held-out figures (evaluated now if the run stopped part-way through an epoch),
    export the judge with its card (rank 0)."""
    history = trainer.history
    last = history["epochs"][-1] if history["epochs"] else None
    if last is not None and last["step"] == trainer.step:
        acc = last["test_accuracy"]
    else:
        acc = accuracy(trainer.evaluated, test_loader, trainer.session.device, trainer.amp) if test_loader else {}
    history.update({"seconds": trainer.seconds, "train_images_per_s": trainer.images / max(trainer.seconds, 1e-9),
                    "device": trainer.session.device.type, "test_accuracy": acc})
    if trainer.session.main:
        judge = trainer.evaluated
        judge.info = trainer.judge.info
        judge.info.metrics = {"test_accuracy": acc, "steps": trainer.step, "epochs": trainer.epoch,
                              "train_seconds": round(trainer.seconds, 1), "ema": bool(trainer.ema)}
        save_judge(judge.to(memory_format=torch.contiguous_format), out, judge_card(judge.info, history))
        write_json(out / "history.json", history)
    return history
