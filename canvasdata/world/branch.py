"""A world grown from another world's first stages (`world run --from SRC`): the build, the judge and the
original model, which take about an hour of the tiny world's 80 minutes, are the same for every unlearning
setting; a world whose recipe keeps their settings takes them from a world that made them and runs the rest,
so another ESD setting (or attack, or seed set) costs minutes, not another model.

The stages taken are those whose settings agree (the build; then the judge; then the model), in order, and
only where SRC finished them. Files are hard-linked where the file system allows (canvasdata replaces a
file by renaming a new one over it, never writes into it, so neither world can change the other's) and
copied otherwise; each artifact is then checked against its own seal (the build's manifest, judge.json,
model.json) before the stage is marked done, with SRC's time and info and where it came from."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canvasdata.errors import UsageError
from canvasdata.formats.common import read_json
from canvasdata.judges.weights import verify_seal
from canvasdata.models.output import check_model
from canvasdata.verify import verify

# the stages another world can lend, in order: (stage, the recipe fields it depends on beyond the stages
# before it, its folder)
LENDABLE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("data", ("build",), "data"),
    ("judges", ("judge", "judge_alone"), "judges"),
    ("model", ("model", "judge_every"), "model"),
)


def read_source(src: Path, state_name: str, world_format: str) -> dict[str, Any]:
    """SRC's world.json, or a one-line UsageError when SRC is not a world folder."""
    if not (src / state_name).is_file():
        raise UsageError(f"--from {src}: not a world folder (no {state_name}); name a folder `world run` wrote")
    state = read_json(src / state_name, UsageError, "")
    if not isinstance(state, dict) or state.get("format") != world_format or "recipe" not in state.get("identity", {}):
        raise UsageError(f"--from {src}: {state_name} is not a world's state (format {world_format} expected)")
    return state


def lendable(source: dict[str, Any], recipe: dict[str, Any], src: Path) -> list[tuple[str, str]]:
    """The (stage, folder) pairs SRC lends to a world of `recipe` (as `WorldRecipe.to_dict` gives it): the
    leading stages SRC finished whose settings agree. None at all is a one-line UsageError naming the first
    setting that differs (or that SRC has not built its data)."""
    theirs, done = source["identity"]["recipe"], source.get("stages", {})
    taken: list[tuple[str, str]] = []
    for stage, fields, folder in LENDABLE:
        differ = [f for f in fields if theirs.get(f) != recipe.get(f)]
        if differ or not done.get(stage, {}).get("done"):
            if not taken:
                why = (f"its {differ[0]} is {theirs.get(differ[0])!r}, this world's {recipe.get(differ[0])!r}"
                       if differ else f"its {stage} stage is not done")
                raise UsageError(f"--from {src}: has no stage to lend ({why})")
            break
        taken.append((stage, folder))
    return taken


def link_tree(src: Path, dst: Path) -> None:
    """Every file under `src` at the same place under `dst`: a hard link, or a copy across file systems;
    a file already at its place (an interrupted lend, rerun) is replaced."""
    for root, _, files in os.walk(src):
        here = dst / Path(root).relative_to(src)
        here.mkdir(parents=True, exist_ok=True)
        for name in files:
            target = here / name
            target.unlink(missing_ok=True)
            try:
                os.link(Path(root) / name, target)
            except OSError:
                shutil.copy2(Path(root) / name, target)


def check_lent(stage: str, folder: Path) -> None:
    """The lent artifact checked against its own seal: a one-line error names what differs."""
    if stage == "data":
        report = verify(folder)
        if not report.ok:
            path, problem = report.problems[0]
            raise UsageError(f"--from: the build lent to {folder} fails its manifest ({path}: {problem})")
    elif stage == "judges":
        verify_seal(folder)
    elif stage == "model":
        check_model(folder)


def lend(src: Path, root: Path, stages: Sequence[tuple[str, str]], source: dict[str, Any],
         state: dict[str, Any]) -> None:
    """Link (or copy) each lent stage's folder from SRC into `root`, check it, and mark the stage done in
    `state` with SRC's seconds and info and `from`; stages `state` already has done are left."""
    for stage, folder in stages:
        entry = state["stages"].get(stage)
        if entry is not None and entry.get("done"):
            continue
        link_tree(src / folder, root / folder)
        check_lent(stage, root / folder)
        theirs = source["stages"][stage]
        state["stages"][stage] = {"done": True, "seconds": theirs.get("seconds", 0.0), "info": theirs.get("info"),
                                  "from": str(src.resolve())}
