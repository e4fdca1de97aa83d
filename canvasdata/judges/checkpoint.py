"""A judge's training checkpoint, checkpoint/last.safetensors: one file in `canvasdata.checkpoints`' format
(written temp-then-rename) that holds everything an exact resume needs: the weights, the EMA, the optimizer,
the scheduler, the RNG states and the data position (epoch and batches done in it), with the identity of the
run that wrote it."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from canvasdata.checkpoints import optimizer_tensors, read_meta, read_state, save_state, under
from canvasdata.judges.model import JudgeError
from canvasdata.judges.trainer import Trainer

CHECKPOINT = "checkpoint/last.safetensors"   # the training state (weights, optimizer, RNG, data position)
LEGACY_CHECKPOINT = ("checkpoint/judge.safetensors", "checkpoint/state.pt", "checkpoint/history.json")
CHECKPOINT_FORMAT = "canvasdata-judge-checkpoint/1"


def checkpoint_state(trainer: Trainer) -> tuple[dict[str, torch.Tensor], dict]:
    """Everything a resume needs: tensors (weights, EMA, optimizer tensors, torch RNG states) and
    JSON-able values (loop position, scheduler, optimizer hyper-parameters, Python and numpy RNG)."""
    tensors = {f"model.{k}": v for k, v in trainer.judge.state_dict().items()}
    if trainer.ema is not None:
        tensors.update({f"ema.{k}": v for k, v in trainer.ema.module.state_dict().items()})
    opt_tensors, values = optimizer_tensors(trainer.opt, "optimizer.")
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if trainer.session.device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(trainer.session.device)
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    meta = {"format": CHECKPOINT_FORMAT, "identity": trainer.identity, "step": trainer.step, "epoch": trainer.epoch,
            "position": trainer.position, "seconds": trainer.seconds, "images": trainer.images,
            "optimizer": {"param_groups": trainer.opt.state_dict()["param_groups"], "state": values},
            "scheduler": trainer.sched.state_dict(), "rng": {"python": random.getstate(), "numpy": np_state},
            "history": trainer.history}
    return tensors, meta


def save_checkpoint(trainer: Trainer, path: Path) -> None:
    """The whole state in one safetensors file, written temp-then-rename: a kill at any moment leaves
    the previous checkpoint or this one, never weights and optimizer state of different steps."""
    tensors, meta = checkpoint_state(trainer)
    save_state(path, tensors, meta, JudgeError)


def load_checkpoint(trainer: Trainer, path: Path) -> None:
    """Restore into `trainer` the state that `save_checkpoint` wrote."""
    tensors, meta = read_checkpoint(path)
    trainer.judge.load_state_dict(under(tensors, "model."))
    if trainer.ema is not None:
        trainer.ema.module.load_state_dict(under(tensors, "ema."))
    state: dict[int, dict] = {int(pid): dict(v) for pid, v in meta["optimizer"]["state"].items()}
    for k, v in under(tensors, "optimizer.").items():
        pid, name = k.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    groups = [{k: tuple(v) if isinstance(now.get(k), tuple) else v for k, v in saved.items()}
              for saved, now in zip(meta["optimizer"]["param_groups"], trainer.opt.param_groups, strict=False)]
    trainer.opt.load_state_dict({"state": state, "param_groups": groups})
    trainer.sched.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and trainer.session.device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng.cuda"], trainer.session.device)
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = meta["rng"]["numpy"]
    np_state["state"]["key"] = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    trainer.step, trainer.epoch, trainer.position = meta["step"], meta["epoch"], meta["position"]
    trainer.seconds, trainer.images, trainer.history = meta["seconds"], meta["images"], meta["history"]


def checkpoint_meta(path: Path) -> dict:
    """The JSON part of a checkpoint (read from its header only); one-line JudgeError if unreadable."""
    return read_meta(path, CHECKPOINT_FORMAT, JudgeError)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and the JSON part of a checkpoint; one-line JudgeError naming it if unreadable."""
    return read_state(path, CHECKPOINT_FORMAT, JudgeError, "; rerun with --overwrite to train afresh")
