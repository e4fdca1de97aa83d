"""A build directory's own state, shared by the shard runner and the finishing step.

`.canvasdata/build.json` names the recipe a directory was started with; `.canvasdata/shards/` holds
one record per finished shard (sha256, rows, bytes, label counts). A shard counts as built while its
file still matches its record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from canvasdata.errors import CanvasdataError
from canvasdata.formats import ShardRecord, sha256_file, write_json
from canvasdata.manifest import MANIFEST

if TYPE_CHECKING:  # the recipe is only a type here: recipes import the dataset-kind registry
    from canvasdata.recipes import Recipe

STATE = ".canvasdata"
BUILD_OUTPUTS = ("data", STATE, MANIFEST, "README.md", "preview.jpg", "recipe.toml")


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


def prepare_output(recipe: Recipe, out: Path, overwrite: bool) -> None:
    """Refuse to mix builds: an output directory of another recipe is kept unless `overwrite`."""
    state = out / STATE / "build.json"
    if out.exists() and any(out.iterdir()):
        if state.exists():
            other = json.loads(state.read_text())
            if other.get("recipe_hash") != recipe.hash() and not overwrite:
                raise BuildError(
                    f"{out} holds a build of another recipe ({other.get('recipe_name')!r}, hash "
                    f"{other.get('recipe_hash', '')[:12]}); use another --out, or --overwrite to replace it")
        elif not overwrite:
            raise BuildError(f"{out} is not empty and holds no canvasdata build; use an empty directory "
                             "or --overwrite")
        if overwrite and (not state.exists() or json.loads(state.read_text()).get("recipe_hash") != recipe.hash()):
            for name in BUILD_OUTPUTS:
                target = out / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (out / "data").rglob(".*.tmp") if (out / "data").exists() else ():
        stale.unlink(missing_ok=True)
    write_json(state, {"recipe_name": recipe.name, "recipe_hash": recipe.hash(), "recipe": recipe.to_dict()})
