"""The folder `judge train --out` trains into: whose run it holds (`run_identity`, recorded in the
checkpoint), which of its files a judge writer wrote (`is_judge_dir`, `sort_files`), and what training
does with it (`plan_out`): start afresh, resume this run's checkpoint, delete a judge's own files
(`--overwrite`), or refuse in one line; nothing it did not write is ever removed."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path

from canvasdata.folders import listing, temp_of
from canvasdata.judges.checkpoint import CHECKPOINT, LEGACY_CHECKPOINT, checkpoint_meta
from canvasdata.judges.model import JudgeError
from canvasdata.judges.recipe import JudgeRecipe
from canvasdata.judges.weights import CARD, CONFIG, LOCK, SEAL, SEALED, STAGING
from canvasdata.manifest import Manifest

# every file that canvasdata's judge writers (export, training, evaluation) write into a judge directory;
# `judge train --overwrite` removes these and nothing else
JUDGE_WRITTEN = (*SEALED, CARD, SEAL, "history.json", CHECKPOINT, *LEGACY_CHECKPOINT, "eval/eval.json",
                 "eval/confusion_*.png", "eval/cross_*.png")
LISTED = 5   # file names a refusal lists before "and N more"


def run_identity(recipe: JudgeRecipe, data: str | Path, manifest: Manifest | None) -> dict:
    """What makes a checkpoint this run's: the training recipe (the sha256 of its fields, all but
    `workers`, which does not change the result) and the data (the build's recipe hash, else the source:
    a local folder's absolute path or a Hub id)."""
    fields = {k: v for k, v in recipe.to_dict().items() if k != "workers"}
    recipe_hash = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    where = Path(data).resolve() if Path(data).exists() else data
    source = ({"recipe": manifest.recipe_name, "recipe_hash": manifest.recipe_hash} if manifest is not None
              else {"source": str(where)})
    return {"recipe": recipe.name, "recipe_hash": recipe_hash, "data": source}


def is_judge_dir(root: Path) -> bool:
    """Whether `root` holds a judge or a judge's training checkpoint (canvasdata's, of any version)."""
    if (root / SEAL).is_file() or any((root / c).is_file() for c in (CHECKPOINT, *LEGACY_CHECKPOINT)):
        return True
    try:
        cfg = json.loads((root / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "canvasdata" in cfg


def sort_files(root: Path) -> tuple[list[str], list[str], list[str]]:
    """The files under `root` (relative POSIX paths, hidden ones included) in three lists: those a judge
    writer writes (JUDGE_WRITTEN), leftovers of interrupted judge writes (the staging folder, temporary
    .NAME.PID.tmp files of those names), and everything else."""
    ours: list[str] = []
    left: list[str] = []
    others: list[str] = []
    for rel in sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir() and p.name != LOCK):
        folder, _, name = rel.rpartition("/")
        temp = temp_of(name)
        named = f"{folder}/{temp[0]}" if temp and folder else temp[0] if temp else rel
        own = any(fnmatch.fnmatchcase(named, p) and named.count("/") == p.count("/") for p in JUDGE_WRITTEN)
        if rel.split("/")[0] == STAGING or (temp and own):
            left.append(rel)
        else:
            (ours if own else others).append(rel)
    return ours, left, others


def plan_out(out: Path, identity: dict, overwrite: bool) -> tuple[bool, list[str]]:
    """What training does with `out`: (resume from its checkpoint?, files to delete first). A new or
    empty folder (leftovers of interrupted writes aside) starts afresh and this run's checkpoint (same
    recipe, same data) is resumed; anything else is refused in one line, except that `overwrite` replaces
    a judge: its files are deleted, and it is refused when the folder holds files of anything else."""
    if out.exists() and not out.is_dir():
        raise JudgeError(f"{out}: a file, not a folder; choose another --out")
    if not out.exists():
        return False, []
    judge = is_judge_dir(out)
    foreign = [] if judge else sorted(p.name for p in out.iterdir() if p.name not in (STAGING, "checkpoint", LOCK)
                                      and temp_of(p.name) is None)
    ours, left, others = ([], [], foreign) if foreign else sort_files(out)   # no walk through a big folder
    if not ours and not others:
        return False, left
    if not judge:
        raise JudgeError(f"{out}: not empty ({listing(ours + others, LISTED)}) and holds no judge; choose an empty "
                         "or new --out (nothing there is replaced, even with --overwrite)")
    found = _found_identity(out)
    if found is not None and found.get("recipe_hash") == identity["recipe_hash"] and found.get(
            "data") == identity["data"]:
        return True, left
    if not overwrite:
        raise JudgeError(f"{out}: {_mismatch(found, identity)}; rerun with --overwrite to replace that judge (only "
                         "its own files are deleted), or choose another --out")
    if others:
        raise JudgeError(f"{out}: --overwrite deletes only a judge's own files, and {out} also holds "
                         f"{listing(others, LISTED)}; move them away or choose another --out")
    return False, ours + left


def _found_identity(out: Path) -> dict | None:
    """The identity recorded in out's checkpoint, None without one, {"unreadable": why} if unreadable."""
    if not (out / CHECKPOINT).is_file():
        return {"legacy": True} if any((out / c).is_file() for c in LEGACY_CHECKPOINT) else None
    try:
        found = checkpoint_meta(out / CHECKPOINT).get("identity")
    except JudgeError as e:
        return {"unreadable": str(e)}
    return found if isinstance(found, dict) else {"unreadable": f"{out / CHECKPOINT}: names no training run"}


def _mismatch(found: dict | None, identity: dict) -> str:
    """Why `out` is not this run's checkpoint, in words."""
    if found is None:
        return "holds a judge but no checkpoint of this training run"
    if "legacy" in found:
        return "holds the checkpoint of an older canvasdata, which cannot be resumed exactly"
    if "unreadable" in found:
        return found["unreadable"]
    if found.get("recipe_hash") != identity["recipe_hash"]:
        return (f"holds the checkpoint of another training recipe ({found.get('recipe')!r}, "
                f"{str(found.get('recipe_hash'))[:12]}; this run: {identity['recipe']!r}, "
                f"{identity['recipe_hash'][:12]})")
    return f"holds a judge trained on other data ({_data(found.get('data'))}; this run: {_data(identity['data'])})"


def _data(d: object) -> str:
    """The data a checkpoint names, in words."""
    if isinstance(d, dict) and "recipe_hash" in d:
        return f"a build of recipe {d.get('recipe')!r}, {str(d['recipe_hash'])[:12]}"
    return f"{d.get('source') if isinstance(d, dict) else d}"
