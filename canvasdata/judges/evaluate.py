"""Evaluate a judge: top-1 overall and per class, confusion matrices (PNG), top confusions,
calibration (ECE), accuracy under the degradations that generated images show, and where it fails:
object accuracy per style (does a style erase objects?) and style accuracy per object (does an object
hide a style?), as tables in the report and as PNG heat tables; and the held-out top-1 that training
reports at each epoch's end (`accuracy`)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from canvasdata.data import ImageLabels, LabelledImages, make_loader
from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH
from canvasdata.errors import UsageError
from canvasdata.formats.common import save_image, write_json
from canvasdata.judges.model import Judge
from canvasdata.sheet import label_font

DEGRADATIONS = ("downscale2x", "jpeg50", "blur")
# The label each task's accuracy is grouped by: a judge's failures often follow the other factor.
GROUP_BY = {"object": "style", "style": "object"}


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
            pixels = (img.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
            Image.fromarray(pixels).save(buf, "JPEG", quality=50)
            out.append(torch.from_numpy(np.asarray(Image.open(buf)).copy()).permute(2, 0, 1).float() / 255)
        return torch.stack(out)
    if kind == "blur":
        k = torch.tensor([0.25, 0.5, 0.25])
        k2 = (k[:, None] * k[None, :]).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2, groups=3)
    raise UsageError(f"unknown degradation {kind!r}; allowed: {', '.join(DEGRADATIONS)}")


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs((pred[sel] == labels[sel]).mean() - conf[sel].mean())
    return float(total)


@torch.no_grad()
def predict(judge: Judge, data: LabelledImages, batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS,
            degradation: str | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """Softmax probabilities per task over a split, with a progress bar over batches (a large split
    takes minutes on a CPU)."""
    dev = next(judge.parameters()).device
    loader = make_loader(ImageLabels(data, judge.image_size), batch_size, shuffle=False, workers=workers)
    probs: dict[str, list[np.ndarray]] = {t: [] for t in judge.tasks}
    judge.eval()
    for x, _ in tqdm(loader, desc=f"predict ({degradation or 'clean'})", unit="batch", disable=not progress,
                     leave=False):
        x = degrade(x, degradation) if degradation else x.float() / 255
        for t, logits in judge.logits(x.to(dev)).items():
            probs[t].append(logits.float().softmax(1).cpu().numpy())
    return {t: np.concatenate(v) for t, v in probs.items()}


def accuracy(judge: Judge, loader: DataLoader, device: torch.device, amp: bool) -> dict[str, float]:
    """Top-1 accuracy per task over a loader (channels-last tensors, bf16 autocast on CUDA when `amp`)."""
    judge.eval()
    correct: dict[str, int] = {}
    total = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            for t, logits in judge.logits(x).items():
                correct[t] = correct.get(t, 0) + int((logits.argmax(1).cpu() == y[t]).sum())
            total += x.shape[0]
    return {t: c / max(total, 1) for t, c in correct.items()}


def confusion(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """k x k counts: rows true class, columns predicted class."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (labels, pred), 1)
    return m


def accuracy_by(correct: np.ndarray, groups: np.ndarray, names: list[str]) -> dict[str, dict]:
    """Accuracy and image count per group present (in label-space order), e.g. object accuracy per style."""
    out = {}
    for g in np.unique(groups):
        sel = groups == g
        out[names[g]] = {"accuracy": float(correct[sel].mean()), "n": int(sel.sum())}
    return out


def worst(groups: dict[str, dict], k: int = 5) -> list[tuple[str, dict]]:
    """The `k` groups of `accuracy_by` with the lowest accuracy (more images first on ties)."""
    return sorted(groups.items(), key=lambda kv: (kv[1]["accuracy"], -kv[1]["n"], kv[0]))[:k]


