"""A build directory's own state, shared by the shard runner and the finishing step.

`.canvasdata/build.json` names the recipe (and the source's input fingerprints) a directory was started
with; `.canvasdata/shards/` holds one record per finished shard (sha256, rows, bytes, label counts); a
shard counts as built while its file still matches its record. `.canvasdata/lock` names the process that
is building the directory: one build at a time. Before a build starts, `prepare_output` decides what may
be kept, resumed or removed: it never removes a file that no canvasdata build wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from canvasdata.errors import CanvasdataError
from canvasdata.folders import listing, remove_files, temp_of
from canvasdata.formats import ShardRecord, sha256_file, write_json
from canvasdata.locks import folder_lock, pid_alive
from canvasdata.manifest import MANIFEST, STATE, Manifest, ManifestError
from canvasdata.recipes import Recipe

LOCK = "lock"
FINAL_OUTPUTS = ("README.md", "preview.jpg", "recipe.toml")  # what finishing a build writes besides the manifest
# temporary names that older versions wrote (no pid), beside today's .NAME.PID.tmp (`folders.temp_of`)
OLD_TEMP = re.compile(r"\.(.+)\.tmp|(recipe\.toml|preview\.jpg)\.tmp")
SHOWN = 8  # file names an error lists before "and N more"
log = logging.getLogger(__name__)


class BuildError(CanvasdataError, RuntimeError):
    """A build that cannot start or finish; nothing already built is lost."""


def record_path(out: Path, shard_name: str) -> Path:
    """Where the record of shard `shard_name` lives."""
    return out / STATE / "shards" / (shard_name.replace("/", "__") + ".json")


def write_record(out: Path, rec: ShardRecord) -> None:
    """Record a finished shard (after its file is in place)."""
    write_json(record_path(out, rec.path), rec.to_dict())


def read_record(out: Path, shard_name: str) -> dict:
    """The record of a built shard; a missing one is a BuildError that says to rerun the build."""
    path = record_path(out, shard_name)
    if not path.exists():
        raise BuildError(f"{out}: shard {shard_name} was not built; rerun the build to complete it")
    return json.loads(path.read_text())


def shard_is_complete(out: Path, shard_name: str) -> bool:
    """A shard counts as built when its record exists and the file still has the recorded checksum."""
    rec_path, path = record_path(out, shard_name), out / shard_name
    if not rec_path.exists() or not path.exists():
        return False
    try:
        rec = json.loads(rec_path.read_text())
    except json.JSONDecodeError:
        return False
    return path.stat().st_size == rec.get("bytes") and sha256_file(path) == rec.get("sha256")


@contextlib.contextmanager
def build_lock(out: Path) -> Iterator[None]:
    """Hold `out/.canvasdata/lock` while building (`locks.folder_lock`): a second build of the same
    directory fails at once naming the holder. Folders this call creates are removed again if nothing
    else was written."""
    created = [d for d in (out, out / STATE) if not d.exists()]
    (out / STATE).mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(out / STATE / LOCK, f"{out} is being built"):
            yield
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when empty: nothing was built


def _files(out: Path) -> list[str]:
    """Every file under `out` (relative, sorted), the build state folder left out."""
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                  if p.is_file() and not p.relative_to(out).as_posix().startswith(f"{STATE}/"))


def is_temp(rel: str) -> bool:
    """A temporary file name of canvasdata's atomic writers (`.NAME.PID.tmp`; older versions also wrote
    `recipe.toml.tmp` and `preview.jpg.tmp`)."""
    name = Path(rel).name
    return temp_of(name) is not None or OLD_TEMP.fullmatch(name) is not None


def owned_files(out: Path) -> set[str]:
    """The files of `out` that a canvasdata build wrote: what its manifest lists (or, for a version-1
    manifest, its shards and the card, recipe and preview beside it); in a directory with build state
    (a build that did not finish, or one interrupted while finishing), the shards its records name and the
    card, recipe, preview and prompt files; and temporary files of interrupted writes."""
    owned: set[str] = set()
    with contextlib.suppress(ManifestError):
        if (out / MANIFEST).exists():
            m = Manifest.read(out)
            owned |= {MANIFEST, *(s.path for s in m.shards), *(m.prompt_files or [])}
            owned |= {f.path for f in m.files} if m.files is not None else set(FINAL_OUTPUTS)
    if (out / STATE / "build.json").exists():
        owned |= {rel for rel in _files(out) if rel in FINAL_OUTPUTS or (rel.startswith("prompts/")
                                                                      and rel.endswith(".json"))}
    for rec in (out / STATE / "shards").glob("*.json") if (out / STATE / "shards").is_dir() else ():
        with contextlib.suppress(OSError, json.JSONDecodeError, KeyError, TypeError):
            owned.add(json.loads(rec.read_text())["path"])
    return owned | {rel for rel in _files(out) if is_temp(rel)}


def _previous(out: Path) -> dict[str, Any] | None:
    """What the directory says it holds: build.json, else a manifest's recipe (a copied build), else None."""
    state = out / STATE / "build.json"
    if state.exists():
        try:
            return json.loads(state.read_text())
        except (OSError, json.JSONDecodeError):
            return {"recipe_name": "unknown (unreadable .canvasdata/build.json)"}
    with contextlib.suppress(ManifestError):
        if (out / MANIFEST).exists():
            m = Manifest.read(out)
            return {"recipe_name": m.recipe_name, "recipe_hash": m.recipe_hash, "inputs": m.inputs}
    return None


