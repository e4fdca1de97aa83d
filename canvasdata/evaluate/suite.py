"""Score many unlearned models at once and tabulate them like UnlearnCanvas's Table 2.

Layout: `runs/{method}/{domain}_{target}/` holds the answer set of one request (e.g.
`runs/ESD/style_Van_Gogh/`, `runs/ESD/object_Cats/`). Each request's report.json and report.md go
into `{out}/{method}/{domain}_{target}/`; the table into `{out}/suite.md`, `suite.csv` and `suite.json`
(with the protocol every request was scored under)."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from canvasdata.errors import UsageError
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import REFERENCE_INDICES, Report, score_answers

log = logging.getLogger(__name__)

COLUMNS = ["method", "style UA", "style IRA", "style CRA", "object UA", "object IRA", "object CRA", "FD",
           "style requests", "object requests"]


@dataclass
class Suite:
    """One row per method (percentages; FD the mean over its requests), every request's report, and
    the protocol they were all scored under."""

    rows: list[dict]
    reports: dict[str, list[Report]]
    protocol: Protocol
    paths: dict[str, str] = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The table, then how it was computed: averaging, the protocol and each of its options."""
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in COLUMNS) + " |" for r in self.rows]
        lines += ["", "UA / IRA / CRA in %: means over each method's style requests and, separately, its object "
                  "requests. FD: mean over the requests scored against a reference.", "",
                  *self.protocol.markdown_lines()]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        """The rows and the protocol (name, options, overrides, `reproduces_original`), for suite.json."""
        return {"protocol": self.protocol.to_dict(), "rows": self.rows}

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows({c: ("" if r.get(c) is None else r[c]) for c in COLUMNS} for r in self.rows)
        return buf.getvalue()

    def write(self, out: Path | str) -> dict[str, str]:
        """suite.md, suite.csv and suite.json into `out`; returns their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "suite.md").write_text(self.to_markdown())
        (out / "suite.csv").write_text(self.to_csv())
        (out / "suite.json").write_text(json.dumps(self.to_json(), indent=2) + "\n")
        self.paths.update({k: str(out / f"suite.{k}") for k in ("md", "csv", "json")})
        return self.paths


def _fmt(v: object) -> str:
    return "—" if v is None else str(v)


def parse_request_dir(name: str) -> tuple[str, str]:
    """`style_Van_Gogh` -> ('style', 'Van_Gogh'); `object_Cats` -> ('object', 'Cats')."""
    domain, _, target = name.partition("_")
    if domain not in ("style", "object") or not target:
        raise UsageError(f"{name}: a request folder is named style_NAME or object_NAME")
    return domain, target


def table_row(method: str, reports: Sequence[Report]) -> dict:
    """Mean UA / IRA / CRA (percent) over the style and the object requests, and mean FD."""
    row: dict[str, Any] = {"method": method}
    for d in ("style", "object"):
        sel = [r for r in reports if r.forget["domain"] == d]
        row[f"{d} requests"] = len(sel)
        for k in ("ua", "ira", "cra"):
            row[f"{d} {k.upper()}"] = round(100 * float(np.nanmean([getattr(r, k) for r in sel])), 2) if sel else None
    fds = [r.frechet_distance for r in reports if r.frechet_distance is not None]
    row["FD"] = round(float(np.mean(fds)), 2) if fds else None
    return row


def score_suite(runs: Path | str, judges: Sequence[Any], *, protocol: str | Protocol | None = None,
                reference: Path | str | None = None, reference_indices: Sequence[int] = REFERENCE_INDICES,
                inception: Path | str | None = None, batch_size: int = 64, workers: int = 2,
                out: Path | str | None = None, progress: bool = True) -> Suite:
    """Score every `runs/{method}/{domain}_{target}/` answer set with the same judges, protocol
    (default `unlearncanvas`) and settings; writes the per-request reports and the table under `out`
    when given."""
    proto = get_protocol(protocol)
    runs = Path(runs)
    if not runs.is_dir():
        raise UsageError(f"{runs}: no such runs directory")
    skip = Path(out).resolve() if out is not None else None  # the output may live inside runs/
    methods = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".") and p.resolve() != skip)
    if not methods:
        raise UsageError(f"{runs}: expected folders {{method}}/{{style|object}}_{{target}}/")
    requests = {method: sorted(p for p in method.iterdir() if p.is_dir()) for method in methods}
    rows, reports = [], {}
    with tqdm(total=sum(map(len, requests.values())), unit="request", desc="suite", disable=not progress) as bar:
        for method, reqs in requests.items():
            reports[method.name] = []
            for req in reqs:
                domain, target = parse_request_dir(req.name)
                log.info("scoring %s/%s", method.name, req.name)
                reports[method.name].append(score_answers(
                    req, f"{domain}:{target}", judges, protocol=proto, reference=reference,
                    reference_indices=reference_indices, inception=inception, batch_size=batch_size,
                    workers=workers, out=None if out is None else Path(out) / method.name / req.name,
                    progress=progress))
                bar.update()
            rows.append(table_row(method.name, reports[method.name]))
    suite = Suite(rows, reports, proto)
    if out is not None:
        suite.write(out)
    return suite
