"""Record a judge trained on a real build: held-out accuracy per epoch, wall time and images/s of the
training run, and the evaluation report (top-1, worst classes, top confusions, ECE, degradations)
against the issue's targets. It reads the files the run wrote, so the figures are the run's own:

    canvasdata build judge-train --workers 2
    canvasdata judge train vit-tiny-cpu --data judge-train --out judges/tiny
    canvasdata judge eval judges/tiny --data judge-train --split test
    python bench/judge_train.py judges/tiny [--eval judges/tiny/eval] [--data judge-train]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

FIGURES = Path(__file__).resolve().parent / "figures"
TARGETS = {"style": 0.97, "object": 0.98}  # vit-tiny-cpu on judge-train, CPU (judges issue)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("judge", type=Path, help="judge directory written by `canvasdata judge train`")
    ap.add_argument("--eval", type=Path, help="report directory of `canvasdata judge eval` (default: JUDGE/eval)")
    ap.add_argument("--data", default="judge-train", help="the build it was trained on (for the text)")
    args = ap.parse_args()
    history = json.loads((args.judge / "history.json").read_text())
    report = json.loads(((args.eval or args.judge / "eval") / "eval.json").read_text())
    recipe = history["recipe"]
    tasks = list(report["tasks"])
    epochs = table(["epoch", "step"] + [f"held-out {t} top-1 %" for t in tasks],
                   [[e["epoch"], e["step"]] + [100 * e["test_accuracy"][t] for t in tasks] for e in history["epochs"]])
    rows = []
    for t, r in report["tasks"].items():
        target = TARGETS.get(t)
        rows.append([t, len(r["per_class"]), 100 * r["top1"], f"{100 * target:.0f}" if target else "-",
                     "yes" if target and r["top1"] >= target else "no", r["ece"]]
                    + [100 * r["degraded_top1"].get(k, float("nan")) for k in ("downscale2x", "jpeg50", "blur")])
    final = table(["task", "classes", "top-1 %", "target %", "reached", "ECE", "downscale 2x %", "JPEG 50 %",
                   "blur %"], rows)
    details = []
    for t, r in report["tasks"].items():
        worst = sorted(r["per_class"].items(), key=lambda kv: kv[1])[:8]
        conf = ", ".join(f"{c['true']} → {c['predicted']} ({c['count']})" for c in r["top_confusions"][:8]) or "none"
        details.append(f"- {t}: worst classes " + ", ".join(f"{n} {100 * a:.0f}%" for n, a in worst)
                       + f"; top confusions: {conf}.")
    figures = []
    for t in tasks:
        png = (args.eval or args.judge / "eval") / f"confusion_{t}.png"
        if png.exists():
            dest = FIGURES / f"judge_train_confusion_{t}.png"
            dest.parent.mkdir(exist_ok=True)
            shutil.copyfile(png, dest)
            figures.append(f"[{t} confusion matrix]({dest.relative_to(FIGURES.parents[1]).as_posix()})")
    body = (f"`{recipe['name']}` ({recipe['model']}, {recipe['image_size']} px, {recipe['epochs']} epochs, batch "
            f"{recipe['batch_size']}) trained on the `{args.data}` build, evaluated on its held-out test split "
            f"({report['num_images']:,} images) on {history.get('device', 'cpu')}: "
            f"**{history['seconds'] / 60:.1f} min** wall time, **{history['train_images_per_s']:.1f}** training "
            f"images/s (decoding, augmentation and the per-epoch evaluation included).\n\n{final}\n\n"
            + "\n".join(details) + (f"\n\nFigures: {', '.join(figures)}." if figures else "") + f"\n\n<details><summary>held-out accuracy per epoch</summary>\n\n{epochs}\n\n</details>")
    print(body)
    write_section("judge_train", body)


if __name__ == "__main__":
    main()
