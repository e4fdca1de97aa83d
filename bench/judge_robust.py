"""Score judges on a split under the degradations a generated image shows, applied at the STORED
resolution (for the tiny world: 64 px) and then judged the way a generated image file is (decoded and
resized to the judge's input size, bicubic). `judge eval` degrades at the judge's input size instead
(160 px for the CPU judge), where a 2x downscale of an upsampled 64 px image loses almost nothing; this
script measures what a blurrier 64 px generation does.

    python bench/judge_robust.py judges/tiny judges/tiny-noaug --data world/data --split test \\
        [--json robust.json] [--write]

Conditions: clean; downscale 2x (antialiased bilinear down, bilinear up); Gaussian blur sigma 1 px;
JPEG quality 50 (PIL); and two harsher ones, downscale 3x and blur sigma 1.5. Per judge and condition:
style and object top-1 and the lowest per-style object accuracy. `--write` replaces this script's
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from canvasdata.data import LabelledImages, blur_px, decode, down_up, jpeg_reencode, load_split
from canvasdata.judges import load_judge
from canvasdata.judges.evaluate import predict

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

# name -> degradation of a uint8 image [3,H,W] at its stored resolution
CONDITIONS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "clean": None,
    "downscale2x": lambda x: down_up(x, 2.0),
    "blur1": lambda x: blur_px(x, 1.0),
    "jpeg50": lambda x: jpeg_reencode(x, 50),
    "downscale3x": lambda x: down_up(x, 3.0),
    "blur1.5": lambda x: blur_px(x, 1.5),
}
REQUIRED = ("clean", "downscale2x", "blur1", "jpeg50")


def _png(x: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x.permute(1, 2, 0).numpy()).save(buf, "PNG")
    return buf.getvalue()


def degraded_split(data: LabelledImages, condition: str) -> LabelledImages:
    """The split with every image degraded at its stored resolution and stored losslessly (PNG)."""
    fn = CONDITIONS[condition]
    if fn is None:
        return data
    images = [_png(fn(decode(b, None))) for b in data.images]
    return LabelledImages(images, data.labels, data.class_names, data.label_space)


def scores(judge, data: LabelledImages, workers: int) -> dict:
    """Top-1 per task and the lowest per-style object accuracy (with that style's name)."""
    probs = predict(judge, data, batch_size=64, workers=workers, progress=False)
    out: dict = {}
    for t in judge.tasks:
        correct = probs[t].argmax(1) == data.labels[t]
        out[t] = float(correct.mean())
        if t == "object" and "style" in data.labels:
            styles = data.labels["style"]
            per = {data.class_names["style"][s]: float(correct[styles == s].mean()) for s in np.unique(styles)}
            low = min(per, key=per.get)
            out["object_lowest_style"] = {"style": low, "accuracy": per[low]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("judges", type=Path, nargs="+", help="judge directories written by `canvasdata judge train`")
    ap.add_argument("--data", required=True, help="build directory (or datasets id) with style and object labels")
    ap.add_argument("--split", default="test")
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--write", action="store_true", help="replace this script's section of BENCHMARKS.md")
    args = ap.parse_args()
    data = load_split(args.data, args.split, ["style", "object"])
    degraded = {c: degraded_split(data, c) for c in args.conditions}
    results: dict = {}
    rows = []
    for path in args.judges:
        judge = load_judge(path, "cpu")
        results[str(path)] = {c: scores(judge, d, args.workers) for c, d in degraded.items()}
        for c, r in results[str(path)].items():
            low = r.get("object_lowest_style")
            rows.append([path.name, c, f"{100 * r['style']:.1f}" if "style" in r else "-",
                         f"{100 * r['object']:.1f}" if "object" in r else "-",
                         f"{100 * low['accuracy']:.1f} ({low['style']})" if low else "-"])
    body = (f"Split `{args.split}` of `{Path(args.data).name}` ({len(data):,} images), degraded at the stored "
            "resolution, then judged as image files are.\n\n"
            + table(["judge", "condition", "style %", "object %", "lowest per-style object %"], rows))
    print(body)
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "split": args.split, "results": results}, indent=1))
    if args.write:
        write_section("judge_robust", body)


if __name__ == "__main__":
    main()
