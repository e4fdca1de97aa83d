"""Many models as one job (`canvasdata evaluate sweep MODELS.toml --out RUNS`): a TOML list of pipelines,
each with the method it was made by and the request(s) it answers, generated into the
`RUNS/{method}/{request}/` layout `evaluate suite` reads, then scored as one suite. A model answering several
requests (the original model, a row beside every method) is generated once, into its first request's
folder, and linked under the others. Every entry is checked before any generation starts (a missing
pipeline, an unknown target, a (method, request) twice: one line naming the file and the entry); every
answer set resumes as `evaluate generate` does, so a rerun after any interruption redoes only the missing
images. `--plan` prints what the sweep will cost (images, UNet evaluations, judge calls, and an estimate
from a per-image cost measured on the first model) and exits.

    [[model]]
    method = "esd"                      # the table's row
    forget = "style:Van_Gogh"           # or a list: ["style:Van_Gogh", "object:Dogs"]
    path = "models/esd-van-gogh"        # a pipeline folder (relative to the TOML file) or a Hub id
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from canvasdata.devices import Session
from canvasdata.errors import UsageError
from canvasdata.evaluate.generate import answer_name, generate_answers, load_pipeline
from canvasdata.evaluate.score import parse_forget
from canvasdata.evaluate.suite import Suite, request_dir, score_suite
from canvasdata.fields import Fields
from canvasdata.sources.diffusers import PipelineOptions, check_pipeline_source
from canvasdata.taxonomy import OBJECTS, UC60, unknown_message
from canvasdata.tomlfiles import load_toml

log = logging.getLogger(__name__)
METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PLAN_STEPS = 2          # denoising steps of the timing batch of --plan (the cost is scaled to the real steps)
PLAN_IMAGES = 2


@dataclass(frozen=True)
class SweepEntry:
    """One model of a sweep: the row it belongs to, the requests it answers, where it is."""

    method: str
    requests: tuple[str, ...]
    model: str


@dataclass(frozen=True)
class Sampling:
    """What every answer set of the sweep is generated with (style and object names checked)."""

    styles: tuple[str, ...]
    objects: tuple[str, ...]
    seeds: tuple[int, ...]
    size: int
    steps: int
    guidance: float
    batch_size: int

    def __post_init__(self) -> None:
        for names, allowed, what in ((self.styles, UC60, "style names"), (self.objects, OBJECTS, "object names")):
            for name in names:
                if name not in allowed:
                    raise UsageError(unknown_message(name, allowed, what))


def load_sweep(path: str | Path) -> list[SweepEntry]:
    """The entries of a sweep file, each checked (see the module docstring); errors name the file and the
    entry (`[[model]] #k`)."""
    path = Path(path)
    table = load_toml(path)
    unknown = sorted(set(table) - {"model"})
    if unknown:
        raise UsageError(f"{path}: unknown table {unknown[0]!r}; a sweep file lists [[model]] entries")
    rows = table.get("model")
    if not isinstance(rows, list) or not rows:
        raise UsageError(f"{path}: no [[model]] entry; list each pipeline as [[model]] with method, forget and path")
    entries, seen = [], {}
    for k, row in enumerate(rows, 1):
        where = f"{path} [[model]] #{k}"
        f = Fields(row if isinstance(row, dict) else {}, where)
        method = f.get("method", str)
        if not METHOD_NAME.fullmatch(method):
            raise f.fail("method", f"{method!r}: letters, digits, '_', '.', '-' (a folder name)")
        forget = f.get("forget", (str, list))
        specs = [forget] if isinstance(forget, str) else forget
        if not specs or not all(isinstance(s, str) for s in specs):
            raise f.fail("forget", "expected a request 'style:NAME' / 'object:NAME' / 'style:S+object:O', or a list")
        requests = []
        for spec in specs:
            try:
                requests.append(parse_forget(spec, UC60, OBJECTS).spec)
            except UsageError as e:
                raise UsageError(f"{where}: {e}") from None
        model = f.get("path", str)
        f.check_unknown()
        local = (path.parent / model) if not Path(model).is_absolute() else Path(model)
        model = str(local) if local.exists() else model
        try:
            check_pipeline_source(model, "path")
        except UsageError as e:
            raise UsageError(f"{where}: {e}") from None
        for r in requests:
            if (method, r) in seen:
                raise UsageError(f"{where}: method {method!r} answers {r} again (also [[model]] #{seen[method, r]})")
            seen[method, r] = k
        entries.append(SweepEntry(method, tuple(requests), model))
    return entries


def sweep_plan(entries: Sequence[SweepEntry], sampling: Sampling, judges: int = 2,
               seconds_per_image: float | None = None) -> dict[str, Any]:
    """What the sweep costs: answer sets, images, UNet evaluations (two a step: classifier-free guidance),
    judge calls, and an estimate when `seconds_per_image` is known."""
    per_set = len(sampling.styles) * len(sampling.objects) * len(sampling.seeds)
    sets = len(entries)
    images = sets * per_set
    requests = sum(len(e.requests) for e in entries)
    plan = {"models": sets, "requests": requests, "images": images, "images_per_model": per_set,
            "unet_evaluations": images * sampling.steps * (2 if sampling.guidance > 1 else 1),
            "judge_calls": requests * per_set * judges, "seconds_per_image": seconds_per_image,
            "estimate_seconds": None if seconds_per_image is None else round(images * seconds_per_image, 1)}
    return plan


def answer_set_plan(sampling: Sampling, out: str | Path, seconds_per_image: float) -> dict[str, Any]:
    """What `evaluate generate` into `out` costs: the grid's images, those already there (a resume keeps
    them), the UNet evaluations of the rest (two a step with classifier-free guidance), the judge calls a
    score of the set makes (a style and an object judgement an image), and an estimate."""
    grid = [answer_name(st, o, seed) for seed in sampling.seeds for st in sampling.styles for o in sampling.objects]
    present = sum((Path(out) / name).exists() for name in grid)
    todo = len(grid) - present
    return {"images": len(grid), "present": present, "to_generate": todo,
            "unet_evaluations": todo * sampling.steps * (2 if sampling.guidance > 1 else 1),
            "judge_calls": 2 * len(grid), "seconds_per_image": seconds_per_image,
            "estimate_seconds": round(todo * seconds_per_image, 1)}


def measure_image_cost(model: str, sampling: Sampling, device: str, options: PipelineOptions) -> float:
    """Seconds an image at the sweep's settings, measured on `model`: a batch of PLAN_IMAGES at PLAN_STEPS
    steps timed after a warm-up call, the denoising part scaled to the sweep's steps."""
    pipe = load_pipeline(model, device, options)
    prompts = ["a photo"] * PLAN_IMAGES

    def timed(steps: int) -> float:
        t0 = time.perf_counter()
        pipe(prompts, height=sampling.size, width=sampling.size, num_inference_steps=steps,
             guidance_scale=sampling.guidance,
             generator=[torch.Generator("cpu").manual_seed(i) for i in range(PLAN_IMAGES)])
        return time.perf_counter() - t0

    timed(1)                                   # warm-up
    one, two = timed(1), timed(PLAN_STEPS)
    per_step = max(two - one, 0.0) / (PLAN_STEPS - 1)
    fixed = max(one - per_step, 0.0)           # text encoding and decoding
    return (fixed + per_step * sampling.steps) / PLAN_IMAGES


