"""Dataset recipes: TOML files validated into the frozen dataclasses of `recipes.types`.

A recipe is data. Every error names the file, the field and what is allowed, so a user can fix a
recipe without reading code. Names (kind, format, backends) are checked against what `recipes.types`
and `recipes.options` declare, and each backend's options against its own dataclass, all when the recipe
is read: reading one imports none of the machinery that builds it (no torch). The recipe hash (sha256 of
its canonical JSON form) identifies a build.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from canvasdata.fields import Fields, RecipeError
from canvasdata.recipes.options import PAINTER_OPTIONS, PROMPT_FIELDS, SOURCE_OPTIONS, read_options
from canvasdata.recipes.types import (
    DEFAULT_KIND,
    KIND_SHAPES,
    SHARD_FORMATS,
    CardConfig,
    ConceptSpec,
    ContentConfig,
    OutputConfig,
    Recipe,
)
from canvasdata.taxonomy import (
    DOMAINS,
    PROMPT_TEMPLATE,
    SEED_STYLE,
    LabelError,
    LabelSpace,
    label_space,
    split_target,
    unknown_message,
)
from canvasdata.tomlfiles import load_toml, resolve_recipe_path

PAIRINGS = ("paired", "unpaired")
RANGE_RE = re.compile(r"(\d+)(?:-(\d+))?")  # a split's "A" or "A-B"


def _names(f: Fields, key: str, space: LabelSpace) -> tuple[str, ...]:
    """A list of class names of `space` (or "all"), each known and listed once."""
    value = f.get(key, (str, list), "all")
    if value == "all":
        return space.names
    if isinstance(value, str):
        raise f.fail(key, f"expected \"all\" or a list of names from label space {space.name!r}")
    out = []
    for name in value:
        if not isinstance(name, str):
            raise f.fail(key, f"expected names (strings), got {name!r}")
        if name not in space:
            raise f.fail(key, unknown_message(name, space.names, f"label space {space.name!r}"))
        if name in out:
            raise f.fail(key, f"{name!r} is listed twice")
        out.append(name)
    if not out:
        raise f.fail(key, "is empty")
    return tuple(out)


def _index_range(f: Fields, split: str, spec: Any, n: int, count_field: str) -> tuple[int, ...]:
    """'1-18', 19, "19", [19, "20-21"] -> indices: ranges "A-B" with A <= B, each index within 1..n
    and listed once, and at least one."""
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise f.fail(split, f"is empty: give it indices within 1..{n} ({count_field}), or leave the split out")
    out: list[int] = []
    for item in items:
        m = RANGE_RE.fullmatch(item) if isinstance(item, str) else None
        if isinstance(item, int) and not isinstance(item, bool):
            a = b = item
        elif m:
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        else:
            raise f.fail(split, f"expected an index, a range \"A-B\" (\"1-18\") or a list of them, got {item!r}")
        if a > b:
            raise f.fail(split, f"range {item!r} runs backwards: write \"{b}-{a}\"")
        if a < 1 or b > n:
            raise f.fail(split, f"index {a if a < 1 else b} is out of range: allowed 1..{n} ({count_field})")
        out.extend(range(a, b + 1))
    twice = [i for i, times in Counter(out).items() if times > 1]
    if twice:
        raise f.fail(split, f"index {twice[0]} is listed twice")
    return tuple(out)


def _label_spaces(f: Fields) -> tuple[LabelSpace, LabelSpace]:
    """The style and object label spaces: built in, or declared in `[label_spaces]`."""
    custom_spaces = f.get("label_spaces", dict, {})
    for key, names in custom_spaces.items():
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise f.fail(f"label_spaces.{key}", "expected a non-empty list of class names")
    try:
        return (label_space(f.get("style_space", str, "uc60"), custom_spaces),
                label_space(f.get("object_space", str, "objects"), custom_spaces))
    except LabelError as e:
        raise RecipeError(f"{f.source}: {e}") from None


def _splits(f: Fields, n: int, count_field: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """`[splits]`: every content index 1..n in exactly one split (default: all in `train`)."""
    splits_f = f.table_of("splits")
    raw_splits = splits_f.table or {"train": f"1-{n}"}
    splits, owner = [], {}
    for split, spec in raw_splits.items():
        splits_f.seen.add(split)
        if not split.replace("_", "").isalnum():
            raise splits_f.fail(split, "split names are letters, digits and underscores")
        idx = _index_range(splits_f, split, spec, n, count_field)
        for i in idx:
            if i in owner:
                raise splits_f.fail(split, f"index {i} is already in split {owner[i]!r}")
            owner[i] = split
        splits.append((split, idx))
    missing = sorted(set(range(1, n + 1)) - set(owner))
    if missing:
        raise splits_f.fail(next(iter(raw_splits)), f"indices {missing[:5]} are in no split (every 1..{n} needs one)")
    return tuple(splits)


def _output(f: Fields) -> OutputConfig:
    """`[output]`: shard format and sizes."""
    out_f, d = f.table_of("output"), OutputConfig()
    output = OutputConfig(
        format=out_f.get("format", str, d.format, allowed=SHARD_FORMATS),
        shard_rows=out_f.get("shard_rows", int, d.shard_rows, lo=1, hi=1_000_000),
        row_group_rows=out_f.get("row_group_rows", int, d.row_group_rows, lo=1, hi=1_000_000),
        batch_size=out_f.get("batch_size", int, d.batch_size, lo=1, hi=4096),
    )
    out_f.check_unknown()
    return output


def _content(f: Fields, seed: int, recipe_file: Path | None) -> ContentConfig:
    """`[content]`: the source, its seed and pairing; the other fields (the painter's name among them) are
    the backends' options, each read as the chosen source's and painter's dataclasses declare. A relative
    location (a photo folder) is made absolute against the folder of `recipe_file` (none: left as written,
    i.e. relative to the working directory)."""
    c_f, d = f.table_of("content"), ContentConfig()
    source = c_f.get("source", str, d.source, allowed=tuple(SOURCE_OPTIONS))
    content_seed = c_f.get("seed", int, seed, lo=0, hi=2**62)
    pairing = c_f.get("pairing", str, d.pairing, allowed=PAIRINGS)
    options = dict(c_f.table.items())
    for k in c_f.seen:
        options.pop(k, None)
    painter = c_f.get("painter", str, d.painter, allowed=tuple(PAINTER_OPTIONS))
    read_options(SOURCE_OPTIONS[source], c_f)
    read_options(PAINTER_OPTIONS[painter], c_f)
    c_f.check_unknown()
    content = ContentConfig(source, content_seed, pairing, tuple(sorted(options.items())))
    for name in content.locations():
        where = options.get(name)
        if recipe_file is not None and isinstance(where, str) and not Path(where).is_absolute():
            options[name] = str(recipe_file.resolve().parent / where)
    return dataclasses.replace(content, options=tuple(sorted(options.items())))


def _card(f: Fields) -> CardConfig:
    """`[card]`: dataset-card metadata."""
    card_f, d = f.table_of("card"), CardConfig()
    card = CardConfig(
        pretty_name=card_f.get("pretty_name", str, d.pretty_name),
        license=card_f.get("license", str, d.license),
        tags=tuple(card_f.get("tags", list, list(d.tags))),
        task_categories=tuple(card_f.get("task_categories", list, list(d.task_categories))),
    )
    card_f.check_unknown()
    return card


def _subjects(f: Fields, targets: bool, style_space: LabelSpace, object_space: LabelSpace
              ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[ConceptSpec, ...], int]:
    """(styles, objects, concept targets, images per prompt). A kind with targets draws the styles and
    objects its `[[concepts]]` name; the others list them (`styles`, `objects`)."""
    if not targets:
        return _names(f, "styles", style_space), _names(f, "objects", object_space), (), 1
    concepts = _concepts(f, style_space, object_space)
    images_per_prompt = f.get("images_per_prompt", int, 1, lo=1, hi=10_000)
    by_domain = {d: [c for c in concepts if c.domain == d] for d in DOMAINS}
    used_styles = {x for c in by_domain["style"] for x in (c.name, c.twin)}
    used_styles |= {t for c in by_domain["object"] for t in c.themes}
    used_objects = {t for c in by_domain["style"] for t in c.themes}
    used_objects |= {x for c in by_domain["object"] for x in (c.name, c.replacement, *c.retain) if x}
    styles = tuple(n for n in style_space.names if n in used_styles)
    objects = tuple(n for n in object_space.names if n in used_objects)
    return styles, objects, concepts, images_per_prompt


def parse_recipe(data: Mapping[str, Any], source: str = "<memory>") -> Recipe:
    """Validate a recipe table (as read from TOML) into a Recipe."""
    f = Fields(data, source)
    kind = KIND_SHAPES[f.get("kind", str, DEFAULT_KIND, allowed=tuple(KIND_SHAPES))]
    style_space, object_space = _label_spaces(f)
    n = f.get(kind.count_field, int, lo=1, hi=100_000)
    splits = _splits(f, n, kind.count_field)
    output = _output(f)
    seed = f.get("seed", int, lo=0, hi=2**62)
    content = _content(f, seed, Path(source) if Path(source).is_file() else None)
    card = _card(f)
    template = f.template("prompt_template", PROMPT_FIELDS, PROMPT_TEMPLATE, required=True)
    custom_styles = f.get("custom_styles", dict, {})  # the procedural painter checks the styles' steps
    styles, objects, concepts, images_per_prompt = _subjects(f, kind.targets, style_space, object_space)
    recipe = Recipe(
        name=f.get("name", str),
        version=str(f.get("version", (str, int, float), "1")),
        description=f.get("description", str, ""),
        kind=kind.name,
        seed=seed,
        style_space=style_space,
        object_space=object_space,
        styles=styles,
        objects=objects,
        images_per_cell=n,
        resolution=f.get("resolution", int, lo=32, hi=4096),
        jpeg_quality=f.get("jpeg_quality", int, 90, lo=1, hi=100),
        splits=splits,
        output=output,
        content=content,
        card=card,
        prompt_template=template,
        custom_styles=json.dumps(custom_styles, sort_keys=True) if custom_styles else "",
        concepts=concepts,
        images_per_prompt=images_per_prompt,
        source=source,
    )
    f.check_unknown()
    if not recipe.name.replace("-", "").replace("_", "").isalnum():
        raise f.fail("name", "use letters, digits, '-' and '_'")
    return recipe


def _target(c: Fields, table: Mapping[str, Any], style_space: LabelSpace, object_space: LabelSpace) -> ConceptSpec:
    """One `[[concepts]]` table: `target = "style:NAME"` or `"object:NAME"` and what its twin is."""
    target = c.get("target", str)
    if (split := split_target(target)) is None:
        raise c.fail("target", f"expected \"style:NAME\" or \"object:NAME\", got {target!r}")
    domain, name = split
    own, other = (style_space, object_space) if domain == "style" else (object_space, style_space)
    if name not in own:
        raise c.fail("target", unknown_message(name, own.names, f"label space {own.name!r}"))
    themes = _names(c, "themes", other)
    twin = c.get("twin", str, SEED_STYLE)
    replacement = c.get("replacement", str, "")
    retain: tuple[str, ...] = ()
    if domain == "style":
        if twin not in style_space or twin == name:
            raise c.fail("twin", f"must be another style of {style_space.name!r} (default {SEED_STYLE})")
        if "replacement" in table or "retain" in table:
            raise c.fail("replacement" if "replacement" in table else "retain", "only object targets take it")
    else:
        if replacement and (replacement not in object_space or replacement == name):
            raise c.fail("replacement", unknown_message(replacement, object_space.names, "other objects"))
        retain = _names(c, "retain", object_space) if "retain" in table else ()
        if name in retain:
            raise c.fail("retain", f"the target {name!r} cannot be a retain class")
        if "twin" in table:
            raise c.fail("twin", "only style targets take it; object targets use replacement")
    c.check_unknown()
    return ConceptSpec(name, domain, themes, twin if domain == "style" else "", replacement, retain)


def _concepts(f: Fields, style_space: LabelSpace, object_space: LabelSpace) -> tuple[ConceptSpec, ...]:
    """The `[[concepts]]` tables of a concept-set recipe."""
    tables = f.get("concepts", list)
    if not tables:
        raise f.fail("concepts", "a concept set needs at least one [[concepts]] table")
    out: list[ConceptSpec] = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise f.fail(f"concepts[{i}]", "expected a table")
        c = Fields(table, f.source, f"concepts[{i}].")
        spec = _target(c, table, style_space, object_space)
        if any(o.name == spec.name for o in out):
            raise c.fail("target", f"{spec.name!r} is listed twice")
        out.append(spec)
    return tuple(out)


def load_recipe(name_or_path: str | Path = "mini") -> Recipe:
    """Load and validate a dataset recipe by shipped name or path."""
    path = resolve_recipe_path(name_or_path)
    return parse_recipe(load_toml(path), str(path))
