"""World recipes: TOML under `worlds/` naming each stage's recipe (build, judge, model), the unlearning
requests, and every sampling, ESD and attack setting of `canvasdata world run`. A leaf: reading one
imports neither torch nor diffusers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from canvasdata.fields import Fields
from canvasdata.recipes.options import DTYPE_NAMES
from canvasdata.taxonomy import split_target
from canvasdata.tomlfiles import RecipeTable, load_toml, resolve_recipe_path

SEED_WORDS = ("Photo", "Seed Images")
# ESD's parameter sets a world may train styles on: canvasdata.unlearn.METHODS without `auto`, spelled out
# here because a recipe is a value leaf (tests/test_world.py checks that the two agree)
STYLE_METHODS = ("xattn", "xattn-strict", "noxattn", "full")
# what ESD erases for a style request: 'NAME style' (the paper's concept text) or every training caption
# that names the style, taken in turn
STYLE_TEXTS = ("concept", "captions")
# what ESD holds while it erases: nothing (the paper's ESD) or the same texts of every other style (a style
# request) / object (an object request), a utility-retaining term (`unlearn esd --retain`)
RETAIN = ("none", "others")
# an object request may hold every other object's training captions instead of its name (the texts the answers use)
OBJECT_RETAIN = (*RETAIN, "captions")
# where the retain term is taken: canvasdata.unlearn.RETAIN_LATENTS (a value leaf imports no machinery; a test
# keeps the two the same)
RETAIN_LATENTS = ("erased", "own")


@dataclass(frozen=True)
class WorldSampling:
    seeds: tuple[int, ...] = (188, 288, 588, 688, 888)
    steps: int = 50
    guidance: float = 7.5
    batch_size: int = 64
    floor_seeds: tuple[int, ...] = (1188, 1288, 1588, 1688, 1888)
    dtype: str = "float32"               # the dtype every sampling stage loads the pipelines in (DTYPE_NAMES)


@dataclass(frozen=True)
class WorldESD:
    iterations: int = 200
    lr: float = 1e-4
    object_lr: float | None = None       # ESD-u's (object requests') lr; None: `lr`
    style_method: str = "xattn"          # the parameter set style requests train (objects: noxattn, ESD-u)
    style_texts: str = "concept"         # a style request's erased texts: 'NAME style', or the captions naming it
    style_anchor: str = ""               # "": ESD's empty prompt; a style of the build: each text in that style
    style_negative_guidance: float | None = None   # style requests' eta; None: `negative_guidance`
    style_retain: str = "none"           # "others": hold every other style's texts (captions or 'NAME style')
    object_retain: str = "none"          # "others": hold every other object's name; "captions": its captions
    retain_weight: float = 1.0           # the retain term's weight against ESD's
    retain_empty: bool = False           # the empty prompt (the unconditional prediction) is a retain text too
    retain_latents: str = "erased"       # where the retain term is taken (`unlearn esd --retain-latents`)
    negative_guidance: float = 1.0
    start_guidance: float = 3.0
    sample_steps: int = 50


@dataclass(frozen=True)
class WorldAttacks:
    conceal_psi: tuple[float, ...] = (0.1, 0.25, 0.4, 0.55)
    probe_seeds: tuple[int, ...] = (2188, 2288, 2588)
    prompt_steps: int = 40


@dataclass(frozen=True)
class WorldRecipe(RecipeTable):
    """What `world run` builds, trains, unlearns and scores."""

    name: str
    build: str
    judge: str
    model: str
    targets: tuple[str, ...]
    description: str = ""
    protocol: str = "unlearncanvas"
    seed_images_words: str = "Photo"
    judge_every: int = 1000              # denoiser steps between the model's judged probes (its learning curve)
    judge_alone: bool = True             # train the judge in one process (rank 0, every core) even under torchrun
    sampling: WorldSampling = WorldSampling()
    esd: WorldESD = WorldESD()
    attacks: WorldAttacks = WorldAttacks()
    source: str = "<memory>"


def _ints(f: Fields, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    v = f.get(key, list, list(default))
    if not v or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v) or len(set(v)) != len(v):
        raise f.fail(key, "expected a non-empty list of distinct non-negative integers")
    return tuple(v)


def _targets(f: Fields) -> tuple[str, ...]:
    v = f.get("targets", list)
    bad = [t for t in v if not isinstance(t, str) or split_target(t) is None]
    if not v or bad:
        raise f.fail("targets", f"expected a non-empty list of 'style:NAME' / 'object:NAME' requests (got {bad or v})")
    if len(set(v)) != len(v):
        raise f.fail("targets", f"lists {sorted({t for t in v if v.count(t) > 1})} more than once")
    return tuple(v)


def _sampling(f: Fields) -> WorldSampling:
    d = WorldSampling()
    return WorldSampling(seeds=_ints(f, "seeds", d.seeds), steps=f.get("steps", int, d.steps, lo=1, hi=1000),
                         guidance=float(f.get("guidance", (int, float), d.guidance)),
                         batch_size=f.get("batch_size", int, d.batch_size, lo=1, hi=4096),
                         floor_seeds=_ints(f, "floor_seeds", d.floor_seeds),
                         dtype=f.get("dtype", str, d.dtype, allowed=DTYPE_NAMES))


def _optional_float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _positive(f: Fields, key: str, default: float) -> float:
    v = float(f.get(key, (int, float), default))
    if not v > 0 or v == float("inf"):
        raise f.fail(key, "expected a positive number")
    return v


def _esd(f: Fields) -> WorldESD:
    d = WorldESD()
    return WorldESD(iterations=f.get("iterations", int, d.iterations, lo=1, hi=1_000_000),
                    lr=float(f.get("lr", (int, float), d.lr)),
                    object_lr=_optional_float(f.get("object_lr", (int, float), None)),
                    style_method=f.get("style_method", str, d.style_method, allowed=STYLE_METHODS),
                    style_texts=f.get("style_texts", str, d.style_texts, allowed=STYLE_TEXTS),
                    style_anchor=f.get("style_anchor", str, d.style_anchor),
                    style_retain=f.get("style_retain", str, d.style_retain, allowed=RETAIN),
                    object_retain=f.get("object_retain", str, d.object_retain, allowed=OBJECT_RETAIN),
                    retain_weight=_positive(f, "retain_weight", d.retain_weight),
                    retain_empty=f.get("retain_empty", bool, d.retain_empty),
                    retain_latents=f.get("retain_latents", str, d.retain_latents, allowed=RETAIN_LATENTS),
                    negative_guidance=float(f.get("negative_guidance", (int, float), d.negative_guidance)),
                    style_negative_guidance=_optional_float(f.get("style_negative_guidance", (int, float), None)),
                    start_guidance=float(f.get("start_guidance", (int, float), d.start_guidance)),
                    sample_steps=f.get("sample_steps", int, d.sample_steps, lo=1, hi=1000))


def _attacks(f: Fields) -> WorldAttacks:
    d = WorldAttacks()
    psi = f.get("conceal_psi", list, list(d.conceal_psi))
    if not psi or not all(isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1 for p in psi):
        raise f.fail("conceal_psi", "expected a non-empty list of numbers strictly between 0 and 1")
    return WorldAttacks(conceal_psi=tuple(float(p) for p in psi), probe_seeds=_ints(f, "probe_seeds", d.probe_seeds),
                        prompt_steps=f.get("prompt_steps", int, d.prompt_steps, lo=1, hi=100_000))


def parse_world_recipe(data: dict, source: str = "<memory>") -> WorldRecipe:
    """Validate a world recipe's table; errors name the file, the field and what is allowed."""
    f = Fields(data, source)
    p, s, e, a = (f.table_of(k) for k in ("protocol", "sampling", "esd", "attacks"))
    r = WorldRecipe(name=f.get("name", str), build=f.get("build", str), judge=f.get("judge", str),
                    model=f.get("model", str), targets=_targets(f), description=f.get("description", str, ""),
                    protocol=p.get("name", str, "unlearncanvas"),
                    seed_images_words=p.get("seed_images_words", str, "Photo", allowed=SEED_WORDS),
                    judge_every=f.get("judge_every", int, 1000, lo=1, hi=10_000_000),
                    judge_alone=f.get("judge_alone", bool, True),
                    sampling=_sampling(s), esd=_esd(e), attacks=_attacks(a), source=source)
    forgotten = [n for d, _, n in (t.partition(":") for t in r.targets) if d == "style"]
    if r.esd.style_anchor in forgotten:
        raise e.fail("style_anchor", f"{r.esd.style_anchor!r} is itself forgotten ({', '.join(r.targets)}); anchor "
                     "on a style the world keeps, or \"\" for ESD's empty prompt")
    if r.esd.retain_latents != RETAIN_LATENTS[0] and r.esd.style_retain == r.esd.object_retain == "none":
        raise e.fail("retain_latents", f"{r.esd.retain_latents!r} places a retain term that no request has; set "
                     "style_retain or object_retain too")
    for sub in (p, s, e, a, f):
        sub.check_unknown()
    return r


def load_world_recipe(name_or_path: str | Path) -> WorldRecipe:
    """A world recipe by shipped name (`tiny`, `mini`) or path."""
    path = resolve_recipe_path(name_or_path, kind="worlds")
    return parse_world_recipe(load_toml(path), str(path))
