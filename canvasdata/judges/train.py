"""Train a judge from a recipe: one readable loop over the library's parts, the way timm trains. The data
and its seeded order and augmentation come from `judges.data`, the model, optimizer, scheduler and EMA from
`judges.trainer`, the checkpoint from `judges.checkpoint`, what `--out` may hold from `judges.output`, the
held-out accuracy at each epoch's end from `judges.evaluate` and the export from `judges.weights`.

Resume is exact: one checkpoint file holds the whole training state, and the data order and augmentation
derive from the recipe seed, the epoch and the sample alone, so an interrupted run resumed on the CPU ends
bit-identical to an uninterrupted one, whatever the workers."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from canvasdata.devices import Session, join_ranks
from canvasdata.folders import remove_files
from canvasdata.formats.common import write_json
from canvasdata.judges.card import judge_card
from canvasdata.judges.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from canvasdata.judges.data import held_out_loader, load_data, read_manifest, steps_per_epoch, train_loader
from canvasdata.judges.evaluate import accuracy
from canvasdata.judges.model import JudgeError
from canvasdata.judges.output import plan_out, run_identity
from canvasdata.judges.recipe import JudgeRecipe
from canvasdata.judges.trainer import Trainer, build_judge
from canvasdata.judges.weights import LOCK, save_judge
from canvasdata.locks import folder_lock

log = logging.getLogger(__name__)


def train_judge(recipe: JudgeRecipe, data: str | Path, out: str | Path, *, device: str = "auto",
                max_steps: int | None = None, overwrite: bool = False, allow_partial: bool = False,
                progress: bool = True, session: Session | None = None) -> dict:
    """Train, evaluate each epoch, export to `out`; returns the history (losses, accuracies, timing).
    `out` is new or empty, or holds this run's checkpoint (same recipe and data: resumed exactly), or,
    with `overwrite`, a judge whose files are replaced; anything else is a JudgeError (see
    `judges.output.plan_out`). Under torchrun the ranks train it with DDP, unless a `session` is given
    (`Session.alone(device)`: this process alone, e.g. rank 0 of a job whose other ranks wait)."""
    out = Path(out)
    session = session or join_ranks(device)
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
    test_loader = held_out_loader(recipe, d)
    trainer = Trainer(recipe, judge, steps_per_epoch(loader), session, identity)
    session.barrier()
    if session.main:
        remove_files(out, remove)
    if resume:
        load_checkpoint(trainer, out / CHECKPOINT)
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
            save_checkpoint(trainer, out / CHECKPOINT)
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
