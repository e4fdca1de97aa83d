"""Score many unlearned models at once and print a table shaped like UnlearnCanvas's Table 2.

Layout: `runs/{method}/{domain}_{target}/` holds the answer set of one request (e.g.
`runs/ESD/style_Van_Gogh/`, `runs/ESD/object_Cats/`)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from canvasdata.evaluate.score import score_answers
from canvasdata.judges.model import Judge

COLUMNS = ["method", "style UA", "style IRA", "style CRA", "object UA", "object IRA", "object CRA", "FD", "requests"]


def score_suite(runs: Path | str, judges: Sequence[Judge], *, reference: Path | str | None = None,
                include_seed_images: bool = True, workers: int = 2, out: Path | str | None = None) -> list[dict]:
    """One row per method: mean UA/IRA/CRA over its style and object requests (percent) and mean FD."""
    runs = Path(runs)
    rows = []
    for method in sorted(p for p in runs.iterdir() if p.is_dir()):
        reports = []
        for req in sorted(p for p in method.iterdir() if p.is_dir()):
            domain, _, target = req.name.partition("_")
            if domain not in ("style", "object"):
                raise ValueError(f"{req}: expected a folder named style_NAME or object_NAME")
            reports.append(score_answers(req, f"{domain}:{target}", judges, reference=reference,
                                         include_seed_images=include_seed_images, workers=workers, out=req))
        row = {"method": method.name, "requests": len(reports)}
        for d in ("style", "object"):
            sel = [r for r in reports if r["forget"]["domain"] == d]
            for k in ("ua", "ira", "cra"):
                row[f"{d} {k.upper()}"] = round(100 * float(np.mean([r[k] for r in sel])), 2) if sel else None
        fds = [r["frechet_distance"] for r in reports if "frechet_distance" in r]
        row["FD"] = round(float(np.mean(fds)), 2) if fds else None
        rows.append(row)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "suite.md").write_text(suite_markdown(rows))
        (out / "suite.csv").write_text(suite_csv(rows))
        (out / "suite.json").write_text(json.dumps(rows, indent=2))
    return rows


def _fmt(v) -> str:
    return "—" if v is None else str(v)


def suite_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def suite_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
