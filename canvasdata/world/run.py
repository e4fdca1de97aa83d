"""`canvasdata world run`: the whole protocol at tiny scale, one stage after another (`world.stages`),
each timed and marked done in `DIR/world.json` (written atomically after every stage), so a rerun
after any interruption continues with the first unfinished stage and a finished world only says where
its report is. The folder belongs to one world recipe: another recipe, or files this command did not
write, are refused in one line. `source` (`--from SRC`) takes the build, judge and model from another
world with the same settings for them (`world.branch`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from canvasdata import __version__
from canvasdata.devices import join_ranks
from canvasdata.errors import UsageError
from canvasdata.formats.common import read_json, write_json
from canvasdata.locks import folder_lock
from canvasdata.world.branch import LENDABLE, lend, lendable, read_source
from canvasdata.world.recipe import WorldRecipe
from canvasdata.world.report import write_report
from canvasdata.world.stages import (
    GOLD,
    RETRAINED,
    World,
    check_requests,
    stage_answers,
    stage_attacks,
    stage_data,
    stage_judges,
    stage_model,
    stage_original,
    stage_retrained,
    stage_suite,
    stage_unlearn,
)

log = logging.getLogger(__name__)
STATE = "world.json"
LOCK = ".world.lock"
FORMAT = "canvasdata-world-1"
REPORT = "REPORT.md"
STAGES: tuple[tuple[str, str, Callable[[World], dict[str, Any]]], ...] = (
    ("data", "build the dataset", stage_data),
    ("judges", "train and evaluate the judges", stage_judges),
    ("model", "train the original text-to-image model", stage_model),
    ("original", "the original model's answer set, judged", stage_original),
    ("unlearn", "ESD on every request", stage_unlearn),
    ("answers", "the unlearned models' answer sets", stage_answers),
    ("attacks", "concealment probe and adversarial prompts", stage_attacks),
    ("suite", "the suite and the concept FDs", stage_suite),
)
OURS = {"data", "judges", "model", "answers", "unlearned", "runs", "suite", RETRAINED, GOLD, STATE, LOCK, REPORT,
        "grid.png", f".{STATE}"}
RETRAINED_STAGE = "retrained {}"   # one extra stage per `--retrained` request, after the others


def _state(root: Path, recipe: WorldRecipe) -> dict[str, Any]:
    """The world's state, new or read back; a folder of another recipe or with foreign files is refused."""
    identity = json.loads(json.dumps({"recipe": recipe.to_dict(), "hash": recipe.hash()}))  # as world.json has it
    if not root.exists() or not any(root.iterdir()):
        return {"format": FORMAT, "canvasdata_version": __version__, "identity": identity, "stages": {}}
    foreign = sorted(p.name for p in root.iterdir() if p.name not in OURS and not p.name.startswith(f".{STATE}."))
    if foreign or not (root / STATE).exists():
        what = ", ".join(foreign[:5]) or f"and no {STATE}"
        raise UsageError(f"--out {root}: holds files that `world run` did not write ({what}); choose another folder")
    state = read_json(root / STATE, UsageError, "")
    found = state.get("identity") or {}
    if json.loads(json.dumps(as_made(found.get("recipe"), recipe))) != identity["recipe"]:
        raise UsageError(f"--out {root}: holds the world of another recipe ({found.get('hash')} "
                         f"!= {identity['hash']}); choose another folder")
    return state


def as_made(stored: Any, current: Any) -> Any:
    """A recipe as world.json stored it, each field it lacks filled in from `current` where `current` holds
    that field's default: a field added to the recipe after the world was made, left at its default, gives
    the recipe the world ran, so an older world stays resumable; any other difference remains one."""
    if not (isinstance(stored, dict) and dataclasses.is_dataclass(current)):
        return stored
    out = dict(stored)
    for f in dataclasses.fields(current):
        value = getattr(current, f.name)
        if f.name in out:
            out[f.name] = as_made(out[f.name], value)
        elif f.name != "source" and f.default is not dataclasses.MISSING and value == f.default:
            out[f.name] = value
    return out


def check_retrained(recipe: WorldRecipe, retrained: Sequence[str]) -> list[str]:
    """The `--retrained` requests: each one of the world's targets (it needs the ESD model to compare), once."""
    bad = [t for t in retrained if t not in recipe.targets]
    if bad:
        raise UsageError(f"--retrained {bad[0]}: not a request of world {recipe.name} (its requests: "
                         f"{', '.join(recipe.targets)})")
    if len(set(retrained)) != len(retrained):
        raise UsageError("--retrained names a request twice")
    return list(retrained)


