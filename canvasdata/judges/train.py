"""Train a judge from a recipe: AdamW, warmup + cosine, label smoothing, style-safe augmentation,
bf16 autocast on CUDA only, DDP under torchrun, checkpoint/resume and held-out evaluation each epoch."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import safetensors.torch
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from canvasdata.data import ImageLabels, load_split, make_loader
from canvasdata.judges.model import Judge, JudgeInfo, create_backbone
from canvasdata.judges.recipe import JudgeRecipe


def augment(x: torch.Tensor, g: torch.Generator, crop_scale: float, hflip: bool) -> torch.Tensor:
    """Random resized crop (area >= crop_scale, aspect kept) and horizontal flips; no colour jitter,
    which would destroy the evidence a style judge needs."""
    b, _, h, w = x.shape
    if crop_scale < 1:
        out = torch.empty_like(x)
        for i in range(b):
            s = math.sqrt(crop_scale + (1 - crop_scale) * float(torch.rand(1, generator=g)))
            ch, cw = max(8, int(h * s)), max(8, int(w * s))
            y0 = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            x0 = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            out[i] = F.interpolate(x[i:i + 1, :, y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear",
                                   align_corners=False)[0]
        x = out
    if hflip:
        flip = torch.rand(b, generator=g) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)
    return x


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def accuracy(judge: Judge, loader, device: torch.device, amp: bool) -> dict[str, float]:
    """Top-1 accuracy per task over a loader."""
    judge.eval()
    correct: dict[str, int] = {}
    total = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for x, y in loader:
            out = judge.logits(x.to(device, non_blocking=True))
            for t, logits in out.items():
                correct[t] = correct.get(t, 0) + int((logits.argmax(1).cpu() == y[t]).sum())
            total += x.shape[0]
    return {t: c / max(total, 1) for t, c in correct.items()}


def train_judge(recipe: JudgeRecipe, data: str | Path, out: str | Path, *, device: str = "auto",
                max_steps: int | None = None, resume: bool = True, progress: bool = True) -> dict:
    """Train, evaluate each epoch, export to `out`; returns the history (losses, accuracies, timing)."""
    from canvasdata.judges.io import save_judge

    out = Path(out)
    dev = _device(device)
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(dev)
    torch.manual_seed(recipe.seed)
    concept = recipe.concept or None
    train = load_split(data, "train", recipe.tasks, concept)
    try:
        test = load_split(data, "test", recipe.tasks, concept)
    except ValueError:
        test = None
    info = JudgeInfo(model=recipe.model, tasks=recipe.tasks, class_names=train.class_names,
                     label_space=train.label_space, image_size=recipe.image_size, mean=recipe.mean, std=recipe.std,
                     model_kwargs=recipe.kwargs, data=_data_facts(data))
    first = recipe.tasks[0]
    judge = Judge(create_backbone(recipe.model, len(info.class_names[first]), recipe.image_size, recipe.kwargs,
                                  recipe.pretrained), info).to(dev)
    model = judge
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(judge, device_ids=[dev.index] if dev.type == "cuda" else None)
    loader = make_loader(ImageLabels(train, recipe.image_size), recipe.batch_size, shuffle=True,
                         workers=recipe.workers, seed=recipe.seed, distributed=world > 1, drop_last=len(train) > recipe.batch_size)
    test_loader = None if test is None else make_loader(ImageLabels(test, recipe.image_size), recipe.batch_size,
                                                        shuffle=False, workers=recipe.workers)
    steps_per_epoch = max(1, len(loader))
    total = max_steps or recipe.epochs * steps_per_epoch
    warmup = min(int(recipe.warmup_epochs * steps_per_epoch), total // 2)
    opt = torch.optim.AdamW(judge.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else
        0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))
    amp = dev.type == "cuda"
    ckpt = out / "checkpoint"
    step, epoch, history = 0, 0, {"loss": [], "epochs": [], "recipe": recipe.to_dict()}
    if resume and (ckpt / "state.pt").exists():
        judge.load_state_dict(safetensors.torch.load_file(str(ckpt / "judge.safetensors")))
        state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, epoch = state["step"], state["epoch"]
        history = json.loads((ckpt / "history.json").read_text())
    g = torch.Generator().manual_seed(recipe.seed + epoch)
    t0 = time.perf_counter()
    seen = 0
    bar = tqdm(total=total, initial=step, unit="step", desc=f"train {recipe.name}", disable=not progress or rank != 0)
    while step < total:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        model.train()
        for x, y in loader:
            x = augment(x.to(dev, non_blocking=True).float() / 255, g, recipe.crop_scale, recipe.hflip)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
                loss = sum(F.cross_entropy(logits[t].float(), y[t].to(dev), label_smoothing=recipe.label_smoothing)
                           for t in recipe.tasks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(judge.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            seen += x.shape[0]
            history["loss"].append(float(loss.detach()))
            bar.update()
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", epoch=epoch)
            if step >= total:
                break
        epoch += 1
        acc = accuracy(judge, test_loader, dev, amp) if test_loader is not None else {}
        history["epochs"].append({"epoch": epoch, "step": step, "test_accuracy": acc})
        if rank == 0:
            _checkpoint(ckpt, judge, opt, sched, step, epoch, history)
    bar.close()
    seconds = time.perf_counter() - t0
    history.update({"seconds": seconds, "train_images_per_s": seen / max(seconds, 1e-9), "device": dev.type})
    if rank == 0:
        info.metrics = {"test_accuracy": history["epochs"][-1]["test_accuracy"] if history["epochs"] else {},
                        "steps": step, "epochs": epoch, "train_seconds": round(seconds, 1)}
        from canvasdata.judges.card import judge_card

        save_judge(judge, out, judge_card(info, history))
        (out / "history.json").write_text(json.dumps(history, indent=2))
    return history


def _data_facts(data: str | Path) -> dict:
    manifest = Path(data) / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        return {"source": str(data), "recipe": m["recipe_name"], "recipe_hash": m["recipe_hash"]}
    return {"source": str(data)}


def _checkpoint(ckpt: Path, judge: Judge, opt, sched, step: int, epoch: int, history: dict) -> None:
    """Atomically write weights (safetensors), optimizer/scheduler state and history."""
    ckpt.mkdir(parents=True, exist_ok=True)
    tmp = ckpt / "judge.safetensors.tmp"
    safetensors.torch.save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, str(tmp))
    tmp.replace(ckpt / "judge.safetensors")
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step, "epoch": epoch},
               ckpt / "state.pt.tmp")
    (ckpt / "state.pt.tmp").replace(ckpt / "state.pt")
    (ckpt / "history.json.tmp").write_text(json.dumps(history))
    (ckpt / "history.json.tmp").replace(ckpt / "history.json")
