"""Score many unlearned models at once and tabulate them like UnlearnCanvas's Table 2.

Layout: `runs/{method}/{domain}_{target}/` holds the answer set of one request (e.g.
`runs/ESD/style_Van_Gogh/`, `runs/ESD/object_Cats/`). Each request's report.json and report.md go
into `{out}/{method}/{domain}_{target}/`; the table into `{out}/suite.md`, `suite.csv` and `suite.json`
(with the protocol every request was scored under).

Attack columns: a request folder may also hold the reports of `canvasdata attack` (written there with
`--out runs/{method}/{domain}_{target}/conceal` and `.../prompts`): `conceal/report.json` gives "UA under
concealment (worst ψ)" and `prompts/report.json` the adversarial prompts' attack success rate (ASR). When any
request has one, the table carries those columns beside UA, averaged over the requests that have them."""

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

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH
from canvasdata.errors import UsageError
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import REFERENCE_INDICES, Report, score_answers
from canvasdata.formats.common import write_json, write_text

log = logging.getLogger(__name__)

COLUMNS = ["method", "style UA", "style IRA", "style CRA", "object UA", "object IRA", "object CRA", "FD",
           "style requests", "object requests"]
CONCEAL_DIR, PROMPTS_DIR, ATTACK_REPORT = "conceal", "prompts", "report.json"   # inside a request folder
# (column suffix, summary key, report folder, the report's field)
ATTACK_FIELDS = (("UA under concealment (worst ψ)", "ua_concealed", CONCEAL_DIR, "ua_worst"),
                 ("ASR", "asr", PROMPTS_DIR, "asr"))


def attack_columns(columns: list[str] = COLUMNS) -> list[str]:
    """`columns` with each domain's attack columns right after its UA."""
    out = []
    for c in columns:
        out.append(c)
        for d in ("style", "object"):
            if c == f"{d} UA":
                out += [f"{d} {suffix}" for suffix, *_ in ATTACK_FIELDS]
    return out


@dataclass
class Suite:
    """One row per method (percentages; FD the mean over its requests), every request's report, and
    the protocol they were all scored under."""

    rows: list[dict]
    reports: dict[str, list[Report]]
    protocol: Protocol
    paths: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=lambda: list(COLUMNS))
    attacks: dict[str, dict[str, dict]] = field(default_factory=dict)   # method -> request folder -> summary

    def to_markdown(self) -> str:
        """The table, then how it was computed: averaging, the protocol and each of its options."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in self.columns) + " |" for r in self.rows]
        lines += ["", "UA / IRA / CRA in %: means over each method's style requests and, separately, its object "
                  "requests. FD: mean over the requests scored against a reference."]
        if self.columns != COLUMNS:
            lines += ["UA under concealment (worst ψ) in %: the lowest UA over the ψ grid of `canvasdata attack "
                      f"conceal` (`{{request}}/{CONCEAL_DIR}/{ATTACK_REPORT}`); ASR in %: the share of the images of "
                      "`canvasdata attack prompts`'s adversarial prompts in which the judge still finds the forgotten "
                      f"concept (`{{request}}/{PROMPTS_DIR}/{ATTACK_REPORT}`); means over the requests holding them."]
        lines += ["", *self.protocol.markdown_lines()]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        """The rows, the attack summaries (when any) and the protocol (name, options, overrides,
        `reproduces_original`), for suite.json."""
        return {"protocol": self.protocol.to_dict(), "rows": self.rows,
                **({"attacks": self.attacks} if self.columns != COLUMNS else {})}

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        w.writeheader()
        w.writerows({c: ("" if r.get(c) is None else r[c]) for c in self.columns} for r in self.rows)
        return buf.getvalue()

    def write(self, out: Path | str) -> dict[str, str]:
        """suite.md, suite.csv and suite.json into `out`; returns their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "suite.md", self.to_markdown())
        write_text(out / "suite.csv", self.to_csv())
        write_json(out / "suite.json", self.to_json())
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


def attack_summary(request: Path | str) -> dict[str, float | None]:
    """The attack numbers of one request folder: {"ua_concealed": worst-ψ UA} from `conceal/report.json`
    and {"asr": ASR} from `prompts/report.json`, for those present (fractions); a report of another
    request than the folder's name is an error naming it."""
    request = Path(request)
    domain, target = parse_request_dir(request.name)
    out: dict[str, float | None] = {}
    for _, key, folder, name in ATTACK_FIELDS:
        path = request / folder / ATTACK_REPORT
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text())
            of, value = (data["forget"]["domain"], data["forget"]["target"]), data[name]
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{path}: not an attack report (expected JSON with 'forget' and '{name}')") from None
        if of != (domain, target):
            raise UsageError(f"{path}: a report of {of[0]}_{of[1]}, not of {request.name}")
        if value is not None and not isinstance(value, (int, float)):
            raise UsageError(f"{path}: '{name}' is {value!r}; allowed a number or null")
        out[key] = value
    return out


def _mean_pct(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(100 * float(np.mean(values)), 2) if values else None


def table_row(method: str, reports: Sequence[Report], attacks: Sequence[dict] | None = None) -> dict:
    """Mean UA / IRA / CRA (percent) over the style and the object requests, and mean FD; with
    `attacks` (one `attack_summary` per report), the mean worst-ψ UA and ASR (percent) of each domain."""
    row: dict[str, Any] = {"method": method}
    for d in ("style", "object"):
        sel = [r for r in reports if r.forget["domain"] == d]
        row[f"{d} requests"] = len(sel)
        for k in ("ua", "ira", "cra"):
            row[f"{d} {k.upper()}"] = round(100 * float(np.nanmean([getattr(r, k) for r in sel])), 2) if sel else None
        if attacks is not None:
            mine = [a for r, a in zip(reports, attacks, strict=True) if r.forget["domain"] == d]
            for suffix, key, _, _ in ATTACK_FIELDS:
                row[f"{d} {suffix}"] = _mean_pct([a.get(key) for a in mine])
    fds = [r.frechet_distance for r in reports if r.frechet_distance is not None]
    row["FD"] = round(float(np.mean(fds)), 2) if fds else None
    return row


def score_suite(runs: Path | str, judges: Sequence[Any], *, protocol: str | Protocol | None = None,
                reference: Path | str | None = None, reference_indices: Sequence[int] = REFERENCE_INDICES,
                inception: Path | str | None = None, batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS,
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
    attacks = {method.name: {req.name: attack_summary(req) for req in reqs} for method, reqs in requests.items()}
    with_attacks = any(a for per in attacks.values() for a in per.values())
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
            rows.append(table_row(method.name, reports[method.name],
                                  [attacks[method.name][r.name] for r in reqs] if with_attacks else None))
    suite = Suite(rows, reports, proto, columns=attack_columns() if with_attacks else list(COLUMNS),
                  attacks=attacks if with_attacks else {})
    if out is not None:
        suite.write(out)
    return suite
