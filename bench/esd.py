"""ESD's settings on the tiny world's model, by measurement: for each (learning rate, iterations) and each
request, erase with `canvasdata unlearn esd`, generate every cell with a few seeds, and score UA / IRA /
CRA with the world's judges (the world's protocol). The world recipe's `[esd]` is chosen from this table.

    python bench/esd.py --world DIR [--targets style:Van_Gogh object:Jellyfish] [--seeds 188 288]
    python bench/esd.py --world DIR --targets style:Pop_Art --seeds 188 --steps 50 \
        --grid 1.5e-3:200 2e-3:200 "2e-3:200:Pop Art"     # the table in BENCHMARKS.md (the last erases 'Pop Art')
    python bench/esd.py --world DIR --targets style:Pop_Art --method xattn-strict --grid 2e-3:200

Finished settings are read back from their folders under --out (a rerun rewrites the table without retraining).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import replace
from pathlib import Path

from _report import table, write_section

from canvasdata.evaluate.generate import generate_answers
from canvasdata.evaluate.score import score_answers
from canvasdata.judges import load_judge
from canvasdata.sources.diffusers import PipelineOptions
from canvasdata.taxonomy import prompt as caption
from canvasdata.unlearn import METHODS, RETAIN_LATENTS, ESDConfig
from canvasdata.unlearn.esd import erase
from canvasdata.world.recipe import OBJECT_RETAIN, load_world_recipe
from canvasdata.world.stages import World, erased_texts, retained_texts

GRID = ((1e-5, 200), (1e-4, 200), (3e-4, 200))


def _setting(text: str) -> tuple[float, int, str | None]:
    """'LR:ITERATIONS[:TEXT]' -> (lr, iterations, the erased text or None for ESD's default)."""
    lr, iters, *prompt = text.split(":", 2)
    return float(lr), int(iters), (prompt[0] if prompt else None)


def _texts(prompt: str | None, target: str, w: World, anchor: str | None = None
           ) -> tuple[str | list[str] | None, list[str] | None]:
    """The erased text(s) of a setting and their anchors: 'captions' is every training caption that names the
    concept (the world's words for Seed_Images), 'A|B' several texts taken in turn, anything else one text.
    `anchor` (a style of the build, style requests only) anchors each text on the same text in that style,
    as the world's `[esd] style_anchor` does."""
    domain, name = target.split(":", 1)
    if domain == "style" and prompt in (None, "captions"):   # the world's own rule (stages.erased_texts)
        texts = "captions" if prompt == "captions" else "concept"
        return erased_texts(_with_esd(w, style_texts=texts, style_anchor=anchor or ""), target)
    if anchor is not None and domain == "style":
        raise SystemExit("--anchor: with the style's default text or 'captions' only")
    if prompt == "captions":
        return [caption(st, name, seed_words=w.recipe.seed_images_words) for st in w.styles], None
    return (prompt.split("|") if prompt and "|" in prompt else prompt), None


def _with_esd(w: World, **changes: object) -> World:
    """`w` with its recipe's [esd] changed (the same folder)."""
    recipe = replace(w.recipe, esd=replace(w.recipe.esd, **changes))
    return World(recipe, w.root, "cpu", False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", required=True, help="a world folder whose model stage is done")
    p.add_argument("--size", default="tiny", help="its world recipe")
    p.add_argument("--targets", nargs="*", default=["style:Van_Gogh", "object:Jellyfish"])
    p.add_argument("--seeds", nargs="*", type=int, default=[188, 288])
    p.add_argument("--keep", action="store_true", help="keep the BENCHMARKS.md section's earlier runs below "
                   "this one (default: this run replaces the section)")
    p.add_argument("--out", default="/tmp/canvasdata-esd-bench")
    p.add_argument("--grid", nargs="*", default=[f"{lr:g}:{it}" for lr, it in GRID], metavar="LR:ITERATIONS[:TEXT]",
                   help="the ESD settings to measure; TEXT: the concept text erased (default 'NAME style' for a "
                        "style, the object's name; 'captions': every training caption naming it; 'A|B': several)")
    p.add_argument("--steps", type=int, help="DDIM steps of the answers (default: the world recipe's)")
    p.add_argument("--method", choices=METHODS, default="auto", help="ESD's parameter set for every setting")
    p.add_argument("--negative-guidance", type=float, help="ESD's eta for every setting (default: the world recipe's)")
    p.add_argument("--anchor", metavar="STYLE", help="style requests: anchor each erased text on the same text in "
                   "STYLE (a style of the build) instead of ESD's empty prompt (the world's [esd] style_anchor)")
    p.add_argument("--retain", action="store_true", help="hold every other style's texts (a style request) or "
                   "object's name (an object request) while erasing, as the world's [esd] style_retain / "
                   "object_retain = 'others'")
    p.add_argument("--retain-weight", type=float, default=1.0, help="the retain term's weight (with --retain)")
    p.add_argument("--retain-empty", action="store_true", help="with --retain: the empty prompt is a retain text too")
    p.add_argument("--retain-latents", choices=RETAIN_LATENTS, default=RETAIN_LATENTS[0],
                   help="with --retain, where the term is taken: the erased concept's x_t or the retain text's own")
    p.add_argument("--object-retain", choices=[r for r in OBJECT_RETAIN if r != "none"], default="others",
                   help="with --retain, an object request holds every other object's name (others) or every "
                   "training caption of every other object (captions), as the world's [esd] object_retain")
    a = p.parse_args(argv)
    grid = [_setting(g) for g in a.grid]
    if any(prompt for _, _, prompt in grid) and len(a.targets) != 1:
        p.error("--grid: a setting that names the erased text takes one target")
    w = World(load_world_recipe(a.size), Path(a.world).resolve(), "cpu", False)
    judges = [load_judge(w.path("judges"), "cpu")]
    s = w.recipe.sampling
    steps = a.steps or s.steps
    opts = PipelineOptions(dtype=s.dtype, scheduler="DDIMScheduler")
    rows = []
    base = Path(a.out) / "original"
    generate_answers(w.path("model"), base, styles=w.styles, objects=w.objects, seeds=a.seeds, size=w.resolution,
                     steps=steps, guidance=s.guidance, batch_size=s.batch_size, device="cpu", options=opts,
                     protocol=w.protocol, progress=False)
    for target in a.targets:
        r = score_answers(base, target, judges, protocol=w.protocol)
        rows.append((target, "original", "—", "—", round(100 * r.ua, 1), round(100 * r.ira, 1), round(100 * r.cra, 1)))
    for (lr, iters, prompt), target in itertools.product(grid, a.targets):
        eta = a.negative_guidance if a.negative_guidance is not None else w.recipe.esd.negative_guidance
        text = prompt.replace(" ", "_").replace("|", "+") if prompt else ""
        name = f"{target.replace(':', '_')}-lr{lr:g}-it{iters}" + (f"-{text}" if text else "") \
            + ("" if a.method == "auto" else f"-{a.method}") + ("" if eta == 1 else f"-eta{eta:g}") \
            + (f"-anchor_{a.anchor}" if a.anchor else "") + (f"-retain{a.retain_weight:g}" if a.retain else "") \
            + ("-empty" if a.retain and a.retain_empty else "") \
            + ("-captions" if a.retain and a.object_retain == "captions" and target.startswith("object:") else "") \
            + ("-own" if a.retain and a.retain_latents == "own" else "")
        config = ESDConfig(method=a.method, iterations=iters, lr=lr, negative_guidance=eta,
                           start_guidance=w.recipe.esd.start_guidance, sample_steps=w.recipe.esd.sample_steps)
        texts, anchors = _texts(prompt, target, w, a.anchor)
        kept = None
        if a.retain:
            held = _with_esd(w, style_texts="captions" if prompt == "captions" else "concept", style_retain="others",
                             object_retain=a.object_retain, retain_empty=a.retain_empty)
            kept = retained_texts(held, target)
        e = erase(w.path("model"), target, Path(a.out) / "models" / name, config, prompt=texts, anchor=anchors,
                  retain=kept, retain_weight=a.retain_weight, retain_latents=a.retain_latents, device="cpu",
                  progress=False)
        answers = generate_answers(e.out, Path(a.out) / "answers" / name, styles=w.styles, objects=w.objects,
                                   seeds=a.seeds, size=w.resolution, steps=steps, guidance=s.guidance,
                                   batch_size=s.batch_size, device="cpu", options=opts, protocol=w.protocol,
                                   progress=False)
        r = score_answers(answers, target, judges, protocol=w.protocol)
        text = "the captions naming it" if prompt == "captions" else f"'{e.prompt}'"
        anchored = (f", anchored on {a.anchor}" if a.anchor and target.startswith("style:") else "") \
            + (f", retain {a.retain_weight:g}" + (" (with the empty prompt)" if a.retain_empty else "")
               + (" on the other objects' captions" if a.object_retain == "captions" and target.startswith("object:")
                  else "") + (", on their own x_t" if a.retain_latents == "own" else "")
               if a.retain else "")
        rows.append((target, f"lr {lr:g}, {iters} it, {text}{anchored}" + ("" if eta == 1 else f", eta {eta:g}"),
                     e.method,
                     round(e.seconds),
                     round(100 * r.ua, 1), round(100 * r.ira, 1), round(100 * r.cra, 1)))
        print(rows[-1], file=sys.stderr)
    body = "\n\n".join([
        f"ESD on the tiny world's model (`{a.world}`), scored on every cell x seeds {a.seeds} "
        f"({steps} DDIM steps, guidance {s.guidance}, pipelines in {s.dtype}) with the world's judges and protocol. "
        "UA / IRA / CRA in %; the setting names the text ESD erased; time: ESD training alone (recorded in the "
        "unlearned folder's unlearn.json, summed over resumed runs).",
        table(["request", "setting", "set", "ESD s", "UA", "IRA", "CRA"], rows)])
    write_section("esd", body, keep=a.keep)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
