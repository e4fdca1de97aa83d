"""Benchmark the judge data path: decoded images/s at the training size, with and without reduced-size
JPEG decoding (PIL draft mode), with 0 and 2 DataLoader workers.

    python bench/loader.py [--data DIR]  (default: builds the mini recipe into a temporary directory)
"""

from __future__ import annotations

import argparse
import io
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

from canvasdata.data import ImageLabels, load_split, make_loader  # noqa: E402


class NoDraft(ImageLabels):
    def __getitem__(self, i: int):
        img = Image.open(io.BytesIO(self.data.images[i])).convert("RGB").resize((self.size, self.size), Image.BICUBIC)
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1), {t: int(v[i]) for t, v in self.data.labels.items()}


def rate(ds, workers: int, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        loader = make_loader(ds, 32, shuffle=False, workers=workers)
        t = time.perf_counter()
        n = sum(x.shape[0] for x, _ in loader)
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            from canvasdata.dataset import build
            from canvasdata.recipes import load_recipe

            data = str(Path(tmp) / "mini")
            build(load_recipe("mini"), data, progress=False, preview=False)
        split = load_split(data, "train", ["style", "object"])
        stored = Image.open(io.BytesIO(split.images[0])).size[0]
        rows = []
        for size in (stored // 2, 112, stored):
            for workers in (0, 2):
                rows.append([size, workers, rate(ImageLabels(split, size), workers), rate(NoDraft(split, size), workers)])
                print(rows[-1], flush=True)
    body = table(["target px", "workers", "images/s (draft decode)", "images/s (full decode + resize)"], rows)
    body += (f"\n\nImages stored at {stored} px ({len(split)} images of `{Path(data).name}`). Draft mode lets "
             "libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is at most half the stored size.")
    print(body)
    write_section("loader", body)


if __name__ == "__main__":
    main()
