"""`canvasdata world run`: the whole protocol at tiny scale in one command. Parse, call the library,
print. The stages need the `world` extra (diffusers, transformers, accelerate, the CPU judge's weights);
they are imported in the handler through `extras.load_extra`, so the bare command line starts without it."""

from __future__ import annotations

import argparse
from pathlib import Path

from canvasdata.cliargs import add_device_arg, ranks_or_auto
from canvasdata.devices import Rank, resolve_device
from canvasdata.errors import UsageError
from canvasdata.extras import load_extra
from canvasdata.spawn import AUTO, ranks_for, run_ranks, under_torchrun
from canvasdata.world.recipe import load_world_recipe

STAGE_NAMES = ("data", "judges", "model", "original", "unlearn", "answers", "attacks", "suite")


def _run(a: argparse.Namespace) -> int:
    """`world run`: run or resume every stage; print where the report is."""
    recipe = load_world_recipe(a.size)  # a bad recipe fails before anything heavy is imported
    run = load_extra("canvasdata.world.run", "world")
    out = Path(a.out)
    if run.finished(out, recipe, a.retrained):
        print(f"{out} holds a finished world ({recipe.name}): its report is {out / run.REPORT}")
        return 0
    ranks = ranks_for(a.ranks, resolve_device(a.device))
    if under_torchrun():
        if a.ranks != AUTO and ranks != Rank.from_env().world:
            raise UsageError(f"--ranks {ranks} under torchrun's {Rank.from_env().world} ranks: give one or the other")
    elif ranks > 1:
        return run_ranks(ranks, _rank_argv(a))
    state = run.run_world(recipe, out, device=a.device, progress=not a.quiet, until=a.until,
                          retrained=a.retrained, source=a.source)
    if not Rank.from_env().main:   # under torchrun rank 0 alone reports
        return 0
    total = sum(s.get("seconds", 0.0) for s in state["stages"].values())
    if a.until is not None:
        print(f"world {recipe.name}: stages up to {a.until} done in {total / 60:.1f} min -> {out}")
        return 0
    print(f"world {recipe.name} finished in {total / 60:.1f} min (stage times in {out / run.STATE}); "
          f"report: {out / run.REPORT}")
    return 0


def _rank_argv(a: argparse.Namespace) -> list[str]:
    """The same `world run` for each rank that `--ranks` starts."""
    argv = ["world", "run", "--out", str(a.out), "--size", a.size, "--device", a.device]
    argv += ["--until", a.until] if a.until else []
    argv += ["--retrained", *a.retrained] if a.retrained else []
    argv += ["--from", a.source] if a.source else []
    return argv + (["-q"] if a.quiet else []) + (["-v"] if a.verbose else [])


def add_world_commands(sub: argparse._SubParsersAction) -> None:
    """`canvasdata world run`."""
    w = sub.add_parser("world", help="the whole unlearning protocol at tiny scale, on a CPU")
    s = w.add_subparsers(dest="world_command", required=True)
    p = s.add_parser("run", help="build -> judges -> model -> answers -> ESD -> answers -> attacks -> suite -> "
                     "REPORT.md (resumable: rerun the same command)")
    p.add_argument("--out", required=True, help="the world's folder (new, or this command's own to resume)")
    p.add_argument("--size", default="tiny", help="world recipe: tiny (the default, 83-94 min measured on 2 CPU "
                   "cores), mini (toy size, under a minute) or a TOML file")
    p.add_argument("--until", choices=STAGE_NAMES, help="stop after this stage (rerun without it to go on)")
    p.add_argument("--retrained", nargs="+", default=[], metavar="REQUEST",
                   help="the gold standard for these requests (of the world's own): train the world's model recipe "
                   "again without the concept, and compare the original and ESD models with it (one more model "
                   "each: about as long as the model stage)")
    p.add_argument("--from", dest="source", metavar="WORLD",
                   help="take the build, judge and model from this world where the recipe's settings for them "
                   "agree (hard links, each checked against its seal): try other unlearning settings without "
                   "training the model again")
    add_device_arg(p)
    p.add_argument("--ranks", type=ranks_or_auto, default=AUTO,
                   help="processes that share the stages, as under `torchrun --nproc-per-node N` (auto: 2 on a "
                   "CPU with 2 or more cores, one thread each, the measured setting; 1 on a GPU; under torchrun, "
                   "its ranks)")
    p.set_defaults(func=_run)
