"""Benchmark the style engine: paint images/s per style at 512 px (CPU, and CUDA when available), and
a style-separability probe (nearest centroid on colour + gradient statistics, trained on some objects
and tested on others) listing the most confusable pairs.

    python bench/styles.py [--repeats 3]
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
import torch.nn.functional as F
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from _report import pool_rate, table, write_section  # noqa: E402

from canvasdata.content import render  # noqa: E402
from canvasdata.devices import intra_op_threads  # noqa: E402
from canvasdata.styles import (  # noqa: E402
    ops_paint,
    ops_pattern,
    paint,  # noqa: E402
)
from canvasdata.styles.base import gaussian, gaussian_exact, luma, sobel  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC60  # noqa: E402


def features(img: torch.Tensor) -> np.ndarray:
    """Colour histogram (4x4x4), gradient-magnitude histogram and orientation histogram."""
    q = (img.clamp(0, 0.999) * 4).long()
    idx = (q[0] * 16 + q[1] * 4 + q[2]).flatten().numpy()
    ch = np.bincount(idx, minlength=64) / idx.size
    gx, gy = sobel(luma(img[None]))
    mag = torch.sqrt(gx * gx + gy * gy).flatten().numpy()
    mh = np.histogram(np.clip(mag, 0, 0.25), bins=16, range=(0, 0.25))[0] / mag.size
    ang = torch.atan2(gy, gx).flatten().numpy()
    ah = np.histogram(ang, bins=8, range=(-np.pi, np.pi), weights=mag)[0] / (mag.sum() + 1e-9)
    return np.concatenate([ch, 2 * mh, ah])


_CONTENT: dict[int, torch.Tensor] = {}


def _paint_job(job: tuple[str, int]) -> int:
    """Paint one style over `batch` Horses scenes at 512 px (rendered once per process)."""
    style, batch = job
    if batch not in _CONTENT:
        _CONTENT[batch] = render("Horses", list(range(batch)), 512)[0]
    paint(style, _CONTENT[batch], list(range(batch)))
    return batch


def _median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def wide_blur(batch: int, repeats: int) -> str:
    """The reduced-resolution wide blur against the full-resolution one (one thread, 512 px): the blur alone
    by sigma, then every style that uses one, painted both ways (the operators' blur swapped for
    `gaussian_exact`), with the largest difference in 8-bit levels."""
    x = render("Horses", list(range(batch)), 512)[0]
    blur_rows, style_rows, pairs = [], [], []
    with intra_op_threads(1):
        for sigma in (6, 8, 16, 32, 64):
            full = _median_seconds(lambda: gaussian_exact(x, sigma), repeats)
            fast = _median_seconds(lambda: gaussian(x, sigma), repeats)
            d = (gaussian(x, sigma) - gaussian_exact(x, sigma)).abs() * 255
            blur_rows.append([sigma, 1000 * full / batch, 1000 * fast / batch, full / fast, d.max().item(),
                              d.mean().item()])
        for style in UC60:
            seeds = list(range(batch))
            new = paint(style, x, seeds)
            ops_paint.gaussian = ops_pattern.gaussian = gaussian_exact
            try:
                old = paint(style, x, seeds)
                t_old = _median_seconds(lambda: paint(style, x, seeds), repeats)   # noqa: B023
            finally:
                ops_paint.gaussian = ops_pattern.gaussian = gaussian
            d = ((new * 255).round() - (old * 255).round()).abs()
            if d.max() > 0:
                pairs.append((style, old[0], new[0]))
                t_new = _median_seconds(lambda: paint(style, x, seeds), repeats)   # noqa: B023
                style_rows.append([style, batch / t_old, batch / t_new, t_old / t_new, d.max().item(),
                                   d.mean().item()])
    before_after(pairs, FIGURE)
    return ("The blur alone ([{b}, 3, 512, 512], ms an image):\n\n".format(b=batch)
            + table(["sigma px", "full resolution ms", "reduced ms", "speed-up", "max |diff| levels",
                     "mean |diff| levels"], blur_rows)
            + "\n\nStyles whose pixels the reduced blur changes, painted both ways (images/s, one thread):\n\n"
            + table(["style", "full-resolution blur", "reduced blur", "speed-up", "max |diff| levels",
                     "mean |diff| levels"], style_rows)
            + f"\n\nBefore / after, and the difference x 40: `{FIGURE.relative_to(FIGURE.parents[2])}`.")


FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "wide_blur.png"


def before_after(pairs: list[tuple[str, torch.Tensor, torch.Tensor]], path: Path, size: int = 192) -> None:
    """One row a style: painted with the full-resolution blur, with the reduced one, |difference| x 40."""
    tiles = []
    for _, old, new in pairs:
        diff = ((new - old).abs() * 40).clamp(0, 1)
        tiles.append(torch.cat([F.interpolate(t[None], size=(size, size), mode="area")[0] for t in (old, new, diff)], 2))
    grid = (torch.cat(tiles, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    img = Image.fromarray(grid)
    draw = ImageDraw.Draw(img)
    for i, (style, _, _) in enumerate(pairs):
        draw.text((4, i * size + 4), f"{style}: full-res blur | reduced | |diff| x40", fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows, means = [], {}
    for device in devices:
        x = render("Horses", list(range(args.batch)), 512, device)[0]
        rates = []
        for s in UC60:
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                paint(s, x, list(range(args.batch)))
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            r = args.batch / statistics.median(times)
            rates.append(r)
            rows.append([s, device, r])
        means[(device, f"1 process, {torch.get_num_threads()} threads (harmonic mean over styles)")] = \
            len(rates) / sum(1 / r for r in rates)
        print(device, means, flush=True)
    cores = os.cpu_count() or 1
    means[("cpu", f"{cores} processes x 1 thread (all styles, as `build --workers {cores}`)")] = \
        pool_rate(_paint_job, [(s, args.batch) for s in UC60], cores, args.repeats)
    print(means, flush=True)
    train_objs, test_objs = OBJECTS[::2], OBJECTS[1::2]
    size = 96
    content = {o: render(o, [7, 8], size)[0] for o in OBJECTS}
    cents, tests = [], []
    for si, s in enumerate(UC60):
        tr = [features(paint(s, content[o], [1, 2])[k]) for o in train_objs for k in range(2)]
        te = [features(paint(s, content[o], [3, 4])[k]) for o in test_objs for k in range(2)]
        cents.append(np.mean(tr, 0))
        tests += [(f, si) for f in te]
    cents = np.stack(cents)
    conf = np.zeros((len(UC60), len(UC60)), int)
    for f, c in tests:
        conf[c, int(np.argmin(((cents - f) ** 2).sum(1)))] += 1
    acc = np.trace(conf) / conf.sum()
    pairs = sorted(((conf[i, j] + conf[j, i], UC60[i], UC60[j]) for i in range(len(UC60)) for j in range(i + 1, len(UC60))
                    if conf[i, j] + conf[j, i]), reverse=True)[:10]
    summary = table(["device", "layout", "images/s at 512 px (61 styles)"], [[d, lay, v] for (d, lay), v in means.items()])
    body = (f"{summary}\n\nGoal: >= 10 images/s averaged over the palette at 512 px on 2 cores. A build paints "
            f"with one process per worker, so the multi-process row is the throughput a build gets from the cores.\n\n"
            f"Separability probe (nearest centroid on colour, gradient-magnitude and orientation histograms, "
            f"trained on 10 objects, tested on the other 10, 96 px): **{acc * 100:.1f}%** top-1 over 61 styles "
            f"(chance 1.6%). Most confused pairs (errors both ways): "
            + ", ".join(f"{a} / {b} ({n})" for n, a, b in pairs)
            + ". The real bar is the style judge's held-out accuracy.\n\n<details><summary>per style</summary>\n\n"
            + table(["style", "device", "images/s"], rows) + "\n\n</details>")
    body += ("\n\n### Wide blurs at reduced resolution (`styles.base.gaussian`, sigma >= "
             "`WIDE_BLUR_PX`)\n\n" + wide_blur(args.batch, args.repeats))
    print(body)
    write_section("styles", body)


if __name__ == "__main__":
    main()
