"""Argument-level entry points for the CLI: plain values in, written files and results out.
Each loads what it needs (judges, pipelines) and calls the library."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, Session, join_ranks
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import is_build
from canvasdata.evaluate.generate import GENERATE_BATCH, generate_answers
from canvasdata.evaluate.protocol import PROTOCOL_GUIDANCE, PROTOCOL_SEEDS, PROTOCOL_SIZE, PROTOCOL_STEPS, Protocol
from canvasdata.evaluate.score import NEIGHBOURS_K, Report, score_answers
from canvasdata.evaluate.suite import Suite, score_suite
from canvasdata.judges import load_judge
from canvasdata.sources.diffusers import PipelineOptions
from canvasdata.taxonomy import OBJECTS, UC60, label_space, unknown_message


def load_judges(paths: Sequence[str | Path], device: str = "auto") -> list:
    """Judges from directories or Hub ids (`canvasdata.judges.load_judge`)."""
    if not paths:
        raise UsageError("give at least one judge (a style judge and an object judge, or one judging both)")
    return [load_judge(p, device) for p in paths]


def evaluate_command(answers: str | Path, forget: str, judges: Sequence[str | Path], *,
                     protocol: str | Protocol | None = None, reference: str | Path | None = None,
                     inception: str | Path | None = None, out: str | Path | None = None, device: str = "auto",
                     batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS, progress: bool = True,
                     split: str | None = None, neighbours_k: int = NEIGHBOURS_K,
                     session: Session | None = None) -> Report:
    """`canvasdata evaluate score`: score one answer set (a build: its `split`, default all) under
    `protocol` (default `unlearncanvas`); report.json and report.md go to `out` (default ANSWERS/report
    for a folder of answers; a build needs `out`, since a report inside it would break its seal); their
    paths are in `report.paths`."""
    if out is None and is_build(answers):
        raise UsageError(f"--answers {answers} is a build: give --out (a report inside a build would break its seal)")
    out = Path(out) if out is not None else Path(answers) / "report"
    return score_answers(answers, forget, load_judges(judges, device), protocol=protocol, reference=reference,
                         inception=inception, batch_size=batch_size, workers=workers, out=out, progress=progress,
                         split=split, neighbours_k=neighbours_k, session=session)


def generate_command(model: str | Path, out: str | Path, *, space: str = "uc50",
                     styles: Sequence[str] | None = None, objects: Sequence[str] | None = None,
                     seeds: Sequence[int] = PROTOCOL_SEEDS, size: int = PROTOCOL_SIZE,
                     steps: int = PROTOCOL_STEPS, guidance: float = PROTOCOL_GUIDANCE,
                     batch_size: int = GENERATE_BATCH, device: str = "auto",
                     generator_device: str = "cpu", protocol: str | Protocol | None = None,
                     options: PipelineOptions | None = None, progress: bool = True) -> Path:
    """`canvasdata evaluate generate`: the answer set of a diffusers pipeline (directory or Hub id)
    for every style of `space` (or `styles`) and every object (or `objects`), prompted as `protocol`
    (default `unlearncanvas`) says, the pipeline loaded as `options` say (default: DDIM); returns the folder.
    Under torchrun the ranks share the images (`generate_answers`)."""
    styles = list(styles) if styles else list(label_space(space).names)
    objects = list(objects) if objects else list(OBJECTS)
    for names, allowed, what in ((styles, UC60, "style names"), (objects, OBJECTS, "object names")):
        for name in names:
            if name not in allowed:
                raise UsageError(unknown_message(name, allowed, what))
    return generate_answers(model, out, styles=styles, objects=objects, seeds=seeds, size=size, steps=steps,
                            guidance=guidance, batch_size=batch_size, device=device,
                            generator_device=generator_device, protocol=protocol, options=options,
                            progress=progress, session=join_ranks(device))


def suite_command(runs: str | Path, judges: Sequence[str | Path], *, protocol: str | Protocol | None = None,
                  reference: str | Path | None = None, inception: str | Path | None = None,
                  out: str | Path | None = None, device: str = "auto", batch_size: int = JUDGE_BATCH,
                  workers: int = DECODE_WORKERS, progress: bool = True, neighbours_k: int = NEIGHBOURS_K,
                  session: Session | None = None) -> Suite:
    """`canvasdata evaluate suite`: score `runs/{method}/{domain}_{target}/` under `protocol`
    (default `unlearncanvas`); the table and every request's report go to `out` (default
    RUNS/suite); paths in `suite.paths`."""
    out = Path(out) if out is not None else Path(runs) / "suite"
    return score_suite(runs, load_judges(judges, device), protocol=protocol, reference=reference,
                       inception=inception, batch_size=batch_size, workers=workers, out=out, progress=progress,
                       neighbours_k=neighbours_k, session=session)