def _remove(out: Path, rels: set[str]) -> None:
    """Remove these files of `out`, the shard records, and the folders left empty."""
    remove_files(out, sorted(rels))
    for rec in (out / STATE / "shards").glob("*.json") if (out / STATE / "shards").is_dir() else ():
        rec.unlink()
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if d != out / STATE and not any(d.iterdir()):
            d.rmdir()


def _inside(path: str, out: Path) -> str | None:
    """`path` relative to `out` when it is a file inside it (a recipe kept in its own output directory)."""
    with contextlib.suppress(ValueError, OSError):
        return Path(path).resolve().relative_to(out.resolve()).as_posix()
    return None


def _clear_for(recipe: Recipe, out: Path, previous: dict[str, Any] | None) -> None:
    """--overwrite: remove what earlier builds wrote, after checking nothing else is there."""
    keep = {rel for rel in (_inside(recipe.source, out),) if rel}
    owned = owned_files(out) - keep
    others = [rel for rel in _files(out) if rel not in owned and rel not in keep]
    if others:
        what = "no canvasdata build" if previous is None else "a build"
        raise BuildError(f"{out} holds {what} and {len(others)} file(s) no build wrote ({listing(others, SHOWN)}); "
                         "--overwrite removes only a build's own files: move those, or use another --out")
    _remove(out, owned)


def prepare_output(recipe: Recipe, out: Path, overwrite: bool, inputs: dict | None = None) -> None:
    """Decide what happens to what `out` holds (call it with the build lock held): the same recipe resumes;
    another recipe, or a folder that holds no build, is refused unless `overwrite`, which removes only the
    files earlier builds wrote (refusing, with their names, when others are there). Shards built from other
    inputs than `inputs` (the source's fingerprint) are rebuilt. Temporary files of interrupted writes go."""
    previous = _previous(out)
    present = _files(out)
    if present and (previous is None or previous.get("recipe_hash") != recipe.hash()):
        if not overwrite:
            if previous is None:
                raise BuildError(f"{out} is not empty and holds no canvasdata build ({len(present)} file(s): "
                                 f"{listing(present, SHOWN)}); use an empty or new --out")
            raise BuildError(f"{out} holds a build of another recipe ({previous.get('recipe_name')!r}, hash "
                             f"{str(previous.get('recipe_hash', ''))[:12]}); use another --out, or --overwrite to "
                             "replace it (only that build's files are removed)")
        _clear_for(recipe, out, previous)
    elif previous is not None and previous.get("inputs") != inputs:
        stale = owned_files(out) - {MANIFEST} - {rel for rel in (_inside(recipe.source, out),) if rel}
        log.warning("%s: the source's inputs changed since the shards were built: rebuilding them", out)
        _remove(out, {rel for rel in stale if rel.startswith("data/")} | ({MANIFEST} & set(present)))
    for rel in filter(is_temp, _files(out)):
        temp = temp_of(Path(rel).name)   # an older version's name has no pid
        if not (temp is not None and temp[1] != os.getpid() and pid_alive(temp[1])):
            (out / rel).unlink(missing_ok=True)
    write_json(out / STATE / "build.json", {"recipe_name": recipe.name, "recipe_hash": recipe.hash(),
                                            "recipe": recipe.to_dict(), "inputs": inputs})