def run_sweep(entries: Sequence[SweepEntry], out: str | Path, judges: Sequence[Any], sampling: Sampling, *,
              device: str = "auto", options: PipelineOptions | None = None, protocol: Any = None,
              generator_device: str = "cpu", progress: bool = True, suite_out: str | Path | None = None,
              session: Session | None = None, **score: Any) -> Suite | None:
    """Generate every entry's answer set into `out/{method}/{request}/` (resumable; a model answering
    several requests once, linked under the others), then score the whole folder as a suite (`suite_out`,
    default `out/suite`). Under torchrun (`session`) the ranks share every model's batches and the judging;
    rank 0 links and writes, and returns the suite (the others return None)."""
    out = Path(out)
    session = session or Session.alone()
    for k, e in enumerate(entries, 1):
        first = out / e.method / request_dir(e.requests[0])
        log.info("sweep %d/%d: %s %s <- %s", k, len(entries), e.method, ", ".join(e.requests), e.model)
        generate_answers(e.model, first, styles=sampling.styles, objects=sampling.objects, seeds=sampling.seeds,
                         size=sampling.size, steps=sampling.steps, guidance=sampling.guidance,
                         batch_size=sampling.batch_size, device=device, options=options, protocol=protocol,
                         generator_device=generator_device, progress=progress, session=session)
        for r in e.requests[1:] if session.main else ():
            link = out / e.method / request_dir(r)
            if not link.is_symlink():
                if link.exists():
                    raise UsageError(f"{link}: exists and is not this sweep's link to {first.name}; remove it or "
                                     "choose another --out")
                link.symlink_to(os.path.relpath(first, link.parent), target_is_directory=True)
    session.barrier()   # rank 0's links are in place
    suite = score_suite(out, judges, protocol=protocol, out=Path(suite_out) if suite_out else out / "suite",
                        progress=progress, session=session, **score)
    return suite if session.main else None
