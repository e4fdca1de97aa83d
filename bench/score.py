"""Benchmark scoring against what these cores allow: answer images judged per second by `run_judges` (what
`evaluate score` / `suite` run) with the CPU judge recipe's model (EfficientNet-Lite0, 160 px, random
weights: speed does not depend on them), against a ceiling built from each part of the per-image work
measured alone on one core: decoding a 512 px answer JPEG, the protocol's resize to the judge's size, and
the judge's forward pass (batched). The ceiling is the cores divided by the sum of those single-core
seconds (every part spread perfectly over the cores); start-up (decode workers starting) is timed apart.
Both protocols' resizes: `unlearncanvas` (full decode, torchvision bilinear) and `canvasdata` (JPEG draft
decode, PIL bicubic).

    python bench/score.py [--images 512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
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

from canvasdata.devices import intra_op_threads, usable_cores  # noqa: E402
from canvasdata.evaluate import read_answer_folder, run_judges  # noqa: E402
from canvasdata.evaluate.preprocess import open_image, resize_for_judge  # noqa: E402
from canvasdata.evaluate.protocol import get_protocol  # noqa: E402
from canvasdata.judges import Judge, JudgeInfo, create_backbone  # noqa: E402
from canvasdata.judges.recipe import load_judge_recipe  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC50  # noqa: E402

RECIPE = "effnet-lite0-cpu"
BATCH = 64


def make_answers(folder: Path, n: int) -> None:
    """`n` 512 px answer JPEGs (quality 95, as `evaluate generate` writes): smooth colour fields with detail."""
    rng = np.random.default_rng(0)
    for i in range(n):
        low = Image.fromarray((rng.random((16, 16, 3)) * 255).astype("uint8")).resize((512, 512), Image.BICUBIC)
        detail = (rng.random((512, 512, 3)) * 40 - 20).astype("int16")
        img = Image.fromarray(np.clip(np.asarray(low, dtype="int16") + detail, 0, 255).astype("uint8"))
        img.save(folder / f"{UC50[i % 51]}_{OBJECTS[i % 20]}_seed{i}.jpg", quality=95)


def make_judge() -> Judge:
    r = load_judge_recipe(RECIPE)
    names = {"style": list(UC50), "object": list(OBJECTS)}
    info = JudgeInfo(model=r.model, tasks=["style", "object"], class_names=names,
                     label_space={"style": "uc50", "object": "objects"}, image_size=r.image_size,
                     model_kwargs=r.kwargs)
    return Judge(create_backbone(r.model, len(UC50), r.image_size, r.kwargs), info).eval()


def per_image(fn, items) -> float:
    """Median seconds an item over 3 passes of `fn` on every item."""
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for x in items:
            fn(x)
        times.append((time.perf_counter() - t) / len(items))
    return statistics.median(times)


def parts(answers, judge: Judge, mode: str) -> dict[str, float]:
    """Single-core seconds an image of decode, resize and forward under a judge resize `mode`."""
    size = judge.image_size
    draft = size if mode == "pil-bicubic-draft" else None
    sample = answers[:64]
    with intra_op_threads(1):
        decode = per_image(lambda a: open_image(a, draft), sample)
        imgs = [open_image(a, draft) for a in sample]
        resize = per_image(lambda im: resize_for_judge(im, size, mode), imgs)
        x = torch.stack([resize_for_judge(im, size, mode) for im in imgs[:BATCH]])
        with torch.inference_mode():
            judge.logits(x.float() / 255)   # warm-up
            forward = per_image(lambda b: judge.logits(b.float() / 255), [x]) / len(x)
    return {"decode": decode, "resize": resize, "forward": forward}


def end_to_end(answers, judge: Judge, mode: str, workers: int, repeats: int) -> tuple[float, float]:
    """(images/s after start-up, start-up s) of `run_judges` at `workers` decode workers: timed on all
    answers and on one batch, the rate from the difference."""
    def timed(items) -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            run_judges([judge], items, BATCH, workers, resize=mode)
        return time.perf_counter() - t

    timed(answers[:BATCH])   # warm-up
    small = statistics.median(timed(answers[:BATCH]) for _ in range(repeats))
    full = statistics.median(timed(answers) for _ in range(repeats))
    rate = (len(answers) - BATCH) / (full - small)
    return rate, max(small - BATCH / rate, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    cores = usable_cores()
    judge = make_judge()
    rows, ceilings = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        make_answers(Path(tmp), args.images)
        answers = read_answer_folder(tmp)
        for proto in ("unlearncanvas", "canvasdata"):
            mode = get_protocol(proto).judge_resize
            p = parts(answers, judge, mode)
            ceiling = cores / sum(p.values())
            ceilings[proto] = (p, ceiling)
            for workers in (0, 1, 2):
                rate, start = end_to_end(answers, judge, mode, workers, args.repeats)
                rows.append([proto, mode, workers, rate, start, ceiling, rate / ceiling])
                print(rows[-1], flush=True)
    part_rows = [[proto, mode_ms(p["decode"]), mode_ms(p["resize"]), mode_ms(p["forward"]),
                  mode_ms(sum(p.values())), c] for proto, (p, c) in ceilings.items()]
    body = "\n".join([
        f"{args.images} answer JPEGs of 512 px (quality 95) judged by the `{RECIPE}` recipe's model "
        f"({judge.info.model}, {judge.image_size} px, style and object heads, random weights), batches of {BATCH}; "
        f"{cores} usable cores, {os.cpu_count()} CPUs.", "",
        "Each part alone, one core (ms an image; the forward pass at batch 64):", "",
        table(["protocol", "decode ms", "resize ms", "forward ms", "sum ms", f"ceiling images/s ({cores} cores)"],
              part_rows), "",
        "`run_judges` (what `evaluate score` runs), by decode workers; images/s after start-up (from the time "
        "of all images minus that of one batch), start-up apart:", "",
        table(["protocol", "judge resize", "decode workers", "images/s", "start-up s", "ceiling images/s",
               "share of ceiling"], rows),
    ])
    print(body)
    write_section("score", body)


def mode_ms(seconds: float) -> float:
    return seconds * 1000


if __name__ == "__main__":
    main()