Colour = tuple[int, int, int]
EMPTY: Colour = (242, 242, 242)
_ACCURACY_STOPS = ((0.0, (215, 48, 39)), (0.5, (252, 141, 89)), (0.8, (254, 224, 139)), (1.0, (145, 207, 96)))


def _accuracy_colour(acc: float) -> Colour:
    """Red (0) through orange and yellow to green (1): failures stand out."""
    for (a, ca), (b, cb) in itertools.pairwise(_ACCURACY_STOPS):
        if acc <= b:
            f = (acc - a) / (b - a)
            return tuple(round(x + (y - x) * f) for x, y in zip(ca, cb, strict=True))
    return _ACCURACY_STOPS[-1][1]


def _share_colour(share: float, diagonal: bool) -> Colour:
    """Blue for correct predictions, red for confusions, deeper with the share of the row."""
    if diagonal:
        return int(255 * (1 - share)), int(255 * (1 - share * 0.6)), 255
    return 255, int(255 * (1 - share)), int(255 * (1 - share))


def _ink(colour: Colour) -> str:
    return "white" if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 140 else "black"


def _column_names(cols: list[str], offsets: list[int], cw: int, height: int, width: int,
                  font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> Image.Image:
    """The column names written upwards, each centred on its column (`offsets` from the grid's left)."""
    strip = Image.new("RGB", (height, width), "white")
    draw = ImageDraw.Draw(strip)
    for j, name in enumerate(cols):
        _, ink_top, _, ink_bottom = font.getbbox(name)
        draw.text((4, offsets[j] + (cw - ink_top - ink_bottom) / 2), name, fill="black", font=font)
    return strip.rotate(90, expand=True)


def heat_table(cells: list[list[tuple[str, Colour]]], rows: list[str], cols: list[str], path: Path, title: str,
               note: str = "", row_axis: str = "", col_axis: str = "", margin_rows: int = 0,
               margin_cols: int = 0) -> None:
    """A PNG grid of coloured cells with their values written in: row names on the left, column names
    rotated above, the axis names, a title and a note line. The last `margin_rows` rows and
    `margin_cols` columns (totals) are set apart by a gap. Cells grow to fit their widest value."""
    font, pad, gap, ch = label_font(12), 6, 6, 20

    def width(text: str) -> int:
        return int(np.ceil(font.getlength(text)))

    top_off, bottom_off = font.getbbox("Ag")[1], font.getbbox("Ag")[3]
    line = bottom_off + 5
    nr, nc = len(rows), len(cols)
    cw = max(22, max((width(t) for r in cells for t, _ in r), default=0) + 8)
    row_w = max(width(n) for n in rows) + 8
    col_h = max(width(n) for n in cols) + 8
    axis_w = line + 4 if row_axis else 0
    x0 = pad + axis_w + row_w
    top = pad + line * (2 if note else 1) + 4 + (line if col_axis else 0)
    y0 = top + col_h
    grid_w, grid_h = nc * cw + (gap if margin_cols else 0), nr * ch + (gap if margin_rows else 0)
    cx = [x0 + j * cw + (gap if j >= nc - margin_cols else 0) for j in range(nc)]
    cy = [y0 + i * ch + (gap if i >= nr - margin_rows else 0) for i in range(nr)]
    img_w = max(x0 + grid_w, pad + width(title), pad + width(note), x0 + width(col_axis)) + 2 * pad
    img_h = max(y0 + grid_h, y0 + width(row_axis)) + pad + 2
    img = Image.new("RGB", (img_w, img_h), "white")
    d = ImageDraw.Draw(img)
    d.text((pad, pad), title, fill="black", font=font)
    if note:
        d.text((pad, pad + line), note, fill=(90, 90, 90), font=font)
    if col_axis:
        d.text((x0 + max(0, (grid_w - width(col_axis)) // 2), top - line), col_axis, fill=(40, 40, 160), font=font)
    img.paste(_column_names(cols, [x - x0 for x in cx], cw, col_h, grid_w, font), (x0, top))
    if row_axis:
        label = Image.new("RGB", (width(row_axis) + 2, line), "white")
        ImageDraw.Draw(label).text((1, 1), row_axis, fill=(40, 40, 160), font=font)
        img.paste(label.rotate(90, expand=True), (pad, y0 + max(0, (grid_h - label.width) // 2)))
    for i, name in enumerate(rows):
        text_y = cy[i] + (ch - top_off - bottom_off) / 2
        d.text((x0 - 4 - width(name), text_y), name, fill="black", font=font)
        for j, (text, colour) in enumerate(cells[i]):
            d.rectangle([cx[j], cy[i], cx[j] + cw - 1, cy[i] + ch - 1], fill=colour, outline=(220, 220, 220))
            if text:
                d.text((cx[j] + (cw - width(text)) / 2, text_y), text, fill=_ink(colour), font=font)
    save_image(img, path)


def confusion_png(matrix: np.ndarray, names: list[str], path: Path, title: str) -> None:
    """Confusion matrix with the image counts in the cells (rows: true, columns: predicted), coloured
    by the share of the row, with each true class's count and top-1 beside it. Only the classes present
    (with a label or a prediction) are shown, so a 61-class space evaluated on 3 styles stays small."""
    keep = np.flatnonzero((matrix.sum(1) > 0) | (matrix.sum(0) > 0))
    if not keep.size:
        raise UsageError(f"{path}: an empty confusion matrix (no images)")
    m = matrix[np.ix_(keep, keep)]
    n_true = matrix[keep].sum(1)
    cells = []
    for i in range(len(keep)):
        row = [(str(v), _share_colour(v / max(n_true[i], 1), i == j)) if v else ("", (255, 255, 255))
               for j, v in enumerate(m[i])]
        acc = matrix[keep[i], keep[i]] / n_true[i] if n_true[i] else None
        row += [(str(n_true[i]), EMPTY),
                (f"{100 * acc:.0f}", _accuracy_colour(acc)) if acc is not None else ("", EMPTY)]
        cells.append(row)
    heat_table(cells, [names[i] for i in keep], [names[i] for i in keep] + ["images", "% correct"], path, title,
               f"cells: image counts, coloured by their share of the row · {len(keep)} of {len(names)} classes "
               "present",
               row_axis="true", col_axis="predicted", margin_cols=2)


def cross_png(correct: np.ndarray, styles: np.ndarray, objects: np.ndarray, style_names: list[str],
              object_names: list[str], path: Path, title: str) -> None:
    """Top-1 (%) of one task in every style x object cell present, with an "all" column (per style) and
    row (per object): shows which styles erase objects and which objects hide styles."""
    rs, cs = np.unique(styles), np.unique(objects)
    cells = []
    for s in [*rs, None]:
        in_row = styles == s if s is not None else np.ones(correct.shape, dtype=bool)
        row = []
        for o in [*cs, None]:
            sel = in_row & (objects == o) if o is not None else in_row
            acc = correct[sel].mean() if sel.any() else None
            row.append((f"{100 * acc:.0f}", _accuracy_colour(acc)) if acc is not None else ("", EMPTY))
        cells.append(row)
    heat_table(cells, [style_names[i] for i in rs] + ["all"], [object_names[i] for i in cs] + ["all"], path, title,
               "cells: % of the cell's images judged right · all: the whole row or column · blank: no images",
               row_axis="style", col_axis="object", margin_rows=1, margin_cols=1)


def _check_labels(judge: Judge, data: LabelledImages) -> None:
    """The data carries every task of the judge, with the judge's class names in its order."""
    for t in judge.tasks:
        if t not in data.labels:
            raise UsageError(f"the data has no {t!r} labels (it has {', '.join(data.labels)})")
        if list(data.class_names[t]) != list(judge.class_names[t]):
            raise UsageError(f"the judge's {t} classes ({judge.label_space[t]}, {len(judge.class_names[t])}) are "
                             f"not the data's ({data.label_space[t]}, {len(data.class_names[t])})")


def _task_scores(names: list[str], y: np.ndarray, probs: np.ndarray, degraded: dict[str, np.ndarray]) -> dict:
    """One task's top-1, per-class accuracy and counts, top confusions, ECE and degraded top-1."""
    p = probs.argmax(1)
    m = confusion(y, p, len(names))
    n_true = m.sum(1)
    off = [(int(m[i, j]), names[i], names[j]) for i in range(len(names)) for j in range(len(names))
           if i != j and m[i, j]]
    return {
        "top1": float((p == y).mean()),
        "per_class": {names[i]: float(m[i, i] / n_true[i]) for i in range(len(names)) if n_true[i]},
        "per_class_n": {names[i]: int(n_true[i]) for i in range(len(names)) if n_true[i]},
        "top_confusions": [{"true": a, "predicted": b, "count": c} for c, a, b in sorted(off, reverse=True)[:10]],
        "ece": ece(probs, y),
        "degraded_top1": {k: float((v.argmax(1) == y).mean()) for k, v in degraded.items()},
    }


def _task_figures(t: str, names: list[str], y: np.ndarray, correct: np.ndarray, p: np.ndarray,
                  data: LabelledImages, crossed: bool, top1: float, out: Path) -> list[str]:
    """The task's confusion matrix PNG and, for crossed data, its style x object accuracy PNG."""
    figures = [f"confusion_{t}.png"]
    confusion_png(confusion(y, p, len(names)), names, out / figures[0],
                  f"{t} confusion matrix · top-1 = {top1 * 100:.1f}% · {len(y)} images")
    if crossed:
        figures.append(f"cross_{t}.png")
        cross_png(correct, data.labels["style"], data.labels["object"], data.class_names["style"],
                  data.class_names["object"], out / figures[1],
                  f"{t} top-1 (%) by style x object · {top1 * 100:.1f}% overall · {len(y)} images")
    return figures


def evaluate_judge(judge: Judge, data: LabelledImages, out: Path | str | None = None, batch_size: int = JUDGE_BATCH,
                   workers: int = DECODE_WORKERS, degradations: bool = True, progress: bool = True,
                   about: dict | None = None) -> dict:
    """Accuracy, per-class accuracy and counts, top confusions, ECE and robustness of each of the judge's
    tasks; where `data` also has the other factor's labels (style for the object task, object for the
    style task), accuracy per group of it and per style x object cell. Writes eval.json and PNGs to `out`.
    `about` (e.g. source and split) is stored in the report as "data"."""
    _check_labels(judge, data)
    report: dict = {"num_images": len(data), **({"data": about} if about else {}), "tasks": {}}
    probs = predict(judge, data, batch_size, workers, progress=progress)
    degraded = ({kind: predict(judge, data, batch_size, workers, kind, progress) for kind in DEGRADATIONS}
                if degradations else {})
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    for t in judge.tasks:
        names, y, p = judge.class_names[t], data.labels[t], probs[t].argmax(1)
        correct = p == y
        r = report["tasks"][t] = _task_scores(names, y, probs[t], {k: v[t] for k, v in degraded.items()})
        other = GROUP_BY.get(t)
        crossed = other in data.labels
        if crossed:
            r[f"by_{other}"] = accuracy_by(correct, data.labels[other], data.class_names[other])
            styles, objects = data.labels["style"], data.labels["object"]
            r["by_style_object"] = {
                data.class_names["style"][s]: accuracy_by(correct[styles == s], objects[styles == s],
                                                          data.class_names["object"])
                for s in np.unique(styles)}
        if out is not None:
            r["figures"] = _task_figures(t, names, y, correct, p, data, crossed, r["top1"], Path(out))
    if out is not None:
        write_json(Path(out) / "eval.json", report)
    return report
