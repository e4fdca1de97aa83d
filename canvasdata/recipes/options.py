"""Each content backend's `[content]` options, declared once: one frozen dataclass per backend.

A field's annotation is its TOML type (`str`, `int`, `float`, `bool`; `str | None` for an optional
string), its default the value when the recipe leaves it out (none: required), and `option(...)` adds
what else is checked: `allowed` names, an inclusive range `lo`..`hi` (or `above`, an exclusive lower
bound), or the `placeholders` of a format template. The recipe loader reads every option with
`read_options` when the recipe is read (errors name the file, the field and what is allowed, as every
recipe field's do), and the backends get the same typed values back (`ContentConfig.source_options`,
`painter_options`). A leaf: no torch, no diffusers, nothing of the machinery that runs a recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar, TypeVar

from canvasdata.fields import Fields

DTYPE_NAMES = ("float32", "float16", "bfloat16")  # torch dtypes a pipeline loads in (`auto` chooses one)
PROMPT_FIELDS = ("object", "style")                # the placeholders `taxonomy.prompt` fills in
TOML_TYPES: dict[str, tuple[type, ...]] = {         # an option's annotation -> the TOML values it takes
    "str": (str,), "str | None": (str,), "int": (int,), "bool": (bool,), "float": (int, float),
}


@dataclass(frozen=True)
class Check:
    """What an option's value is checked against besides its type."""

    allowed: tuple[str, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    above: float | None = None                 # an exclusive lower bound (with `hi`): allowed (above, hi]
    placeholders: tuple[str, ...] | None = None  # a `str.format` template with these placeholders


def option(default: Any = MISSING, *, location: bool = False, **check: Any) -> Any:
    """A backend option with a default (none: required) and the checks of `Check`. A `location` names where
    an input lives (a folder): written relative, it is relative to the recipe file, and it is not part of the
    recipe's identity (what lives there is: the source's fingerprint in the build's inputs)."""
    return field(default=default, metadata={"check": Check(**check), "location": location})


def locations(cls: type[BackendOptions]) -> tuple[str, ...]:
    """The names of the options of `cls` declared as locations (`option(location=True)`)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("location"))


@dataclass(frozen=True)
class BackendOptions:
    """The options of one backend (`backend`: its name in `[content] source` or `painter`). `check` is where
    a backend refuses a combination of options that no single field's declaration can express."""

    backend: ClassVar[str] = ""

    def check(self, fields: Fields) -> None:
        """Raise `fields.fail(name, why)` for a combination of options this backend cannot use."""


OptionsT = TypeVar("OptionsT", bound=BackendOptions)


def read_options(cls: type[OptionsT], fields: Fields) -> OptionsT:
    """The options `cls` declares, read from `fields` (the `[content]` table) and checked as declared."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        check: Check = f.metadata.get("check", Check())
        default = ... if f.default is MISSING else f.default
        if check.placeholders is not None:
            value = fields.template(f.name, check.placeholders, default)
        else:
            hi = check.hi if check.above is None else None  # an open range is checked below, with its own words
            value = fields.get(f.name, TOML_TYPES[f.type], default, allowed=check.allowed, lo=check.lo, hi=hi)
        if f.type == "float" and value is not None:
            value = float(value)
        if check.above is not None and not check.above < value <= check.hi:
            raise fields.fail(f.name, f"{value} is out of range: allowed ({check.above:g}, {check.hi:g}]")
        values[f.name] = value
    options = cls(**values)
    options.check(fields)
    return options


def _declared(cls: type[BackendOptions]) -> type[BackendOptions]:
    """Check a declaration when the module loads: a dataclass whose annotations are TOML types."""
    bad = [f.name for f in dataclasses.fields(cls) if f.type not in TOML_TYPES]
    if bad or not cls.backend:
        raise TypeError(f"{cls.__name__}: option {bad} is not one of {', '.join(TOML_TYPES)}, or no backend name")
    return cls


@_declared
@dataclass(frozen=True)
class ProceduralSourceOptions(BackendOptions):
    """`source = "procedural"`: the scenes of `canvasdata.content`; it reads nothing but the recipe."""

    backend: ClassVar[str] = "procedural"


@_declared
@dataclass(frozen=True)
class PhotoOptions(BackendOptions):
    """`source = "photos"`: a folder `{object}/*.{jpg,jpeg,png,webp}`."""

    backend: ClassVar[str] = "photos"
    path: str = option(location=True)           # the folder (relative: to the recipe file)
    min_size: int = 64                          # smaller photos are reported (or skipped)
    skip_bad: bool = False                      # skip unreadable, non-image and too small files


@dataclass(frozen=True)
class PipelineSettings(BackendOptions):
    """What both diffusers backends read: the pipeline (`model`, a local folder or Hub id), its dtype, its
    scheduler (a diffusers class name or `ddim`, checked when it loads; "" keeps the pipeline's own) and the
    guidance scale."""

    model: str | None = None
    dtype: str = option("auto", allowed=("auto", *DTYPE_NAMES))
    scheduler: str = ""
    guidance: float = 7.5


@_declared
@dataclass(frozen=True)
class DiffusersOptions(PipelineSettings):
    """`source = "diffusers"`: content k of an object is the pipeline's image for `prompt`; `gen_size` the
    size it is generated at (0: the recipe's resolution), resized to the resolution."""

    backend: ClassVar[str] = "diffusers"
    prompt: str = option("A photo of a {object}.", placeholders=("object",))
    steps: int = option(30, lo=1, hi=10_000)
    gen_size: int = option(0, lo=0, hi=4096)

    def check(self, fields: Fields) -> None:
        if not self.model:
            raise fields.fail("model", "is required")


@_declared
@dataclass(frozen=True)
class ProceduralPainterOptions(BackendOptions):
    """`painter = "procedural"`: the named styles and the recipe's `[custom_styles]`."""

    backend: ClassVar[str] = "procedural"


@_declared
@dataclass(frozen=True)
class Img2ImgOptions(PipelineSettings):
    """`painter = "diffusers-img2img"`: content painted by an image-to-image pipeline (`painter_model`, else
    `model`) with `style_prompt` (default: the recipe's prompt_template) at `strength`; Seed_Images stays
    unpainted."""

    backend: ClassVar[str] = "diffusers-img2img"
    painter_model: str | None = None
    style_prompt: str | None = option(None, placeholders=PROMPT_FIELDS)
    strength: float = option(0.6, above=0, hi=1)
    img2img_steps: int = option(30, lo=1, hi=10_000)

    @property
    def pipeline(self) -> str:
        """The pipeline that paints."""
        return self.painter_model or self.model or ""

    def check(self, fields: Fields) -> None:
        if not self.pipeline:
            raise fields.fail("painter_model", f"(or 'content.model') is required for painter = {self.backend!r}")


# The backends a recipe may name, by name: the registries of `canvasdata.sources` implement exactly these
# (a backend added from outside declares its options with `declare_source` / `declare_painter`).
SOURCE_OPTIONS: dict[str, type[BackendOptions]] = {
    c.backend: c for c in (ProceduralSourceOptions, PhotoOptions, DiffusersOptions)}
PAINTER_OPTIONS: dict[str, type[BackendOptions]] = {
    c.backend: c for c in (ProceduralPainterOptions, Img2ImgOptions)}
DEFAULT_SOURCE = ProceduralSourceOptions.backend
DEFAULT_PAINTER = ProceduralPainterOptions.backend


def declare_source(name: str, options: type[BackendOptions] = ProceduralSourceOptions) -> None:
    """Let recipes name the content source `name`, with `options` (default: none)."""
    SOURCE_OPTIONS[name] = options


def declare_painter(name: str, options: type[BackendOptions] = ProceduralPainterOptions) -> None:
    """Let recipes name the painter `name`, with `options` (default: none)."""
    PAINTER_OPTIONS[name] = options
