"""Benchmark the whole build pipeline (content -> paint -> JPEG -> shard): images/s, MB/s, CPU use, peak memory.

Each measurement runs in a fresh process, so peak RSS and CPU time (the process and its worker children)
belong to that build alone. Memory must stay flat as the set grows: shards stream, nothing holds the set.
Workers: 1, 2 and `auto` (the command line's default: one per core, each rendering with one torch thread).

    python bench/build.py [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

# name -> (recipe, styles kept, objects kept, images per cell); None keeps the recipe's own.
CONFIGS = {
    "mini (256 px, 100 img)": ("mini", None, None, None),
    "unlearncanvas slice (512 px, 8x4x4 = 128 img)": ("unlearncanvas", 8, 4, 4),
    "unlearncanvas slice (512 px, 8x4x8 = 256 img)": ("unlearncanvas", 8, 4, 8),
    "unlearncanvas slice (512 px, 16x8x8 = 1024 img)": ("unlearncanvas", 16, 8, 8),
}
FULL_UNLEARNCANVAS = 61 * 20 * 20   # images of the full recipe


def slice_recipe(name: str, n_styles: int | None, n_objects: int | None, per_cell: int | None):
    from canvasdata.recipes import load_recipe

    recipe = load_recipe(name)
    if n_styles is None:
        return recipe
    n = per_cell or recipe.images_per_cell
    test = max(1, n // 5)
    splits = (("train", tuple(range(1, n - test + 1))), ("test", tuple(range(n - test + 1, n + 1))))
    # Shards of 32 rows: enough of them for two workers to share, and the same shard size in both
    # slices, so peak memory can be compared as the set doubles.
    return recipe.replace(styles=recipe.styles[:n_styles], objects=recipe.objects[:n_objects], images_per_cell=n,
                          splits=splits, output=dataclasses.replace(recipe.output, shard_rows=32))


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_one(config: str, workers: int | None, device: str) -> dict:
    """Build one configuration into a temporary directory; report time, bytes, CPU use and peak memory."""
    from canvasdata.dataset import build

    recipe = slice_recipe(*CONFIGS[config])
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), cpu_seconds()
        manifest = build(recipe, Path(tmp) / "out", device=device, workers=workers, progress=False, preview=False)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "images": manifest["num_rows"], "bytes": manifest["num_bytes"],
            "peak_mb": max(rss_self, rss_children), "cpu_percent": 100 * cpu / seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--workers", default="1", help=argparse.SUPPRESS)
    ap.add_argument("--configs", nargs="*", help="names of CONFIGS to run (default: all)")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, None if args.workers == "auto" else int(args.workers), args.device)))
        return
    rows = []
    for config in args.configs or CONFIGS:
        for workers in ((1, 2, "auto") if "1024" not in config else ("auto",)):
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, __file__, "--one", config, "--workers", str(workers),
                                      "--device", args.device], check=True, capture_output=True, text=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            sec = statistics.median(r["seconds"] for r in runs)
            img, mb = runs[0]["images"], runs[0]["bytes"] / 1e6
            rows.append([config, args.device, workers, img, sec, img / sec, mb / sec,
                         statistics.median(r["peak_mb"] for r in runs),
                         statistics.median(r["cpu_percent"] for r in runs)])
            print(rows[-1], flush=True)
    headers = ["build", "device", "workers", "images", "median s", "images/s", "MB/s", "peak RSS MB (per process)",
               "CPU %"]
    md = table(headers, rows)
    print(md)
    by = {(r[0], r[2]): r for r in rows}
    notes = []
    for config in CONFIGS:
        if (config, 1) in by and (config, 2) in by:
            notes.append(f"- {config}: 2 workers / 1 worker = {by[(config, 2)][5] / by[(config, 1)][5]:.2f}x images/s")
        if (config, "auto") in by and "unlearncanvas" in config:
            r = by[(config, "auto")]
            notes.append(f"- {config}, workers auto: {r[8]:.0f} % CPU, {r[5]:.1f} images/s -> the full unlearncanvas "
                         f"recipe ({FULL_UNLEARNCANVAS:,} images) in about {FULL_UNLEARNCANVAS / r[5] / 60:.0f} min")
    small, large = list(CONFIGS)[1], list(CONFIGS)[2]
    if (small, 1) in by and (large, 1) in by:
        notes.append(f"- Memory as the set doubles ({small} -> {large}, 1 worker): {by[(small, 1)][7]:.0f} MB -> "
                     f"{by[(large, 1)][7]:.0f} MB peak RSS: shards stream, nothing holds the set.")
    write_section("build", md + "\n\n" + "\n".join(notes) +
                  f"\n\nMedian of {args.repeats} runs each, every run in a fresh process "
                  "(`python bench/build.py`). Peak RSS is the larger of the main process and its largest worker.")


if __name__ == "__main__":
    main()
