"""The recipe file as a build ships it (`BUILD/recipe.toml`, what the rebuild command reads): the user's file
byte for byte, except that a relative location (a photo folder, relative to the user's recipe file) is
written as the absolute path it was read as, so that the copy rebuilds the same data from the build's folder.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from canvasdata.fields import RecipeError
from canvasdata.recipes.load import parse_recipe
from canvasdata.recipes.types import Recipe
from canvasdata.tomlfiles import load_toml

TABLE_RE = re.compile(r"^\s*\[")   # a table header: the [content] table ends at the next one


def _rewrite(text: str, table: str, key: str, value: str) -> str:
    """`text` with `key = "..."` of `[table]` set to `value` (a TOML basic string); unchanged if not found."""
    lines, inside = text.splitlines(keepends=True), False
    assign = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*')(.*)$", re.DOTALL)
    for i, line in enumerate(lines):
        if TABLE_RE.match(line):
            inside = line.strip() == f"[{table}]"
        elif inside and (m := assign.match(line)):
            lines[i] = m.group(1) + json.dumps(value) + m.group(3)
            return "".join(lines)
    return text


def portable_recipe(recipe: Recipe) -> bytes | None:
    """The bytes of `recipe`'s file with its relative locations made absolute (module docstring); None for a
    recipe read from no file. A file whose location the rewrite cannot place is a RecipeError naming the
    file and the field (give an absolute path)."""
    src = Path(recipe.source)
    if not src.is_file():
        return None
    data = src.read_bytes()
    written = load_toml(src).get("content", {})
    relative = [k for k in recipe.content.locations()
                if isinstance(written.get(k), str) and not Path(written[k]).is_absolute()]
    if not relative:
        return data
    text = data.decode("utf-8")
    for key in relative:
        text = _rewrite(text, "content", key, recipe.content.option(key))
    again = parse_recipe(tomllib.loads(text), str(src))
    if again.to_dict() != recipe.to_dict():
        raise RecipeError(f"{src}: field 'content.{relative[0]}': a relative path that the build's copy of the "
                          "recipe cannot rewrite; give an absolute path")
    return text.encode("utf-8")
