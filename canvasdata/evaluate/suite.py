"""Score many unlearned models at once and tabulate them like UnlearnCanvas's Table 2.

Layout: `runs/{method}/{domain}_{target}/` holds the answer set of one request (e.g.
`runs/ESD/style_Van_Gogh/`, `runs/ESD/object_Cats/`). Each request's report.json and report.md go
into `{out}/{method}/{domain}_{target}/`; the table into `{out}/suite.md`, `suite.csv` and `suite.json`
(with the protocol every request was scored under).

Attack columns: a request folder may also hold the reports of `canvasdata attack` (written there with
`--out runs/{method}/{domain}_{target}/conceal` and `.../prompts`): `conceal/report.json` gives "UA under
concealment (worst ψ)" and `prompts/report.json` the adversarial prompts' attack success rate (ASR). When any
request has one, the table carries those columns beside UA, averaged over the requests that have them.

Combination requests (finer-scale, UnlearnCanvas's FU / FR): a folder `style_{STYLE}+object_{OBJECT}/`
(either order; `+` joins the two parts, each named as a single request's folder) holds the answer set of
forgetting that style × object combination (`--forget style:STYLE+object:OBJECT`). When any request is
one, the table gains "FU" and "FR" (FR: the mean of a request's three parts, see
`canvasdata.metrics.finer`), means over the method's combination requests, and "combination requests".

Cost columns: the answer set's `generation.json` names the model that made it ("model"); when that
folder holds the `unlearn.json` an unlearning command wrote (`canvasdata unlearn esd`), the table
gains "time (s)", "peak memory (MiB)" and "changed (MiB)" (its `seconds`, `peak_memory_bytes` and
`changed_bytes`), means over the method's requests that have them; empty cells elsewhere."""

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

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, Session
from canvasdata.errors import UsageError
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import (
    COMBINATION,
    NEIGHBOURS_K,
    REFERENCE_INDICES,
    JudgeCache,
    Report,
    combination_spec,
    score_answers,
    split_combination,
)
from canvasdata.formats.common import write_json, write_text
from canvasdata.taxonomy import DOMAINS

log = logging.getLogger(__name__)

COLUMNS = ["method", "style UA", "style IRA", "style CRA", "object UA", "object IRA", "object CRA", "FD",
           "style requests", "object requests"]
CONCEAL_DIR, PROMPTS_DIR, ATTACK_REPORT = "conceal", "prompts", "report.json"   # inside a request folder
# (column suffix, summary key, report folder, the report's field)
ATTACK_FIELDS = (("UA under concealment (worst ψ)", "ua_concealed", CONCEAL_DIR, "ua_worst"),
                 ("ASR", "asr", PROMPTS_DIR, "asr"))

FINER_COLUMNS = ["FU", "FR"]                      # after "object CRA"
COMBINATION_COUNT = "combination requests"        # after "object requests"
UNLEARN_RECORD, MiB = "unlearn.json", 2 ** 20     # in the model folder generation.json names
# (column, unlearn.json field, divisor)
COST_FIELDS = (("time (s)", "seconds", 1), ("peak memory (MiB)", "peak_memory_bytes", MiB),
               ("changed (MiB)", "changed_bytes", MiB))
COST_COLUMNS = [c for c, _, _ in COST_FIELDS]     # last


def attack_columns(columns: list[str] = COLUMNS) -> list[str]:
    """`columns` with each domain's attack columns right after its UA."""
    out = []
    for c in columns:
        out.append(c)
        for d in DOMAINS:
            if c == f"{d} UA":
                out += [f"{d} {suffix}" for suffix, *_ in ATTACK_FIELDS]
    return out


