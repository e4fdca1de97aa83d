"""Benchmark scoring: answer-set images judged per second (style and object, JPEG decode included),
on the CPU and on CUDA when available, against the original's ~1 s an image.

Judges are canvasdata.judges.Judge models built from timm configs with pretrained=False (random
weights: speed does not depend on them), 224 px, on synthetic 512 px JPEG answer images.

    python bench/evaluate.py [--images 96] [--single 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

from canvasdata.evaluate import read_answer_folder, run_judges  # noqa: E402
from canvasdata.judges import Judge, JudgeInfo, create_backbone  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC50  # noqa: E402

NAMES = {"style": list(UC50), "object": list(OBJECTS)}
SPACES = {"style": "uc50", "object": "objects"}


def make_judge(model: str, tasks: list[str], device: str) -> Judge:
    info = JudgeInfo(model=model, tasks=tasks, class_names={t: NAMES[t] for t in tasks},
                     label_space={t: SPACES[t] for t in tasks}, image_size=224)
    return Judge(create_backbone(model, len(NAMES[tasks[0]]), 224), info).to(device).eval()


def rate(judges: list[Judge], answers, batch: int, workers: int, repeats: int) -> float:
    """Median images/s over `repeats` timed passes after a short warm-up."""
    run_judges(judges, answers[:max(2, batch)], batch, 0)
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        run_judges(judges, answers, batch, workers)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return len(answers) / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=96, help="answer images per batched pass")
    ap.add_argument("--single", type=int, default=12, help="images for the one-at-a-time rows")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for i in range(args.images):
            s, o = UC50[i % 51], OBJECTS[i % 20]
            img = Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).resize((512, 512), Image.BICUBIC)
            img.save(Path(tmp) / f"{s}_{o}_seed{i}.jpg", quality=90)
        answers = read_answer_folder(tmp)
        configs = [("cpu", "vit_tiny_patch16_224", "one judge, two heads", 32, 2, args.images),
                   ("cpu", "vit_base_patch16_224", "one judge, two heads", 32, 2, args.images),
                   ("cpu", "vit_base_patch16_224", "two judges (style, object)", 32, 2, args.images),
                   ("cpu", "vit_base_patch16_224", "two judges, one image at a time", 1, 0, args.single)]
        if torch.cuda.is_available():
            configs += [("cuda", "vit_base_patch16_224", "two judges (style, object)", 64, 4, args.images),
                        ("cuda", "vit_large_patch16_224", "two judges (style, object)", 64, 4, args.images),
                        ("cuda", "vit_large_patch16_224", "two judges, one image at a time", 1, 0, args.single)]
        for device, model, layout, batch, workers, n in configs:
            if layout.startswith("one"):
                judges = [make_judge(model, ["style", "object"], device)]
            else:
                judges = [make_judge(model, ["style"], device), make_judge(model, ["object"], device)]
            with torch.inference_mode():
                r = rate(judges, answers[:n], batch, workers, args.repeats)
            rows.append([model, device, layout, batch, workers, r, r / 1.0])
            print(rows[-1], flush=True)
    body = table(["judge", "device", "layout", "batch", "decode workers", "images/s",
                  "x the original's 1 image/s"], rows)
    body += ("\n\nImages/s counts answer images fully judged (style and object), JPEG decoding and resizing "
             "512 → 224 px included, median of the timed passes. Judges are canvasdata `Judge` models with random "
             "weights (timm, pretrained=False); speed does not depend on the weights. The original UnlearnCanvas "
             "evaluation ran two ViT-L/16 judges one image at a time at about 1 s an image on a GPU"
             + ("" if torch.cuda.is_available() else "; no GPU was available for this run, so the CUDA rows are "
                "missing and the CPU rows compare a much smaller machine with that figure") + ".")
    print(body)
    write_section("evaluate", body)


if __name__ == "__main__":
    main()
