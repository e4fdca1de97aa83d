"""A line chart drawn with PIL (no plotting library is a dependency): curves over x in [0, 1] (ψ of the
concealment probe; the steps of a request sequence, labelled by `xticks`) with values in [0, 1],
gridlines, ticks, a legend and a title."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

from canvasdata.sheet import label_font

WIDTH, HEIGHT = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 60, 170, 40, 50   # margins around the plotting area
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FONT = label_font(12)


def _xy(x: float, y: float) -> tuple[float, float]:
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    return LEFT + x * w, TOP + (1 - min(max(y, 0.0), 1.0)) * h


def _axes(d: ImageDraw.ImageDraw, title: str, xlabel: str, xticks: Sequence[tuple[float, str]]) -> None:
    for v in TICKS:
        d.line([_xy(0, v), _xy(1, v)], fill=(225, 225, 225))
        x, y = _xy(0, v)
        d.text((x - 30, y - 6), f"{v:.1f}", fill="black", font=FONT)
    for v, label in xticks:
        d.line([_xy(v, 0), _xy(v, 1)], fill=(225, 225, 225))
        x, y = _xy(v, 0)
        d.text((x - 3 * len(label), y + 6), label, fill="black", font=FONT)
    d.rectangle([_xy(0, 1), _xy(1, 0)], outline="black")
    d.text((LEFT, 12), title, fill="black", font=FONT)
    d.text((LEFT + (WIDTH - LEFT - RIGHT) / 2 - 3 * len(xlabel), HEIGHT - 24), xlabel, fill="black", font=FONT)


def line_chart(series: Mapping[str, Sequence[tuple[float, float | None]]], title: str, xlabel: str = "psi",
               marks: Sequence[tuple[float, float, str]] = (),
               xticks: Sequence[tuple[float, str]] | None = None) -> Image.Image:
    """An RGB chart of `series` ({name: [(x, y), ...]}, x and y in [0, 1]; None values skipped), with
    `marks` (x, y, label) circled and `xticks` ((x, label); default 0.0 ... 1.0); returns the image."""
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    d = ImageDraw.Draw(img)
    _axes(d, title, xlabel, [(v, f"{v:.1f}") for v in TICKS] if xticks is None else xticks)
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        pts = [_xy(x, y) for x, y in sorted(points) if y is not None]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for x, y in pts:
            d.rectangle([x - 3, y - 3, x + 3, y + 3], fill=colour)
        ly = TOP + 10 + 18 * n
        d.line([(WIDTH - RIGHT + 15, ly + 6), (WIDTH - RIGHT + 40, ly + 6)], fill=colour, width=3)
        d.text((WIDTH - RIGHT + 46, ly), name, fill="black", font=FONT)
    placed: list[tuple[float, float]] = []
    for x, y, label in marks:
        cx, cy = _xy(x, y)
        d.ellipse([cx - 8, cy - 8, cx + 8, cy + 8], outline="black", width=2)
        below = sum(abs(px - cx) < 60 and abs(py - cy) < 14 for px, py in placed)   # marks on one spot: stack labels
        placed.append((cx, cy))
        d.text((cx + 10, cy - 18 + 14 * below), label, fill="black", font=FONT)
    return img
