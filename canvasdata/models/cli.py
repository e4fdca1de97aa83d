"""`canvasdata model train`: train a text-to-image model on a build. Parse, call the library, print. The
library (diffusers, transformers) is imported in the handler through `extras.load_extra`, so the bare
command line starts without the diffusers extra."""

from __future__ import annotations

import argparse

from canvasdata.cliargs import add_device_arg, add_partial_arg, positive_int
from canvasdata.devices import Rank
from canvasdata.extras import load_extra
from canvasdata.judges import load_judge
from canvasdata.models.recipe import load_model_recipe


def _train(a: argparse.Namespace) -> int:
    """`model train`: train or resume, print one line."""
    recipe = load_model_recipe(a.recipe)  # a bad recipe fails before anything heavy is imported
    train = load_extra("canvasdata.models.train", "diffusers")
    judges = [load_judge(j, a.device) for j in a.judges]
    r = train.train_model(recipe, a.data, a.out, init=a.init, exclude=a.exclude, split=a.split, device=a.device,
                          max_steps=a.max_steps, overwrite=a.overwrite, allow_partial=a.allow_partial,
                          progress=not a.quiet, judges=judges, judge_every=a.judge_every)
    if not Rank.from_env().main:   # under torchrun: rank 0 alone judges and prints
        return 0
    if "stopped" in r:
        print(f"stopped at {r['phase']} step {r['stopped']} (--max-steps); rerun the same command to go on")
        return 0
    if judges:
        j = load_extra("canvasdata.models.judging", "diffusers").judge_model(a.out, judges, device=a.device,
                                                                             progress=not a.quiet)
        print(f"judged {j['images']} generations: style {j['style'] * 100:.1f} %, object {j['object'] * 100:.1f} %")
    secs = r["seconds"]
    print(f"trained {recipe.name} on {r['identity']['data_recipe']} ({r['images']} images): autoencoder "
          f"{r['steps']['vae']} steps {secs['vae']:.0f} s, denoiser {r['steps']['unet']} steps {secs['unet']:.0f} s "
          f"-> {a.out} (StableDiffusionPipeline; samples in {a.out}/samples)")
    return 0


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a text-to-image model on a build; writes a StableDiffusionPipeline "
                       "folder (resumable: rerun the same command)")
    p.add_argument("recipe", help="model recipe: a shipped name (tiny, mini) or a TOML file")
    p.add_argument("--data", required=True, help="a finished grid build (images and prompts)")
    p.add_argument("--out", required=True, help="the pipeline folder to write (new, or this command's own to resume)")
    p.add_argument("--init", help="fine-tune this StableDiffusionPipeline folder or Hub id's UNet instead of "
                   "training from scratch (the published benchmark's path: SD 1.5 on the set, on a GPU)")
    p.add_argument("--exclude", help="leave out style:NAME, object:NAME or style:NAME+object:NAME (a model that "
                   "never saw it: the retrained reference)")
    p.add_argument("--split", default="train", help="the build's split to train on")
    p.add_argument("--judges", nargs="*", default=[], help="judge folders: every --judge-every denoiser steps "
                   "generate each trained (style, object) cell once and judge it (the learning curve), and after "
                   "training generate every cell twice and record in the card how often the judges recognise the "
                   "prompted style and object")
    p.add_argument("--judge-every", type=positive_int, default=1000,
                   help="denoiser steps between two judged probes of the learning curve (with --judges)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps of this call (checkpointed)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace another run's model in --out (removes only this command's files)")
    add_device_arg(p)
    add_partial_arg(p)
    p.set_defaults(func=_train)


def add_model_commands(sub: argparse._SubParsersAction) -> None:
    """`canvasdata model train`."""
    m = sub.add_parser("model", help="text-to-image models trained on a build (diffusers pipelines)")
    s = m.add_subparsers(dest="model_command", required=True)
    _train_parser(s)
