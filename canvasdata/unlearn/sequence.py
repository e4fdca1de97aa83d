"""Sequential unlearning (UnlearnCanvas's SU/SR; CUIG's sequential requests): requests T1, T2, ... applied
one after another, each ESD run starting from the previous one's output, so step k's model has forgotten
T1..Tk. `OUT/{k}_{request folder}/` is step k's full pipeline folder (its unlearn.json carries the whole
history); `OUT/sequence.json` lists the steps once all are done. Each step resumes as `erase` does, so a
killed sequence rerun with the same arguments redoes only what is missing. Score it with
`canvasdata evaluate sequence` (`canvasdata.evaluate.sequence`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from canvasdata.errors import UsageError
from canvasdata.evaluate.suite import request_dir
from canvasdata.folders import temp_of
from canvasdata.formats.common import read_json, write_json
from canvasdata.unlearn import ESDConfig
from canvasdata.unlearn.esd import (
    DEFAULTS,
    ESDResult,
    canonical_forget,
    check_retain,
    default_prompt,
    erase,
    parse_targets,
)

SEQUENCE_RECORD = "sequence.json"
STEP = re.compile(r"\d+_(style|object)_.+")



def sequence_requests(targets: Sequence[str]) -> list[str]:
    """The requests in their canonical form, in order; each one request (no commas), none twice."""
    if not targets:
        raise UsageError("--forget: name at least one request")
    specs = []
    for t in targets:
        parsed = parse_targets(t)
        if len(parsed) > 1:
            raise UsageError(f"--forget {t!r}: one request per step (a simultaneous run is `unlearn esd --forget "
                             "T1,T2`)")
        specs.append(canonical_forget(*parsed[0]))
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise UsageError(f"--forget: the sequence repeats {', '.join(twice)}; each request comes once")
    return specs


def step_dirs(out: Path, specs: Sequence[str]) -> list[Path]:
    """Step k's folder: OUT/{k}_{request folder}."""
    return [out / f"{k}_{request_dir(s)}" for k, s in enumerate(specs, 1)]


def _check_out(out: Path, steps: list[Path]) -> None:
    """OUT must be new, empty, or hold this sequence's own step folders (and its record)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder; choose another --out")
    names = {p.name for p in out.iterdir()} if out.exists() else set()
    own_temp = {n for n in names if (temp_of(n) or ("",))[0] == SEQUENCE_RECORD}   # an interrupted record write
    foreign = sorted(names - {p.name for p in steps} - {SEQUENCE_RECORD} - own_temp)
    if foreign:
        what = "another sequence's step" if all(STEP.fullmatch(n) for n in foreign) else "files of its own"
        raise UsageError(f"--out {out}: holds {what} ({', '.join(foreign[:3])}); choose a new or empty folder")
    if SEQUENCE_RECORD in names:
        found = read_json(out / SEQUENCE_RECORD, UsageError, "the sequence record")
        if found.get("requests") != _request_dirs(steps):
            raise UsageError(f"--out {out}: the record of another sequence ({found.get('requests')}); choose "
                             "another --out")


def _request_dirs(steps: list[Path]) -> list[str]:
    return [p.name.split("_", 1)[1] for p in steps]


def erase_sequence(model: str | Path, targets: Sequence[str], out: str | Path, config: ESDConfig = DEFAULTS, *,
                   retain: Sequence[str] | None = None, retain_weight: float = 1.0, retain_latents: str = "erased",
                   device: str | torch.device = "auto", progress: bool = True) -> list[ESDResult]:
    """Forget `targets` one after another with ESD (each step from the previous step's output, the
    parameter set chosen per request as `erase` does); returns every step's result. `retain` texts are held
    at every step, to that step's source (`erase`'s utility-retaining term; None: the paper's ESD). Bad input
    (an unknown or repeated request, a retain text that a step erases, an --out holding anything else) is a
    one-line UsageError before any training."""
    model, out = Path(model), Path(out)
    specs = sequence_requests(targets)
    erased = [default_prompt(*parse_targets(spec)[0]) for spec in specs]
    held = check_retain(retain, retain_weight, erased, retain_latents)   # every step's check before step 1 trains
    steps = step_dirs(out, specs)
    _check_out(out, steps)
    results, source = [], model
    for spec, folder in zip(specs, steps, strict=True):
        results.append(erase(source, spec, folder, config, retain=retain, retain_weight=retain_weight,
                             retain_latents=retain_latents, device=device, progress=progress))
        source = folder
    write_json(out / SEQUENCE_RECORD, {"source": str(model.resolve()), "requests": [request_dir(s) for s in specs],
                                       "forget": specs, "steps": [p.name for p in steps],
                                       **held,
                                       "seconds": [round(r.seconds, 1) for r in results]})
    return results
