"""Benchmark the content engine: render images/s per class at 256 and 512 px (CPU, and CUDA when
available), and a colour-only probe whose accuracy should stay low (shape, not colour, carries the class).

    python bench/content.py [--seeds 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _report import pool_rate, table, write_section  # noqa: E402

from canvasdata.content import list_objects, render  # noqa: E402


def rate(obj: str, size: int, n: int, device: str, repeats: int) -> float:
    times = []
    for r in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        render(obj, list(range(1000 * r, 1000 * r + n)), size, device)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def _render_job(job: tuple[str, list[int], int]) -> int:
    obj, seeds, size = job
    render(obj, seeds, size)
    return len(seeds)


def colour_probe(n_train: int = 24, n_test: int = 12, size: int = 48) -> float:
    """Nearest centroid on 8x8x8 colour histograms over the 20 classes; returns test accuracy."""
    def hist(img: torch.Tensor) -> np.ndarray:
        q = (img.clamp(0, 0.999) * 8).long()
        idx = (q[0] * 64 + q[1] * 8 + q[2]).flatten().numpy()
        h = np.bincount(idx, minlength=512).astype(np.float64)
        return h / h.sum()

    objs = list_objects()
    cents, tests = [], []
    for c, o in enumerate(objs):
        imgs, _ = render(o, list(range(n_train + n_test)), size)
        feats = np.stack([hist(i) for i in imgs])
        cents.append(feats[:n_train].mean(0))
        tests += [(f, c) for f in feats[n_train:]]
    cents = np.stack(cents)
    hits = [int(np.argmin(((cents - f) ** 2).sum(1)) == c) for f, c in tests]
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    overall = []
    for device in devices:
        for size in (256, 512):
            rates = []
            for obj in list_objects():
                r = rate(obj, size, args.seeds, device, args.repeats)
                rates.append(r)
                rows.append([obj, device, size, r])
            hm = len(rates) / sum(1 / r for r in rates)
            overall.append([device, size, f"1 process, {torch.get_num_threads()} threads (harmonic mean over classes)", hm])
            print(overall[-1], flush=True)
    cores = os.cpu_count() or 1
    for size in (256, 512):
        jobs = [(o, list(range(10_000 + 100 * k, 10_000 + 100 * k + args.seeds // 2)), size)
                for o in list_objects() for k in range(2)]
        overall.append(["cpu", size, f"{cores} processes x 1 thread (all classes, as `build --workers {cores}`)",
                        pool_rate(_render_job, jobs, cores, args.repeats)])
        print(overall[-1], flush=True)
    probe = colour_probe()
    summary = table(["device", "size", "layout", "images/s"], overall)
    per_class = table(["class", "device", "size", "images/s"], rows)
    body = (f"{summary}\n\nGoal: >= 20 images/s at 512 px on 2 cores, batched. A build renders with one process "
            f"per worker, so the multi-process row is the throughput a build gets from the cores.\n\n"
            f"Colour-only probe (nearest centroid on 8x8x8 colour histograms, 20 classes, 24 train / 12 test "
            f"seeds per class): **{probe * 100:.1f}%** top-1 (chance 5%). It should stay low: colour alone "
            f"must not give the class away.\n\n<details><summary>per class (1 process)</summary>\n\n{per_class}\n\n</details>")
    print(body)
    write_section("content", body)


if __name__ == "__main__":
    main()
