"""Operators and styles as named, validated data.

An operator is a pure function `fn(x, rngs, **params) -> x` over images [B,3,H,W] in [0,1], declared
with its parameters (type, range, default). A style is a list of steps `{op = NAME, param = value}`;
a parameter given as `[lo, hi]` is drawn per image from the image's seed, so each image varies a
little while the style stays itself. Styles load from TOML, and every error names the source, the
style, the step and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from canvasdata.errors import CanvasdataError
from canvasdata.taxonomy import closest_names


class StyleError(CanvasdataError, ValueError):
    """A style that cannot be used; the message names the source, style, step and field."""


@dataclass(frozen=True)
class Param:
    """One operator parameter: kind is float, int, bool, str, color or colors."""

    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind in ("float", "int"):
            return f"a {self.kind} from {self.lo} to {self.hi} (or [lo, hi] drawn per image)"
        if self.kind == "str":
            return "one of " + ", ".join(self.choices)
        if self.kind == "color":
            return "an RGB triple of numbers in 0..1"
        if self.kind == "colors":
            return "a list of RGB triples in 0..1"
        return "true or false"


@dataclass(frozen=True)
class Operator:
    name: str
    fn: Callable[..., torch.Tensor]
    params: Mapping[str, Param]
    doc: str = ""


OPERATORS: dict[str, Operator] = {}


def F_(default: float, lo: float, hi: float) -> Param:
    return Param("float", default, lo, hi)


def I_(default: int, lo: int, hi: int) -> Param:
    return Param("int", default, lo, hi)


def C_(default: Sequence[float]) -> Param:
    return Param("color", tuple(default))


def CS_(default: Sequence[Sequence[float]]) -> Param:
    return Param("colors", tuple(tuple(c) for c in default))


def S_(default: str, *choices: str) -> Param:
    return Param("str", default, choices=(default, *choices))


def operator(name: str, **params: Param) -> Callable:
    """Register an image operator with its declared parameters."""

    def deco(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        OPERATORS[name] = Operator(name, fn, params, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "")
        return fn

    return deco


@dataclass(frozen=True)
class Step:
    op: str
    params: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class StyleSpec:
    """A named style: steps applied in order; `identity` styles (Seed_Images) return the input."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""
    source: str = field(default="<builtin>", compare=False)

    @property
    def varies(self) -> bool:
        return any(isinstance(v, tuple) and len(v) == 2 and not isinstance(v[0], (tuple, list))
                   and all(isinstance(t, (int, float)) for t in v) for s in self.steps for _, v in s.params)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description,
                "steps": [{"op": s.op, **{k: v for k, v in s.params}} for s in self.steps]}


def _check_value(where: str, key: str, p: Param, v: Any) -> Any:
    def num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if p.kind in ("float", "int"):
        vals = v if isinstance(v, list) and len(v) == 2 and all(num(t) for t in v) else [v]
        for t in vals:
            if not num(t) or (p.kind == "int" and float(t) != int(t)):
                raise StyleError(f"{where}: field '{key}': expected {p.describe()}, got {v!r}")
            if not p.lo <= t <= p.hi:
                raise StyleError(f"{where}: field '{key}': {t!r} is out of range: allowed {p.lo}..{p.hi}")
        return tuple(vals) if len(vals) == 2 else vals[0]
    if p.kind == "bool":
        if not isinstance(v, bool):
            raise StyleError(f"{where}: field '{key}': expected true or false, got {v!r}")
        return v
    if p.kind == "str":
        if v not in p.choices:
            raise StyleError(f"{where}: field '{key}': {v!r} is not one of {', '.join(p.choices)}")
        return v
    triples = [v] if p.kind == "color" else v
    if not isinstance(triples, list) or not triples or not all(
            isinstance(c, list) and len(c) == 3 and all(num(t) and 0 <= t <= 1 for t in c) for c in triples):
        raise StyleError(f"{where}: field '{key}': expected {p.describe()}, got {v!r}")
    return tuple(triples[0]) if p.kind == "color" else tuple(tuple(c) for c in triples)


def parse_style(name: str, table: Mapping[str, Any], source: str = "<memory>") -> StyleSpec:
    """Validate one style table `{description?, steps = [{op = ..., ...}, ...]}`."""
    where = f"{source}: style {name!r}"
    unknown = sorted(set(table) - {"steps", "description"})
    if unknown:
        raise StyleError(f"{where}: field '{unknown[0]}' is not a known field; known: description, steps")
    steps_in = table.get("steps")
    if not isinstance(steps_in, list):
        raise StyleError(f"{where}: field 'steps': expected a list of {{op = NAME, ...}} tables")
    steps = []
    for i, st in enumerate(steps_in):
        sw = f"{where} step {i + 1}"
        if not isinstance(st, Mapping) or "op" not in st:
            raise StyleError(f"{sw}: expected a table with an 'op' field")
        op_name = st["op"]
        if op_name not in OPERATORS:
            raise StyleError(f"{sw}: field 'op': unknown operator {op_name!r}"
                             + closest_names(str(op_name), sorted(OPERATORS)))
        op = OPERATORS[op_name]
        params = []
        for key, v in st.items():
            if key == "op":
                continue
            if key not in op.params:
                raise StyleError(f"{sw} ({op_name}): field '{key}' is not a parameter of {op_name}"
                                 + closest_names(key, sorted(op.params)))
            params.append((key, _check_value(f"{sw} ({op_name})", key, op.params[key], v)))
        steps.append(Step(op_name, tuple(params)))
    return StyleSpec(name, tuple(steps), str(table.get("description", "")), source)


def styles_from_toml(table: Mapping[str, Any], source: str = "<memory>") -> list[StyleSpec]:
    """Styles from a TOML table `{Name = {steps = [...]}, ...}` (a recipe's `[custom_styles]`)."""
    out = []
    for name, body in table.items():
        if not isinstance(body, Mapping):
            raise StyleError(f"{source}: style {name!r}: expected a table with 'steps'")
        out.append(parse_style(name, body, source))
    return out


def resolve(spec: StyleSpec, rng: np.random.Generator) -> list[tuple[Operator, dict]]:
    """The steps of a style with every [lo, hi] range drawn from `rng` (one image's generator)."""
    plan = []
    for step in spec.steps:
        op = OPERATORS[step.op]
        params = {k: p.default for k, p in op.params.items()}
        for k, v in step.params:
            p = op.params[k]
            if p.kind in ("float", "int") and isinstance(v, tuple):
                v = float(rng.uniform(v[0], v[1]))
                v = int(round(v)) if p.kind == "int" else v
            params[k] = v
        plan.append((op, params))
    return plan


def spec_json(spec: StyleSpec) -> str:
    return json.dumps(spec.to_dict(), sort_keys=True)
