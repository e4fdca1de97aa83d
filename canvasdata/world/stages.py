"""The stages of `canvasdata world run`, each calling the library's own commands on the folder layout
below and resumable on its own (every command they call resumes; a stage marked done in `world.json`
is skipped):

    DIR/data/                     the build (`canvasdata build`)
    DIR/judges/                   the style + object judge (`judge train`), its held-out eval in judges/eval/
    DIR/model/                    the original text-to-image model (`model train`)
    DIR/answers/original/         its answer set (`evaluate generate`)
    DIR/answers/floor/{request}/  a second seed set of the original on each forgotten concept's prompts
    DIR/unlearned/esd/{request}/  one ESD model per request (`unlearn esd`)
    DIR/runs/{method}/{request}/  answer sets in the layout `evaluate suite` reads (original: links)
    DIR/runs/esd/{first}/conceal|prompts/   the attacks on the first request
    DIR/suite/                    the suite (`evaluate suite`) and concept FDs
    DIR/retrained/{request}/      with `--retrained T`: a model trained without T (`model train --exclude T`)
    DIR/answers/retrained/{request}/   its answer set
    DIR/gold/{request}/           the original and ESD models against it (`evaluate retrained`)
    DIR/REPORT.md, DIR/grid.png   the report
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from canvasdata.attack.common import Sampling
from canvasdata.attack.conceal import run_conceal
from canvasdata.attack.config import AttackConfig
from canvasdata.attack.prompts import run_prompt_attack
from canvasdata.data import load_split
from canvasdata.dataset import build
from canvasdata.devices import Session, intra_op_threads, usable_cores
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import read_answers
from canvasdata.evaluate.fidelity import prompt_fidelity
from canvasdata.evaluate.generate import generate_answers
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.retrained import compare_retrained
from canvasdata.evaluate.score import judge_for, run_judges
from canvasdata.evaluate.suite import request_dir, score_suite
from canvasdata.formats.common import write_json
from canvasdata.judges import load_judge
from canvasdata.judges.evaluate import evaluate_judge, worst
from canvasdata.judges.recipe import load_judge_recipe
from canvasdata.judges.train import train_judge
from canvasdata.metrics import frechet_distance
from canvasdata.models.data import matches
from canvasdata.models.output import record_judgement
from canvasdata.models.recipe import load_model_recipe
from canvasdata.models.train import train_model
from canvasdata.recipes import Recipe, load_recipe
from canvasdata.sources.diffusers import PipelineOptions
from canvasdata.taxonomy import prompt as caption
from canvasdata.taxonomy import style_words
from canvasdata.unlearn import ESDConfig
from canvasdata.unlearn.esd import erase
from canvasdata.world.recipe import WorldRecipe

METHOD = "esd"
ORIGINAL = "original"
RETRAINED, GOLD = "retrained", "gold"


@dataclass
class World:
    """One world's recipe, folder and settings, and the facts its stages share."""

    recipe: WorldRecipe
    root: Path
    device: str
    progress: bool
    session: Session = field(default_factory=Session.alone)   # torchrun's ranks, if any

    @property
    def main(self) -> bool:
        """Whether this process is rank 0 (the one that writes what one process would write alone)."""
        return self.session.main

    @cached_property
    def build_recipe(self) -> Recipe:
        return load_recipe(self.recipe.build)

    @property
    def styles(self) -> list[str]:
        return list(self.build_recipe.styles)

    @property
    def objects(self) -> list[str]:
        return list(self.build_recipe.objects)

    @cached_property
    def resolution(self) -> int:
        return load_model_recipe(self.recipe.model).resolution or self.build_recipe.resolution

    @property
    def protocol(self) -> Protocol:
        return get_protocol(self.recipe.protocol, seed_images_words=self.recipe.seed_images_words)

    @property
    def test_indices(self) -> tuple[int, ...]:
        return dict(self.build_recipe.splits)["test"]

    def sampling(self, seeds: Sequence[int] | None = None) -> Sampling:
        s = self.recipe.sampling
        return Sampling(seeds=tuple(seeds or s.seeds), size=self.resolution, steps=s.steps, guidance=s.guidance,
                        batch_size=s.batch_size, device=self.device,
                        options=PipelineOptions(dtype=s.dtype, scheduler="DDIMScheduler"))

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def judges(self) -> list[Any]:
        return [load_judge(self.path("judges"), self.device)]

    def unlearned(self, target: str) -> Path:
        return self.path("unlearned", METHOD, request_dir(target))

    def generate(self, model: Path, out: Path, *, styles: Sequence[str] | None = None,
                 objects: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> Path:
        s = self.sampling(seeds)
        return generate_answers(model, out, styles=styles or self.styles, objects=objects or self.objects,
                                seeds=s.seeds, size=s.size, steps=s.steps, guidance=s.guidance,
                                batch_size=s.batch_size, device=self.device, options=s.options,
                                protocol=self.protocol, progress=self.progress, session=self.session)


def stage_data(w: World) -> dict[str, Any]:
    """Build the world's dataset."""
    m = build(w.build_recipe, w.path("data"), progress=w.progress)
    return {"images": m.num_rows if m is not None else None}


def stage_judges(w: World) -> dict[str, Any]:
    """Train the judge, then evaluate it on the held-out split (judges/eval/). With the recipe's
    `judge_alone` rank 0 trains it alone on every core while the other ranks wait (the tiny judge in one
    process read world7's held-out objects 97.7 % against 96.7 % under 2-rank DDP, whose BatchNorm sees a
    rank's 32 images: docs/world.md); otherwise every rank trains it (DDP)."""
    recipe = load_judge_recipe(w.recipe.judge)

    def train(session: Session | None) -> dict:
        return train_judge(recipe, w.path("data"), w.path("judges"), device=w.device, progress=w.progress,
                           session=session)

    if w.recipe.judge_alone and w.session.world > 1:
        def alone() -> dict:
            with intra_op_threads(usable_cores()):
                return train(Session.alone(w.session.device))
        hist = w.session.from_main(alone)
    else:
        hist = train(None)
    if not w.main:
        return {}
    judge = w.judges()[0]
    data = load_split(w.path("data"), "test", ["style", "object"])
    report = evaluate_judge(judge, data, w.path("judges", "eval"), about={"source": str(w.path("data")),
                                                                           "split": "test"}, progress=w.progress)
    return {"train_seconds": hist.get("seconds"),
            "held_out": {t: r["top1"] for t, r in report["tasks"].items()},
            "degraded": {t: r["degraded_top1"] for t, r in report["tasks"].items()},
            "worst_style_object": _worst_style_object(report)}


def _worst_style_object(report: dict) -> dict[str, Any] | None:
    """The style whose images' objects the judge reads worst (its accuracy), from the eval's grouping."""
    groups = report["tasks"].get("object", {}).get("by_style", {})
    if not groups:
        return None
    name, g = worst(groups, 1)[0]
    return {"style": name, "object_accuracy": g["accuracy"]}


def stage_model(w: World) -> dict[str, Any]:
    """Train the original text-to-image model."""
    r = train_model(load_model_recipe(w.recipe.model), w.path("data"), w.path("model"), device=w.device,
                    progress=w.progress, judges=w.judges(), judge_every=w.recipe.judge_every)
    if not w.main:
        return {}
    return {"seconds": r["seconds"], "vae_psnr": r.get("vae_psnr"), "parameters": r["parameters"],
            "curve": r.get("curve", [])}


def stage_original(w: World) -> dict[str, Any]:
    """The original model's answer set, judged: how well it generates (written into its card too)."""
    out = w.generate(w.path("model"), w.path("answers", ORIGINAL))
    if not w.main:
        return {}
    judged = prompt_fidelity(out, w.judges(), w.styles, w.objects, w.protocol)
    s = w.recipe.sampling
    record_judgement(w.path("model"), {**judged, "steps": s.steps, "guidance": s.guidance, "seeds": list(s.seeds)})
    return {"judged": judged}


def style_texts(w: World, style: str) -> list[str]:
    """A style's texts by the recipe's [esd] `style_texts`: 'NAME style', or every training caption that
    names it (the world's words for Seed_Images)."""
    words = w.recipe.seed_images_words
    if w.recipe.esd.style_texts == "captions":
        return [caption(style, o, seed_words=words) for o in w.objects]
    return [f"{style_words(style, words)} style"]


def erased_texts(w: World, target: str) -> tuple[list[str] | None, list[str] | None]:
    """What ESD erases for `target` and each text's anchor (None: ESD's default text / empty prompt), by the
    recipe's [esd] `style_texts` and `style_anchor` (`style_texts`), each anchored on the same text in the
    anchor style. Objects take ESD's default, the object's name."""
    e = w.recipe.esd
    domain, _, name = target.partition(":")
    if domain != "style" or (e.style_texts == "concept" and not e.style_anchor):
        return None, None
    if e.style_anchor and e.style_anchor not in w.styles:
        raise UsageError(f"{w.recipe.source}: [esd] style_anchor {e.style_anchor!r}: not a style of the build "
                         f"(allowed: {', '.join(s for s in w.styles if s != name)}, or \"\")")
    return style_texts(w, name), (style_texts(w, e.style_anchor) if e.style_anchor else None)


def retained_texts(w: World, target: str) -> list[str] | None:
    """The texts ESD holds while it erases `target` (None: none, the paper's ESD), by the recipe's [esd]
    `style_retain` / `object_retain`: 'others' is `style_texts` of every other style of the build (the photo
    style included) or, for an object, every other object's name; an object's 'captions' is every training
    caption of every other object (each style's, in the world's words); with `retain_empty` the empty prompt
    too (what classifier-free guidance subtracts from every prompt's prediction)."""
    e = w.recipe.esd
    domain, _, name = target.partition(":")
    held = e.style_retain if domain == "style" else e.object_retain
    if held == "none":
        return None
    if domain != "style" and held == "captions":
        texts = [caption(s, o, seed_words=w.recipe.seed_images_words) for o in w.objects if o != name for s in w.styles]
    elif domain != "style":
        texts = [o for o in w.objects if o != name]
    else:
        texts = [text for other in w.styles if other != name for text in style_texts(w, other)]
    return texts + ([""] if e.retain_empty else [])


def check_requests(w: World) -> None:
    """Before any stage: every request names a style or object of the build, and the ESD texts of each can
    be made (the anchor style is the build's); a one-line UsageError naming the recipe file otherwise."""
    for target in w.recipe.targets:
        domain, _, name = target.partition(":")
        names = w.styles if domain == "style" else w.objects
        if name not in names:
            kind = "a style" if domain == "style" else "an object"
            raise UsageError(f"{w.recipe.source}: targets: {target!r} is not {kind} of the build "
                             f"'{w.recipe.build}' (allowed: {', '.join(names)})")
        erased_texts(w, target)


def stage_unlearn(w: World) -> dict[str, Any]:
    """ESD on every request (styles: the recipe's `style_method`; objects: ESD-u), the requests dealt to the
    ranks in turn; once all are done rank 0 reads each one's record back (a finished request returns it
    unchanged)."""
    e = w.recipe.esd

    def lr(target: str) -> float:
        return e.object_lr if target.startswith("object:") and e.object_lr is not None else e.lr

    def eta(target: str) -> float:
        style = target.startswith("style:") and e.style_negative_guidance is not None
        return e.style_negative_guidance if style else e.negative_guidance

    def run(target: str) -> Any:
        method = e.style_method if target.startswith("style:") else "auto"
        config = ESDConfig(method=method, iterations=e.iterations, lr=lr(target), negative_guidance=eta(target),
                           start_guidance=e.start_guidance, sample_steps=e.sample_steps)
        texts, anchors = erased_texts(w, target)
        kept = retained_texts(w, target)   # a request of a domain that holds nothing is the paper's ESD
        return erase(w.path("model"), target, w.unlearned(target), config, prompt=texts, anchor=anchors,
                     retain=kept, retain_weight=e.retain_weight,
                     retain_latents=e.retain_latents if kept else "erased", device=w.device, progress=w.progress)

    for target in w.session.deal(w.recipe.targets):
        run(target)
    w.session.barrier()
    if not w.main:
        return {}
    info = {}
    for target in w.recipe.targets:
        r = run(target)
        info[target] = {"method": r.method, "prompt": r.prompt, "lr": lr(target), "negative_guidance": eta(target),
                        "seconds": round(r.seconds, 1),
                        "peak_memory_bytes": r.peak_memory_bytes, "changed_parameters": r.changed_parameters,
                        "changed_bytes": r.changed_bytes, "final_loss": r.final_loss}
    return info


def stage_answers(w: World) -> dict[str, Any]:
    """Each unlearned model's answer set; the original's linked under every request; the floor sets."""
    for target in w.recipe.targets:
        w.generate(w.unlearned(target), w.path("runs", METHOD, request_dir(target)))
        link = w.path("runs", ORIGINAL, request_dir(target))
        link.parent.mkdir(parents=True, exist_ok=True)
        if w.main and not link.is_symlink():
            link.symlink_to(os.path.relpath(w.path("answers", ORIGINAL), link.parent), target_is_directory=True)
        w.generate(w.path("model"), w.path("answers", "floor", request_dir(target)),
                   seeds=w.recipe.sampling.floor_seeds, **_concept_cells(w, target))
    return {}


def _concept_cells(w: World, target: str) -> dict[str, list[str]]:
    """The styles and objects whose prompts name the forgotten concept."""
    domain, _, name = target.partition(":")
    return {"styles": [name], "objects": w.objects} if domain == "style" else {"styles": w.styles, "objects": [name]}


def stage_attacks(w: World) -> dict[str, Any]:
    """The concealment probe and adversarial prompts on the first request's ESD model."""
    target = w.recipe.targets[0]
    req = w.path("runs", METHOD, request_dir(target))
    a = w.recipe.attacks
    other = {"objects": w.objects} if target.startswith("style:") else {"styles": w.styles}  # the request's prompts
    conceal = run_conceal(w.path("model"), w.unlearned(target), target, w.judges(), req / "conceal",
                          psi=a.conceal_psi, probe_seeds=a.probe_seeds, sampling=w.sampling(), protocol=w.protocol,
                          progress=w.progress, session=w.session, **other)
    prompts = run_prompt_attack(w.unlearned(target), target, w.path("data"), w.judges(), req / "prompts",
                                config=AttackConfig(steps=a.prompt_steps), sampling=w.sampling(), protocol=w.protocol,
                                progress=w.progress, session=w.session, **other)
    return {"target": target, "ua_plain": conceal.ua_plain, "ua_worst": conceal.ua_worst,
            "psi_worst": conceal.psi_worst, "crs": conceal.crs, "ccs": conceal.ccs, "asr": prompts.asr,
            "asr_plain": prompts.asr_plain}


def stage_suite(w: World) -> dict[str, Any]:
    """The Table-2-shaped suite (the original as a row) and, per request, FD on the forgotten concept's prompts."""
    judges = w.judges()
    suite = score_suite(w.path("runs"), judges, protocol=w.protocol, reference=w.path("data"),
                        reference_indices=w.test_indices, out=w.path("suite"), progress=w.progress,
                        session=w.session)
    if not w.main:
        return {}
    fds = {t: concept_fd(w, t, judges) for t in w.recipe.targets}
    write_json(w.path("suite", "concept_fd.json"), fds)
    return {"rows": suite.rows, "concept_fd": fds}


def concept_fd(w: World, target: str, judges: Sequence[Any]) -> dict[str, Any]:
    """FD (the request domain's judge features) on the forgotten concept's prompts: original vs unlearned,
    and original vs the original's second seed set (the noise floor)."""
    domain, _, name = target.partition(":")
    judge = judge_for(judges, domain)
    spec = (domain, name)
    cells = _concept_cells(w, target)

    def feats(folder: Path) -> np.ndarray:
        items = [a for a in read_answers(folder, w.styles, w.objects) if matches(spec, a.style, a.object)
                 and a.style in cells["styles"] and a.object in cells["objects"]]
        return run_judges([judge], items, features_of=judge, resize=w.protocol.judge_resize)[1]

    orig = feats(w.path("answers", ORIGINAL))
    unl = feats(w.path("runs", METHOD, request_dir(target)))
    floor = feats(w.path("answers", "floor", request_dir(target)))
    return {"images": len(orig), "fd_unlearned": frechet_distance(orig, unl), "fd_floor": frechet_distance(orig, floor),
            "features": f"{type(judge).__name__} penultimate layer ({orig.shape[1]}-d)"}


def stage_retrained(w: World, target: str) -> dict[str, Any]:
    """The gold standard for one request: the world's model recipe trained on the build without `target`,
    its answer set, and the original and ESD models compared with it (scores side by side, FD/KID to its
    answers, the denoising-loss Jeffreys proxy)."""
    model = w.path(RETRAINED, request_dir(target))
    r = train_model(load_model_recipe(w.recipe.model), w.path("data"), model, exclude=target, device=w.device,
                    progress=w.progress, judges=w.judges(), judge_every=w.recipe.judge_every)
    answers = w.generate(model, w.path("answers", RETRAINED, request_dir(target)))
    if not w.main:
        return {}
    report = compare_retrained(answers, [w.path("answers", ORIGINAL), w.path("runs", METHOD, request_dir(target))],
                               target, w.judges(), protocol=w.protocol, device=w.device,
                               out=w.path(GOLD, request_dir(target)), progress=w.progress)
    return {"seconds": r["seconds"], "curve": r.get("curve", []),
            "rows": [{"label": row["label"], "role": row["role"], "scores": row["scores"],
                      "fd_forgotten": row["forgotten"]["fd"], "j_forgotten": row["forgotten"]["loss"]["j"],
                      "j_rest": row["rest"]["loss"]["j"]} for row in report.rows]}
