"""Train a judge from a recipe, the way timm trains: `create_optimizer_v2` (no weight decay on norms,
biases and position embeddings), a timm scheduler stepped per update, torchvision v2 augmentation on the
full-resolution image, optional weight EMA, frozen early stages for CPU budgets, channels-last tensors,
bf16 autocast on CUDA only, DDP under torchrun, checkpoint/resume and held-out accuracy each epoch."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import safetensors.torch
import timm.optim
import timm.scheduler
import timm.utils
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from canvasdata.data import ImageLabels, LabelledImages, load_split, make_loader, train_transform
from canvasdata.devices import Session, join_ranks
from canvasdata.judges.backbone import create_backbone, start_license
from canvasdata.judges.card import judge_card
from canvasdata.judges.io import save_judge
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo
from canvasdata.judges.recipe import JudgeRecipe
from canvasdata.manifest import MANIFEST, Manifest


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


def load_data(recipe: JudgeRecipe, data: str | Path) -> Data:
    """The train and (if any) test split, and the facts of the build they come from."""
    concept = recipe.concept or None
    manifest = Manifest.read(data) if (Path(data) / MANIFEST).exists() else None
    train = load_split(data, "train", recipe.tasks, concept, manifest=manifest)
    try:
        test = load_split(data, "test", recipe.tasks, concept, manifest=manifest)
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


class Trainer:
    """One training run: model, optimizer, scheduler, EMA and the loop state that a checkpoint holds."""

    def __init__(self, recipe: JudgeRecipe, judge: Judge, steps_per_epoch: int, session: Session) -> None:
        self.recipe, self.judge, self.session = recipe, judge.to(session.device), session
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
        self.step, self.epoch = 0, 0
        self.history: dict = {"loss": [], "epochs": [], "recipe": recipe.to_dict()}

    @property
    def evaluated(self) -> Judge:
        """The weights that are evaluated and exported: the EMA when there is one."""
        return self.ema.module if self.ema is not None else self.judge

    def train_mode(self) -> None:
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
        self.sched.step_update(num_updates=self.step)
        if self.ema is not None:
            self.ema.update(self.judge, step=self.step)
        return float(loss.detach())

    def save(self, ckpt: Path) -> None:
        """Weights (safetensors) first, then optimizer/scheduler/loop state and history, each atomically."""
        ckpt.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v for k, v in self.judge.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.module.state_dict().items()})
        _atomic(ckpt / "judge.safetensors", lambda p: safetensors.torch.save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(p)))
        state = {"optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(), "step": self.step,
                 "epoch": self.epoch}
        _atomic(ckpt / "state.pt", lambda p: torch.save(state, p))
        _atomic(ckpt / "history.json", lambda p: p.write_text(json.dumps(self.history)))

    def load(self, ckpt: Path) -> None:
        tensors = safetensors.torch.load_file(str(ckpt / "judge.safetensors"))
        self.judge.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        if self.ema is not None:
            self.ema.module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.history = json.loads((ckpt / "history.json").read_text())


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def train_judge(recipe: JudgeRecipe, data: str | Path, out: str | Path, *, device: str = "auto",
                max_steps: int | None = None, resume: bool = True, progress: bool = True) -> dict:
    """Train, evaluate each epoch, export to `out`; returns the history (losses, accuracies, timing)."""
    out = Path(out)
    session = join_ranks(device)
    torch.manual_seed(recipe.seed)
    d = load_data(recipe, data)
    judge = build_judge(recipe, d)
    loader = make_loader(ImageLabels(d.train, recipe.image_size, train_transform(recipe.image_size, recipe.crop_scale,
                                                                                 recipe.hflip)),
                         recipe.batch_size, shuffle=True, workers=recipe.workers, seed=recipe.seed,
                         distributed=session.world > 1, drop_last=len(d.train) > recipe.batch_size)
    test_loader = None if d.test is None else make_loader(ImageLabels(d.test, recipe.image_size), recipe.batch_size,
                                                          shuffle=False, workers=recipe.workers)
    trainer = Trainer(recipe, judge, max(1, len(loader)), session)
    ckpt = out / "checkpoint"
    if resume and (ckpt / "state.pt").exists():
        trainer.load(ckpt)
    total = max_steps or recipe.epochs * max(1, len(loader))
    t0, seen = time.perf_counter(), 0
    bar = tqdm(total=total, initial=trainer.step, unit="step", desc=f"train {recipe.name}",
               disable=not progress or not session.main)
    while trainer.step < total:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(trainer.epoch)
        trainer.train_mode()
        for x, y in loader:
            trainer.history["loss"].append(trainer.update(x, y))
            seen += x.shape[0]
            bar.update()
            bar.set_postfix(loss=f"{trainer.history['loss'][-1]:.3f}", epoch=trainer.epoch)
            if trainer.step >= total:
                break
        trainer.epoch += 1
        acc = accuracy(trainer.evaluated, test_loader, session.device, trainer.amp) if test_loader is not None else {}
        trainer.history["epochs"].append({"epoch": trainer.epoch, "step": trainer.step, "test_accuracy": acc,
                                          "seconds": round(time.perf_counter() - t0, 1)})
        if acc and session.main:
            shown = ", ".join(f"{t} {v * 100:.2f}%" for t, v in acc.items())
            bar.write(f"epoch {trainer.epoch}: held-out top-1 {shown}")
        if session.main:
            trainer.save(ckpt)
    bar.close()
    return _finish(trainer, out, time.perf_counter() - t0, seen)


def _finish(trainer: Trainer, out: Path, seconds: float, seen: int) -> dict:
    """Record timing and held-out figures, export the judge with its card (rank 0)."""
    history = trainer.history
    history.update({"seconds": seconds, "train_images_per_s": seen / max(seconds, 1e-9),
                    "device": trainer.session.device.type})
    if trainer.session.main:
        judge = trainer.evaluated
        judge.info = trainer.judge.info
        judge.info.metrics = {"test_accuracy": history["epochs"][-1]["test_accuracy"] if history["epochs"] else {},
                              "steps": trainer.step, "epochs": trainer.epoch, "train_seconds": round(seconds, 1),
                              "ema": bool(trainer.ema)}
        save_judge(judge.to(memory_format=torch.contiguous_format), out, judge_card(judge.info, history))
        (out / "history.json").write_text(json.dumps(history, indent=2))
    return history
