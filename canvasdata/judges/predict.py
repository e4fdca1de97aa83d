"""Batched prediction over image files, written as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from canvasdata.devices import JUDGE_BATCH
from canvasdata.encode import decode_image, image_tensor
from canvasdata.formats.common import write_text
from canvasdata.judges.model import Judge


def load_images(paths: Sequence[Path], size: int) -> torch.Tensor:
    """Image files as a uint8 batch [B,3,size,size] (JPEG draft decoding, bicubic resize); a missing,
    unreadable or oversized file is one error naming it."""
    return torch.stack([image_tensor(decode_image(p, size, resize=True)) for p in paths])


@torch.no_grad()
def predict_paths(judge: Judge, paths: Iterable[str | Path], batch_size: int = JUDGE_BATCH) -> list[dict]:
    """One row per image and task: predicted class, its probability and the top-5."""
    paths = [Path(p) for p in paths]
    dev = next(judge.parameters()).device
    rows = []
    for i in range(0, len(paths), batch_size):
        chunk = paths[i:i + batch_size]
        x = load_images(chunk, judge.image_size).to(dev)
        for t, logits in judge.logits(x).items():
            probs = logits.float().softmax(1).cpu().numpy()
            names = judge.class_names[t]
            for p, pr in zip(chunk, probs, strict=True):
                top = np.argsort(-pr)[:5]
                rows.append({"path": str(p), "task": t, "prediction": names[top[0]], "probability": float(pr[top[0]]),
                             "top5": ";".join(f"{names[j]}:{pr[j]:.3f}" for j in top)})
    return rows


def write_csv(rows: list[dict], out: Path | str) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=["path", "task", "prediction", "probability", "top5"])
    w.writeheader()
    w.writerows(rows)
    write_text(Path(out), buf.getvalue())