def suite_columns(attacks: bool = False, combinations: bool = False, costs: bool = False) -> list[str]:
    """The table's columns: `COLUMNS`, with the attack columns, FU / FR and the combination count, and
    the cost columns, each only when asked for."""
    columns = attack_columns() if attacks else list(COLUMNS)
    if combinations:
        at = columns.index("object CRA") + 1
        columns[at:at] = FINER_COLUMNS
        columns.insert(columns.index("object requests") + 1, COMBINATION_COUNT)
    return columns + (COST_COLUMNS if costs else [])


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
    costs: dict[str, dict[str, dict]] = field(default_factory=dict)     # method -> request folder -> unlearn.json

    def to_markdown(self) -> str:
        """The table, then how it was computed: averaging, the protocol and each of its options."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_fmt(r.get(c)) for c in self.columns) + " |" for r in self.rows]
        lines += ["", "UA / IRA / CRA in %: means over each method's style requests and, separately, its object "
                  "requests. FD: mean over the requests scored against a reference."]
        if "FU" in self.columns:
            lines += ["FU / FR in %: means over each method's combination requests (style × object). FU: the share of "
                      "the combination's images not judged as both its style and its object; FR: the mean of three "
                      "parts, each the share judged correctly on both style and object, of the images of the same "
                      "style with other objects, of the same object in other styles, and of the rest."]
        if COST_COLUMNS[0] in self.columns:
            lines += [f"Cost: from `{UNLEARN_RECORD}` in the model folder each answer set's generation.json names: "
                      "training seconds, peak memory (CUDA max allocated on a GPU, max RSS on a CPU) and the bytes of "
                      "the changed parameters, in MiB; means over the method's requests that have one."]
        if any(f"style {suffix}" in self.columns for suffix, *_ in ATTACK_FIELDS):
            lines += ["UA under concealment (worst ψ) in %: the lowest UA over the ψ grid of `canvasdata attack "
                      f"conceal` (`{{request}}/{CONCEAL_DIR}/{ATTACK_REPORT}`); ASR in %: the share of the images of "
                      "`canvasdata attack prompts`'s adversarial prompts in which the judge still finds the forgotten "
                      f"concept (`{{request}}/{PROMPTS_DIR}/{ATTACK_REPORT}`); means over the requests holding them."]
        lines += ["", *self.protocol.markdown_lines()]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        """The rows, the attack summaries and the costs (when any) and the protocol (name, options, overrides,
        `reproduces_original`), for suite.json."""
        return {"protocol": self.protocol.to_dict(), "rows": self.rows,
                **({"attacks": self.attacks} if self.attacks else {}),
                **({"costs": self.costs} if self.costs else {})}

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
    """`style_Van_Gogh` -> ('style', 'Van_Gogh'); `object_Cats` -> ('object', 'Cats');
    `style_Van_Gogh+object_Dogs` (either order) -> ('combination', 'Van_Gogh+Dogs')."""
    if "+" in name:
        spec = "+".join(part.replace("_", ":", 1) for part in name.split("+"))
        try:
            style, obj = split_combination(spec)
        except UsageError:
            raise UsageError(f"{name}: a combination request folder is named style_NAME+object_NAME") from None
        return COMBINATION, f"{style}+{obj}"
    domain, _, target = name.partition("_")
    if domain not in DOMAINS or not target:
        raise UsageError(f"{name}: a request folder is named style_NAME, object_NAME or style_NAME+object_NAME")
    return domain, target


def request_dir(spec: str) -> str:
    """The request folder of a `--forget` request (the inverse of `request_spec`): 'style:Van_Gogh' ->
    'style_Van_Gogh', 'style:Van_Gogh+object:Dogs' -> 'style_Van_Gogh+object_Dogs'."""
    return "+".join(part.replace(":", "_", 1) for part in spec.split("+"))


def request_spec(name: str) -> str:
    """The `--forget` request of a request folder: `style_Van_Gogh+object_Dogs` -> 'style:Van_Gogh+object:Dogs'."""
    domain, target = parse_request_dir(name)
    return combination_spec(*target.split("+", 1)) if domain == COMBINATION else f"{domain}:{target}"


def cost_summary(request: Path | str) -> dict:
    """What the unlearning that made a request's answer set cost: {"seconds", "peak_memory_bytes",
    "changed_bytes", "record"} from `unlearn.json` in the model folder its generation.json names ("model";
    a relative path is taken from the request folder); {} when there is none. An unreadable unlearn.json
    is an error naming it; a field that is missing or not a number is None."""
    request = Path(request)
    try:
        model = json.loads((request / "generation.json").read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(model, str) or not model:
        return {}
    path = Path(model) if Path(model).is_absolute() else request / model
    path = path / UNLEARN_RECORD
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: unreadable ({e})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not an unlearning record (expected a JSON object)")
    number = lambda v: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None  # noqa: E731
    return {**{key: number(data.get(key)) for _, key, _ in COST_FIELDS}, "record": str(path)}


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


def table_row(method: str, reports: Sequence[Report], attacks: Sequence[dict] | None = None,
              costs: Sequence[dict] | None = None, combinations: bool = False) -> dict:
    """Mean UA / IRA / CRA (percent) over the style and the object requests, and mean FD; with
    `attacks` (one `attack_summary` per report), the mean worst-ψ UA and ASR (percent) of each domain;
    with `combinations`, mean FU and FR (percent) over the combination requests; with `costs` (one
    `cost_summary` per report), the mean seconds, peak memory and changed MiB."""
    row: dict[str, Any] = {"method": method}
    for d in DOMAINS:
        sel = [r for r in reports if r.forget["domain"] == d]
        row[f"{d} requests"] = len(sel)
        for k in ("ua", "ira", "cra"):
            row[f"{d} {k.upper()}"] = round(100 * float(np.nanmean([getattr(r, k) for r in sel])), 2) if sel else None
        if attacks is not None:
            mine = [a for r, a in zip(reports, attacks, strict=True) if r.forget["domain"] == d]
            for suffix, key, _, _ in ATTACK_FIELDS:
                row[f"{d} {suffix}"] = _mean_pct([a.get(key) for a in mine])
    if combinations:
        sel = [r for r in reports if r.forget["domain"] == COMBINATION]
        row["FU"], row["FR"] = _mean_pct([r.fu for r in sel]), _mean_pct([r.fr for r in sel])
        row[COMBINATION_COUNT] = len(sel)
    fds = [r.frechet_distance for r in reports if r.frechet_distance is not None]
    row["FD"] = round(float(np.mean(fds)), 2) if fds else None
    if costs is not None:
        for column, key, unit in COST_FIELDS:
            values = [c[key] for c in costs if c.get(key) is not None]
            row[column] = round(float(np.mean(values)) / unit, 2) if values else None
    return row


def score_suite(runs: Path | str, judges: Sequence[Any], *, protocol: str | Protocol | None = None,
                reference: Path | str | None = None, reference_indices: Sequence[int] = REFERENCE_INDICES,
                inception: Path | str | None = None, batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS,
                out: Path | str | None = None, progress: bool = True, neighbours_k: int = NEIGHBOURS_K,
                session: Session | None = None) -> Suite:
    """Score every `runs/{method}/{domain}_{target}/` answer set (and `style_S+object_O/` combination)
    with the same judges, protocol (default `unlearncanvas`) and settings; writes the per-request reports
    and the table under `out` when given. Under torchrun (`session`) the ranks share each request's judging;
    rank 0 alone writes."""
    proto = get_protocol(protocol)
    runs = Path(runs)
    if not runs.is_dir():
        raise UsageError(f"{runs}: no such runs directory")
    skip = Path(out).resolve() if out is not None else None  # the output may live inside runs/
    methods = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".") and p.resolve() != skip)
    if not methods:
        raise UsageError(f"{runs}: expected folders {{method}}/{{style|object}}_{{target}}/ (or "
                         "{method}/style_{STYLE}+object_{OBJECT}/)")
    requests = {method: sorted(p for p in method.iterdir() if p.is_dir()) for method in methods}
    attacks = {method.name: {req.name: attack_summary(req) for req in reqs} for method, reqs in requests.items()}
    with_attacks = any(a for per in attacks.values() for a in per.values())
    kinds = {req.name: parse_request_dir(req.name)[0] for reqs in requests.values() for req in reqs}
    with_combinations = COMBINATION in kinds.values()
    costs = {method.name: {req.name: cost_summary(req) for req in reqs} for method, reqs in requests.items()}
    with_costs = any(c for per in costs.values() for c in per.values())
    rows, reports, cache = [], {}, JudgeCache()
    with tqdm(total=sum(map(len, requests.values())), unit="request", desc="suite",
              disable=not progress or (session is not None and not session.main)) as bar:
        for method, reqs in requests.items():
            reports[method.name] = []
            for req in reqs:
                log.info("scoring %s/%s", method.name, req.name)
                reports[method.name].append(score_answers(
                    req, request_spec(req.name), judges, protocol=proto, reference=reference,
                    reference_indices=reference_indices, inception=inception, batch_size=batch_size,
                    workers=workers, out=None if out is None else Path(out) / method.name / req.name,
                    progress=progress, neighbours_k=neighbours_k, session=session, cache=cache))
                bar.update()
            rows.append(table_row(method.name, reports[method.name],
                                  [attacks[method.name][r.name] for r in reqs] if with_attacks else None,
                                  [costs[method.name][r.name] for r in reqs] if with_costs else None,
                                  with_combinations))
    suite = Suite(rows, reports, proto, columns=suite_columns(with_attacks, with_combinations, with_costs),
                  attacks=attacks if with_attacks else {}, costs=costs if with_costs else {})
    if out is not None and (session is None or session.main):
        suite.write(out)
    return suite
