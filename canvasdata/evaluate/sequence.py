"""Scoring continual unlearning: requests T1, T2, ... applied one after another (a model forgets T1, then
that model forgets T2, ...: `canvasdata unlearn sequence`), each step's answer set judged. After each step
the report gives the UA of every target (those not forgotten yet in parentheses), SU (the mean UA of the
targets forgotten so far), and SR over what no request of the sequence ever targets (the style and object
judges' accuracy there, and their mean); per target, its rebound (how far its UA fell after it was
forgotten: an earlier request coming back). Optional rows: the original model (step 0, every UA its
floor) and the simultaneous mode (one model that forgot every target in one run: `unlearn esd --forget
T1,T2,...`), side by side. Writes sequence.json, sequence.md and sequence.png (UA of each target and SR
against the step). The arithmetic: `canvasdata.metrics.sequence`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from canvasdata.chart import line_chart
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import read_answers
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import (
    COMBINATION,
    Forget,
    class_ids,
    judge_for,
    judge_name,
    parse_forget,
    run_judges,
)
from canvasdata.formats.common import atomic_path, write_json, write_text
from canvasdata.metrics.sequence import Target, cell_mask, rebound, retention, target_ua
from canvasdata.taxonomy import OBJECTS, SEED_STYLE, UC60

ORIGINAL, SIMULTANEOUS = "original", "simultaneous"


@dataclass
class SequenceRow:
    """One answer set's scores: `label` ('original', 'step K', 'simultaneous'), the targets its model has
    forgotten, every target's UA, SU over the forgotten ones (None for none) and SR's parts."""

    label: str
    answers: str
    forgotten: list[str]
    ua: dict[str, float]
    su: float | None
    sr_style: float
    sr_object: float
    sr: float
    images: int


@dataclass
class SequenceReport:
    """Every row, each target's rebound over the step rows, and how it was scored."""

    targets: list[str]
    rows: list[SequenceRow]
    rebound: dict[str, float]
    protocol: Protocol
    judges: dict[str, str]
    sr_images: dict[str, int]
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"targets": self.targets, "rows": [asdict(r) for r in self.rows], "rebound": self.rebound,
                "protocol": self.protocol.to_dict(), "judges": self.judges, "sr_images": self.sr_images}

    def to_markdown(self) -> str:
        head = ["row", "forgotten", *(f"UA {t}" for t in self.targets), "SU", "SR style", "SR object", "SR"]
        lines = ["# Continual unlearning: sequential requests", "",
                 "UA, SU, SR in %. UA of a target not forgotten yet in parentheses (the model has not been asked "
                 "to forget it). SU: mean UA of the targets forgotten so far. SR: the judges' accuracy on the "
                 "cells no request of the sequence targets (style half, object half, their mean; "
                 f"{self.sr_images['style']} / {self.sr_images['object']} images of the first row).", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            uas = [_pct(r.ua[t]) if t in r.forgotten else f"({_pct(r.ua[t])})" for t in self.targets]
            lines.append(f"| {r.label} | {len(r.forgotten)} | " + " | ".join(uas)
                         + f" | {_pct(r.su)} | {_pct(r.sr_style)} | {_pct(r.sr_object)} | {_pct(r.sr)} |")
        lines += ["", "Rebound (best UA after a target was forgotten minus its UA at the last step, pp): "
                  + ", ".join(f"{t} {_pct(v)}" for t, v in self.rebound.items()) + ".", "",
                  "![UA and SR against the step](sequence.png)", "",
                  f"Judges: {', '.join(f'{k} `{v}`' for k, v in self.judges.items())}. "
                  f"Protocol: {self.protocol.describe()}.", ""]
        return "\n".join(lines)

    def chart(self) -> Any:
        """UA of each target (from its step on) and SR, against the step; simultaneous circled at the end."""
        steps = [r for r in self.rows if r.label != SIMULTANEOUS]
        n = max(len(steps) - 1, 1)
        xs = {id(r): i / n for i, r in enumerate(steps)}
        series = {f"UA {t}": [(xs[id(r)], r.ua[t] if t in r.forgotten else None) for r in steps]
                  for t in self.targets}
        series["SR"] = [(xs[id(r)], r.sr) for r in steps]
        sim = [r for r in self.rows if r.label == SIMULTANEOUS]
        marks = [(1.0, sim[0].su, "simultaneous SU"), (1.0, sim[0].sr, "simultaneous SR")] if sim else []
        ticks = [(xs[id(r)], "orig" if r.label == ORIGINAL else r.label.removeprefix("step ")) for r in steps]
        return line_chart(series, "sequential unlearning: UA of each target and SR", xlabel="step",
                          marks=[m for m in marks if m[1] is not None], xticks=ticks)

    def write(self, out: Path | str) -> dict[str, str]:
        """sequence.json, sequence.md and sequence.png into `out` (atomically); their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.paths = {"json": str(out / "sequence.json"), "markdown": str(out / "sequence.md"),
                      "plot": str(out / "sequence.png")}
        write_json(out / "sequence.json", self.to_dict())
        write_text(out / "sequence.md", self.to_markdown())
        with atomic_path(out / "sequence.png") as tmp:
            self.chart().save(tmp, format="PNG")
        return self.paths


def _pct(v: float | None) -> str:
    return "—" if v is None or v != v else f"{v * 100:.2f}"


def _target(f: Forget, styles: list[str], objects: list[str]) -> Target:
    if f.domain == COMBINATION:
        s, o = f.parts
        return Target(COMBINATION, styles.index(s), objects.index(o))
    if f.domain == "style":
        return Target("style", styles.index(f.target), None)
    return Target("object", None, objects.index(f.target))


def parse_sequence(targets: Sequence[str], styles: list[str], objects: list[str]) -> list[Forget]:
    """The requests in order, each checked against the judges' label spaces; one named twice is refused."""
    if not targets:
        raise UsageError("--forget: name at least one request")
    parsed = [parse_forget(t, styles, objects) for t in targets]
    specs = [f.spec for f in parsed]
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise UsageError(f"--forget: the sequence repeats {', '.join(twice)}; each request comes once")
    return parsed


def score_sequence(steps: Sequence[Path | str], targets: Sequence[str], judges: Sequence[Any], *,
                   original: Path | str | None = None, simultaneous: Path | str | None = None,
                   protocol: str | Protocol | None = None, out: Path | str | None = None,
                   batch_size: int = 64, workers: int = 0, progress: bool = False) -> SequenceReport:
    """Score a request sequence: `steps[k]` is the answer set of the model that has forgotten
    `targets[:k + 1]` (in order); `original` / `simultaneous` add those rows. Writes the report into
    `out` when given."""
    proto = get_protocol(protocol)
    sj, oj = judge_for(judges, "style"), judge_for(judges, "object")
    styles, objects = list(sj.class_names["style"]), list(oj.class_names["object"])
    requests = parse_sequence(targets, styles, objects)
    if len(steps) != len(requests):
        raise UsageError(f"--answers: {len(steps)} answer sets for {len(requests)} requests; give one answer set "
                         "per step, in the order of --forget")
    ids = [_target(f, styles, objects) for f in requests]
    specs = [f.spec for f in requests]
    seed = styles.index(SEED_STYLE) if SEED_STYLE in styles and not proto.seed_images_in_style_metrics else None
    plan = ([(ORIGINAL, original, 0)] if original is not None else []) \
        + [(f"step {k + 1}", path, k + 1) for k, path in enumerate(steps)] \
        + ([(SIMULTANEOUS, simultaneous, len(specs))] if simultaneous is not None else [])
    rows: list[SequenceRow] = []
    sr_images: dict[str, int] = {}
    for label, path, forgotten in plan:
        items = read_answers(path, sorted(set(UC60) | set(styles)), sorted(set(OBJECTS) | set(objects)))
        ts, to = class_ids(items, styles, objects)
        preds, _ = run_judges(list(dict.fromkeys([sj, oj])), items, batch_size, workers, resize=proto.judge_resize,
                              progress=progress)
        try:
            ua = {spec: target_ua(ts, to, preds["style"], preds["object"], t)
                  for spec, t in zip(specs, ids, strict=True)}
        except ValueError:
            missing = [s for s, t in zip(specs, ids, strict=True) if not cell_mask(ts, to, t).any()]
            raise UsageError(f"{path}: no answer image is prompted with {missing[0]} (row {label}); generate the "
                             "sequence's targets in every answer set") from None
        kept = retention(ts, to, preds["style"], preds["object"], ids, exclude_style=seed)
        sr_images = sr_images or {"style": kept.n_style, "object": kept.n_object}
        done = specs[:forgotten]
        rows.append(SequenceRow(label, str(path), done, ua, float(np.mean([ua[s] for s in done])) if done else None,
                                kept.style, kept.object, kept.sr, len(items)))
    step_rows = [r for r in rows if r.label.startswith("step ")]
    bounce = {s: rebound([r.ua[s] if s in r.forgotten else None for r in step_rows]) for s in specs}
    report = SequenceReport(specs, rows, bounce, proto, {"style": judge_name(sj), "object": judge_name(oj)},
                            sr_images)
    if out is not None:
        report.write(out)
    return report

