"""Recipe files: a shipped recipe by name or a TOML file by path, read into a plain table. A leaf: it
imports none of the machinery that runs a recipe, so reading one never imports torch."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from canvasdata.fields import RecipeError
from canvasdata.shipped import builtin_dir
from canvasdata.taxonomy import unknown_message


def resolve_recipe_path(name_or_path: str | Path, kind: str = "builders") -> Path:
    """A path to a TOML file, or the name of a shipped recipe (`mini`, `unlearncanvas`, ...). A shipped
    name wins over a directory of the same name (`canvasdata build --out mini` makes one); a build
    directory given by path stands for the `recipe.toml` inside it."""
    path = Path(name_or_path)
    if path.is_file() or path.suffix == ".toml":
        if not path.is_file():
            raise RecipeError(f"{path}: no such recipe file")
        return path
    shipped = builtin_dir(kind) / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    if path.is_dir():
        if (path / "recipe.toml").is_file():
            return path / "recipe.toml"
        raise RecipeError(f"{path}: a directory without a recipe.toml, not a recipe")
    names = sorted(p.stem for p in builtin_dir(kind).glob("*.toml"))
    raise RecipeError(unknown_message(str(name_or_path), names, f"shipped {kind} recipes"))


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; malformed TOML becomes a RecipeError naming the file and line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: malformed TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise RecipeError(f"{path}: not UTF-8 text: {e}") from None


class RecipeTable:
    """What every recipe dataclass (model, world) offers: its table without the file it came from
    (`source`), and a short hash of that table (where the file lives does not change it)."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        d.pop("source", None)
        return d

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