def run_world(recipe: WorldRecipe, out: str | Path, *, device: str = "auto", progress: bool = True,
              until: str | None = None, retrained: Sequence[str] = (), source: str | Path | None = None
              ) -> dict[str, Any]:
    """Run (or resume) every stage of the world into `out`, then write REPORT.md; returns the state
    (`world.json`). `until` stops after that stage (for tests and partial runs). `retrained`: requests for
    which a model is also trained without the concept (the gold standard, one more model each) and the
    original and ESD models compared with it; they add stages without changing the world's identity.
    `source`: a world folder whose first stages (build, judge, model) this world takes where their settings
    agree (`world.branch`: hard links, each checked against its seal), marked done with the source's times.

    Under torchrun every rank runs every stage, and each stage splits what it can (the build's shards, judge
    and model training by DDP, answer sets, scoring and attacks by batches, ESD by request); rank 0 alone
    holds the lock and writes world.json and the report, and the ranks meet after each stage."""
    root = Path(out)
    if until is not None and until not in [s[0] for s in STAGES]:
        raise UsageError(f"until {until!r}: allowed {', '.join(s[0] for s in STAGES)}")
    extra = [(RETRAINED_STAGE.format(t), _retrained_what(t), partial(stage_retrained, target=t))
             for t in check_retrained(recipe, retrained)]
    state = _state(root, recipe)
    check_requests(World(recipe, root.resolve(), device, progress))
    theirs, lent = _lendable(root, recipe, source, state)
    session = join_ranks(device)
    session.barrier()   # every rank has read world.json before rank 0 writes it
    if session.main:
        root.mkdir(parents=True, exist_ok=True)
    world = World(recipe, root.resolve(), str(session.device) if session.world > 1 else device, progress, session)
    lock = folder_lock(root / LOCK, f"{root} is being run by canvasdata world run")
    with lock if session.main else contextlib.nullcontext():
        if lent:
            src = Path(source)   # type: ignore[arg-type]
            if session.main:
                log.info("world: taking %s from %s", ", ".join(s for s, _ in lent), src)
                lend(src, root, lent, theirs, state)
                write_json(root / STATE, state)
            session.barrier()
            state = read_json(root / STATE, UsageError, "")   # every rank sees the lent stages done
        for name, what, fn in (*STAGES, *extra):
            entry = state["stages"].setdefault(name, {"done": False, "seconds": 0.0})
            if not entry["done"]:
                log.info("world %s: %s", name, what)
                t0 = time.perf_counter()
                try:
                    entry["info"] = fn(world)
                    session.barrier()
                finally:
                    entry["seconds"] = round(entry["seconds"] + time.perf_counter() - t0, 1)
                    if session.main:
                        write_json(root / STATE, state)
                entry["done"] = True
                if session.main:
                    write_json(root / STATE, state)
            if name == until:
                return state
        done = [(n, w) for n, w, _ in STAGES] + [(n, w) for n, w in _retrained_stages(state)]
        if session.main:
            write_report(world, state, root / REPORT, done)
    return state


def _lendable(root: Path, recipe: WorldRecipe, source: str | Path | None, state: dict[str, Any]
              ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """`source`'s state and the (stage, folder) pairs it lends to this world (none without one); refusals
    in one line."""
    if source is None or all(state["stages"].get(s, {}).get("done") for s, _, _ in LENDABLE):
        return {}, []   # nothing left to take (a rerun of a grown world needs its source no more)
    src = Path(source)
    if src.resolve() == root.resolve():
        raise UsageError(f"--from {src}: is --out itself; name another world")
    theirs = read_source(src, STATE, FORMAT)
    return theirs, lendable(theirs, json.loads(json.dumps(recipe.to_dict())), src)


def _retrained_stages(state: dict[str, Any]) -> list[tuple[str, str]]:
    """Every retrained stage a world has finished (this run's and earlier runs'), as (name, what)."""
    prefix = RETRAINED_STAGE.format("")
    return [(n, _retrained_what(n.removeprefix(prefix))) for n, e in state["stages"].items()
            if n.startswith(prefix) and e.get("done")]


def _retrained_what(target: str) -> str:
    return f"a model trained without {target}, compared"


def finished(out: str | Path, recipe: WorldRecipe | None = None, retrained: Sequence[str] = ()) -> bool:
    """Whether `out` holds a finished world (every stage done, those of the `retrained` requests too, and
    the report written); with `recipe`, a folder of another recipe (or with files this command did not
    write) is refused in one line."""
    root = Path(out)
    if not (root / STATE).exists() or not (root / REPORT).exists():
        return False
    state = read_json(root / STATE, UsageError, "") if recipe is None else _state(root, recipe)
    names = [name for name, _, _ in STAGES] + [RETRAINED_STAGE.format(t) for t in retrained]
    return all(state.get("stages", {}).get(name, {}).get("done") for name in names)
