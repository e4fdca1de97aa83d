"""Evaluate a judge: top-1 overall and per class, confusion matrices (PNG), top confusions,
calibration (ECE) and accuracy under the degradations that generated images show."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from canvasdata.data import ImageLabels, LabelledImages, make_loader
from canvasdata.judges.model import Judge

DEGRADATIONS = ("downscale2x", "jpeg50", "blur")


def degrade(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Degrade uint8 or [0,1] images: 2x down and back up, JPEG quality 50, or a slight Gaussian blur."""
    x = x.float() / 255 if x.dtype == torch.uint8 else x
    if kind == "downscale2x":
        h, w = x.shape[-2:]
        return F.interpolate(F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True), size=(h, w),
                             mode="bilinear")
    if kind == "jpeg50":
        out = []
        for img in x:
            buf = io.BytesIO()
            Image.fromarray((img.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()).save(buf, "JPEG", quality=50)
            out.append(torch.from_numpy(np.asarray(Image.open(buf)).copy()).permute(2, 0, 1).float() / 255)
        return torch.stack(out)
    if kind == "blur":
        k = torch.tensor([0.25, 0.5, 0.25])
        k2 = (k[:, None] * k[None, :]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    raise ValueError(f"unknown degradation {kind!r}; allowed: {', '.join(DEGRADATIONS)}")


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs((pred[sel] == labels[sel]).mean() - conf[sel].mean())
    return float(total)


@torch.no_grad()
def predict(judge: Judge, data: LabelledImages, batch_size: int = 64, workers: int = 2,
            degradation: str | None = None) -> dict[str, np.ndarray]:
    """Softmax probabilities per task over a split."""
    dev = next(judge.parameters()).device
    loader = make_loader(ImageLabels(data, judge.image_size), batch_size, shuffle=False, workers=workers)
    probs: dict[str, list[np.ndarray]] = {t: [] for t in judge.tasks}
    judge.eval()
    for x, _ in loader:
        x = degrade(x, degradation) if degradation else x.float() / 255
        for t, logits in judge.logits(x.to(dev)).items():
            probs[t].append(logits.float().softmax(1).cpu().numpy())
    return {t: np.concatenate(v) for t, v in probs.items()}


def confusion(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


def confusion_png(matrix: np.ndarray, names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a heat grid with class names (rows: true, columns: predicted)."""
    k = len(names)
    cell = max(8, min(24, 900 // k))
    font = ImageFont.load_default()
    left = 8 + 6 * max(len(n) for n in names)
    top = 30
    img = Image.new("RGB", (left + k * cell + 10, top + k * cell + left), "white")
    d = ImageDraw.Draw(img)
    d.text((4, 4), title, fill="black", font=font)
    rows = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    for i in range(k):
        d.text((4, top + i * cell + cell // 2 - 5), names[i], fill="black", font=font)
        for j in range(k):
            v = rows[i, j]
            colour = (int(255 * (1 - v)), int(255 * (1 - v * 0.6)), 255) if i == j else (255, int(255 * (1 - v)), int(255 * (1 - v)))
            d.rectangle([left + j * cell, top + i * cell, left + (j + 1) * cell - 1, top + (i + 1) * cell - 1], fill=colour)
    label = Image.new("RGB", (left, k * cell), "white")
    ld = ImageDraw.Draw(label)
    for j in range(k):
        ld.text((2, j * cell + cell // 2 - 5), names[j], fill="black", font=font)
    img.paste(label.rotate(90, expand=True), (left, top + k * cell + 2))
    img.save(path)


def evaluate_judge(judge: Judge, data: LabelledImages, out: Path | str | None = None, batch_size: int = 64,
                   workers: int = 2, degradations: bool = True) -> dict:
    """Accuracy, per-class accuracy, top confusions, ECE and robustness; writes eval.json and PNGs to `out`."""
    report: dict = {"num_images": len(data), "tasks": {}}
    probs = predict(judge, data, batch_size, workers)
    degraded = {kind: predict(judge, data, batch_size, workers, kind) for kind in DEGRADATIONS} if degradations else {}
    for t in judge.tasks:
        names = judge.class_names[t]
        y, p = data.labels[t], probs[t].argmax(1)
        m = confusion(y, p, len(names))
        per_class = {names[i]: float(m[i, i] / m[i].sum()) for i in range(len(names)) if m[i].sum()}
        off = [(int(m[i, j]), names[i], names[j]) for i in range(len(names)) for j in range(len(names)) if i != j and m[i, j]]
        report["tasks"][t] = {
            "top1": float((p == y).mean()),
            "per_class": per_class,
            "top_confusions": [{"true": a, "predicted": b, "count": c} for c, a, b in sorted(off, reverse=True)[:10]],
            "ece": ece(probs[t], y),
            "degraded_top1": {k: float((v[t].argmax(1) == y).mean()) for k, v in degraded.items()},
        }
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            confusion_png(m, names, Path(out) / f"confusion_{t}.png",
                          f"{t}: top-1 {report['tasks'][t]['top1'] * 100:.1f}% on {len(y)} images")
    if out is not None:
        (Path(out) / "eval.json").write_text(json.dumps(report, indent=2))
    return report
