"""One training run's moving parts, set up the way timm trains: the judge built from the recipe's starting
weights (`build_judge`), early stages frozen for CPU budgets (`freeze`), DDP under torchrun, timm's
`create_optimizer_v2` (no weight decay on norms, biases and position embeddings), a timm scheduler stepped
per update, optional weight EMA, and one optimisation step (`Trainer.update`: channels-last tensors, bf16
autocast on CUDA only)."""

from __future__ import annotations

import timm.optim
import timm.scheduler
import timm.utils
import torch
import torch.nn as nn
import torch.nn.functional as F

from canvasdata.devices import Session
from canvasdata.judges.backbone import create_backbone, start_license
from canvasdata.judges.data import Data
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo
from canvasdata.judges.recipe import JudgeRecipe


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


class Trainer:
    """One training run: model, optimizer, scheduler, EMA and the loop state that a checkpoint holds
    (`judges.checkpoint` saves and restores it)."""

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
