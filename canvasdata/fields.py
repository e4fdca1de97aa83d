"""The one field validator: typed fields of a TOML table (dataset recipes, judge recipes, a backend's
`[content]` options), with errors that name the file, the field and what is allowed."""

from __future__ import annotations

import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from canvasdata.errors import CanvasdataError
from canvasdata.taxonomy import closest_names


class RecipeError(CanvasdataError, ValueError):
    """A recipe that cannot be used; the message names the file and the field."""


class Fields:
    """Reads typed fields from a TOML table, raising errors that name the file and field."""

    def __init__(self, table: Mapping[str, Any], source: str, prefix: str = "") -> None:
        self.table, self.source, self.prefix = table, source, prefix
        self.seen: set[str] = set()

    def fail(self, key: str, msg: str) -> RecipeError:
        """The error for field `key` (to raise)."""
        return RecipeError(f"{self.source}: field '{self.prefix}{key}': {msg}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., *, allowed: Sequence | None = None,
            lo: int | None = None, hi: int | None = None) -> Any:
        """Field `key` checked against `kind`, `allowed` and the range lo..hi; `default` when absent
        (no default: the field is required)."""
        self.seen.add(key)
        if key not in self.table:
            if default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(key, f"expected {names}, got {type(value).__name__} {value!r}")
        if allowed is not None and value not in allowed:
            raise self.fail(key, f"{value!r} is not one of {', '.join(str(a) or repr(a) for a in allowed)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(key, f"{value!r} is out of range: allowed {lo}..{hi}")
        return value

    def table_of(self, key: str) -> Fields:
        """The sub-table `key` (empty when absent), its errors prefixed `key.`."""
        sub = self.get(key, dict, {})
        return Fields(sub, self.source, f"{self.prefix}{key}.")

    def template(self, key: str, placeholders: Sequence[str], default: Any = ..., *, required: bool = False) -> Any:
        """A format template (field `key`, a string) whose placeholders are among `placeholders`, each
        of them present when `required`; checked when the recipe is read, before anything renders."""
        value = self.get(key, str, default)
        if not isinstance(value, str):
            return value
        allowed = ", ".join(f"{{{p}}}" for p in placeholders)
        try:
            used = list(_placeholders(value))
        except ValueError as e:
            raise self.fail(key, f"malformed template {value!r} ({e}); placeholders allowed: {allowed}, "
                                 "and {{ }} for literal braces") from None
        bad = [p for p in used if p not in placeholders]
        if bad:
            raise self.fail(key, f"unknown placeholder {{{bad[0]}}} in {value!r}; allowed: {allowed} "
                                 "(and {{ }} for literal braces)")
        missing = [p for p in placeholders if required and p not in used]
        if missing:
            raise self.fail(key, f"{value!r} lacks {{{missing[0]}}}; the template must use each of {allowed}")
        return value

    def check_unknown(self, also: Iterable[str] = ()) -> None:
        """Refuse a field that no `get` asked for (nor `also` names: fields that others read), naming the
        table, the closest known fields and all of them."""
        known = sorted(self.seen | set(also))
        extra = sorted(set(self.table) - set(known))
        if extra:
            where = f"[{self.prefix.rstrip('.')}]" if self.prefix else "the top level"
            hint = closest_names(extra[0], known, list_allowed=True)
            raise self.fail(extra[0], f"is not a known field of {where}{hint}")


def _placeholders(template: str) -> Iterator[str]:
    """The field names of a `str.format` template, nested format specs included ("" for `{}`)."""
    for _, name, spec, _ in string.Formatter().parse(template):
        if name is not None:
            yield name
        if spec:
            yield from _placeholders(spec)
