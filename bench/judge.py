"""Benchmark judges: training and inference images/s of ViT tiny/small/base and of the CPU recipe's
EfficientNet-Lite0 (160 px, channels-last, with and without its frozen stem and first two stages) on
synthetic tensors (the compute ceiling of the machine for these models), on the CPU and on CUDA when
available.

    python bench/judge.py [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

from canvasdata.judges import Judge, JudgeInfo, create_backbone  # noqa: E402
from canvasdata.judges.recipe import load_judge_recipe  # noqa: E402
from canvasdata.judges.trainer import freeze  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC60  # noqa: E402

MODELS = {"cpu": [("vit_tiny_patch16_224", 112, 32), ("vit_small_patch16_224", 112, 32), ("vit_base_patch16_224", 112, 16),
                  ("efficientnet_lite0", 160, 64)],
          "cuda": [("vit_tiny_patch16_224", 224, 256), ("vit_small_patch16_224", 224, 256), ("vit_base_patch16_224", 224, 256),
                   ("vit_large_patch16_224", 224, 128), ("efficientnet_lite0", 160, 256)]}
CPU_RECIPE = load_judge_recipe("effnet-lite0-cpu")   # its frozen modules, for the frozen rows


def judge(name: str, size: int, device: str) -> Judge:
    info = JudgeInfo(model=name, tasks=["style", "object"], class_names={"style": list(UC60), "object": list(OBJECTS)},
                     label_space={"style": "uc60", "object": "objects"}, image_size=size)
    return Judge(create_backbone(name, 61, size), info).to(device)


def timed(fn, steps: int, device: str) -> float:
    fn()
    times = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(name: str, size: int, bs: int, device: str, frozen: tuple[str, ...], steps: int) -> list:
    """One row: train and inference images/s of a two-head judge (frozen modules kept in eval mode, as
    the trainer does; convolutional models channels-last)."""
    j = judge(name, size, device)
    fixed = freeze(j, frozen)
    layout = torch.channels_last if "vit" not in name else torch.contiguous_format
    j = j.to(memory_format=layout)
    x = torch.rand(bs, 3, size, size, device=device).contiguous(memory_format=layout)
    ys = torch.randint(0, 61, (bs,), device=device)
    yo = torch.randint(0, 20, (bs,), device=device)
    opt = torch.optim.AdamW([p for p in j.parameters() if p.requires_grad], lr=1e-4)
    amp = device == "cuda"

    def train_step():
        j.train()
        for m in fixed:
            m.eval()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = j.logits(x)
            loss = F.cross_entropy(out["style"].float(), ys) + F.cross_entropy(out["object"].float(), yo)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer():
        j.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            j.logits(x)

    tr = bs / timed(train_step, steps, device)
    inf = bs / timed(infer, steps, device)
    what = f"frozen {', '.join(frozen)}" if frozen else "all trained"
    return [name, device, size, bs, "bf16 autocast" if amp else "float32", what, tr, inf]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        for name, size, bs in MODELS[device]:
            variants = [(), CPU_RECIPE.freeze] if name == CPU_RECIPE.model else [()]
            for frozen in variants:
                rows.append(measure(name, size, bs, device, tuple(frozen), args.steps))
                print(rows[-1], flush=True)
    body = table(["model", "device", "px", "batch", "precision", "parameters", "train images/s",
                  "inference images/s (both heads)"], rows)
    body += ("\n\nSynthetic tensors (no decoding): the compute ceiling for each model here (random weights: speed "
             "does not depend on them). `efficientnet_lite0` at 160 px is the `effnet-lite0-cpu` recipe's judge, "
             "channels-last; its frozen row freezes what the recipe freezes. The original UnlearnCanvas judges "
             "ran one image at a time (about 1 s an image).")
    print(body)
    write_section("judge", body)


if __name__ == "__main__":
    main()
