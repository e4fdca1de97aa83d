"""Benchmark scoring: answer-set images judged per second (style and object heads, batched, JPEG decode
included), on the CPU and on CUDA when available. The original judges took about 1 s an image.

    python bench/evaluate.py [--images 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

from canvasdata.evaluate import read_answer_folder  # noqa: E402
from canvasdata.evaluate.score import run_judge  # noqa: E402
from canvasdata.judges import Judge, JudgeInfo, create_backbone  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC50  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=128)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for i in range(args.images):
            s, o = UC50[i % 51], OBJECTS[i % 20]
            Image.fromarray((rng.random((512, 512, 3)) * 255).astype("uint8")).save(Path(tmp) / f"{s}_{o}_seed{i}.jpg",
                                                                                     quality=90)
        answers = read_answer_folder(tmp)
        configs = [("cpu", "vit_tiny_patch16_224", 224), ("cpu", "vit_base_patch16_224", 224)]
        if torch.cuda.is_available():
            configs += [("cuda", "vit_base_patch16_224", 224), ("cuda", "vit_large_patch16_224", 224)]
        for device, name, size in configs:
            info = JudgeInfo(model=name, tasks=["style", "object"], class_names={"style": list(UC50), "object": list(OBJECTS)},
                             label_space={"style": "uc50", "object": "objects"}, image_size=size)
            judge = Judge(create_backbone(name, 51, size), info).to(device).eval()
            run_judge(judge, answers[:8], 8, 0)
            t = time.perf_counter()
            run_judge(judge, answers, 32, 2)
            r = len(answers) / (time.perf_counter() - t)
            rows.append([name, device, size, r, r / 1.0])
            print(rows[-1], flush=True)
    body = table(["judge", "device", "px", "images/s (style + object, one pass)", "x faster than 1 s/image"], rows)
    body += ("\n\nOne backbone with both heads judges style and object in one forward pass, batched (32) with "
             "2 decoding workers; 512 px JPEG answers. The original ran a separate ViT-L/16 per task, one "
             "image at a time (about 1 s an image).")
    print(body)
    write_section("evaluate", body)


if __name__ == "__main__":
    main()
