"""The `canvasdata` command: parse arguments, call the library, print. No logic lives here."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from canvasdata import __version__
from canvasdata.attack.cli import add_attack_commands
from canvasdata.cliargs import (
    CommandParser,
    add_device_arg,
    add_hub_args,
    add_partial_arg,
    positive_int,
    workers_or_auto,
)
from canvasdata.content.preview import content_sheet
from canvasdata.dataset import build
from canvasdata.devices import leave_ranks
from canvasdata.errors import CanvasdataError, UsageError
from canvasdata.evaluate.cli import add_evaluate_commands
from canvasdata.extras import library_bars
from canvasdata.formats import FORMATS
from canvasdata.formats.common import save_image
from canvasdata.formats.folder import LAYOUTS, METADATA, export_folder
from canvasdata.hub import push_folder
from canvasdata.judges.cli import add_judge_commands
from canvasdata.manifest import checked_shards, info, open_build
from canvasdata.models.cli import add_model_commands
from canvasdata.recipes import Recipe, load_recipe
from canvasdata.shipped import builtin_dir
from canvasdata.styles.preview import style_sheet
from canvasdata.taxonomy import label_space
from canvasdata.unlearn.cli import add_unlearn_commands
from canvasdata.verify import verify
from canvasdata.world.cli import add_world_commands

Handler = Callable[[argparse.Namespace], int]
log = logging.getLogger("canvasdata")
DEFAULT_SPACES = {"styles": "uc60", "objects": "objects"}  # `list styles|objects` without --space


def _load(args: argparse.Namespace) -> Recipe:
    """The recipe named on the command line, with its shard format overridden by --format."""
    recipe = load_recipe(args.recipe)
    if getattr(args, "format", None):
        recipe = recipe.replace(output=dataclasses.replace(recipe.output, format=args.format))
    return recipe


def cmd_build(args: argparse.Namespace) -> int:
    """Build (or resume) a dataset."""
    recipe = _load(args)
    out = Path(args.out or recipe.name)
    manifest = build(recipe, out, device=args.device, workers=args.workers, overwrite=args.overwrite,
                     progress=not args.quiet)
    if manifest is not None:
        print(f"built {manifest.num_rows:,} images in {len(manifest.shards)} shards -> {out}")
        log.info("load it with: datasets.load_dataset(%r)", str(out))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute checksums and counts; exit 1 when anything is damaged."""
    report = verify(args.dir, decode=args.decode)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_info(args: argparse.Namespace) -> int:
    """Summarise a build."""
    print(info(args.dir))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a build to a folder layout (the unlearncanvas layout with its metadata.jsonl captions)."""
    root = Path(args.dir)
    manifest = open_build(root, allow_partial=args.allow_partial)
    if manifest is None:
        raise UsageError(f"{root}: export needs a finished build (its manifest names the classes); rerun the build")
    listed = manifest.to_dict()
    listed["shards"] = [dataclasses.asdict(s) for s in
                        checked_shards(root, manifest, manifest.shards, allow_partial=args.allow_partial)]
    n = export_folder(root, Path(args.out), listed, args.layout, progress=not args.quiet)
    captions = f", captions in {Path(args.out) / METADATA}" if args.layout == "unlearncanvas" else ""
    print(f"exported {n:,} images to {args.out} ({args.layout} layout{captions})")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Verify a build, then upload it as a Hub dataset repo."""
    report = verify(args.dir)
    if not report.ok:
        print(report.summary(), file=sys.stderr)
        if report.unexpected:
            print(f"refusing to push: {len(report.unexpected)} file(s) in {args.dir} were not written by the build "
                  "(listed above); move them out", file=sys.stderr)
        return 1
    url = push_folder(args.dir, args.repo_id, private=args.private, token=args.token)
    print(f"pushed {args.dir} -> {url}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List a label space's classes, or the shipped recipes."""
    if args.what == "recipes":
        for kind in ("builders", "classifiers", "models", "worlds"):
            names = sorted(p.stem for p in builtin_dir(kind).glob("*.toml"))
            print(f"{kind}: {', '.join(names)}")
        return 0
    space = label_space(args.space or DEFAULT_SPACES[args.what])
    for i, name in enumerate(space.names):
        print(f"{i:3d}  {name}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    """Contact sheets of the content engine or the styles."""
    out = Path(args.out)
    if args.what == "content":
        sheet = content_sheet(objects=args.objects or None, seeds=range(args.seeds), size=args.size)
    else:
        sheet = style_sheet(styles=args.styles or None, objects=args.objects or None, size=args.size)
    save_image(sheet, out)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
    return 0


def _build_parsers(sub: argparse._SubParsersAction) -> None:
    """build, verify and info."""
    b = sub.add_parser("build", help="build (or resume) a dataset from a recipe")
    b.add_argument("recipe", nargs="?", default="mini", help="recipe file or shipped name (default: mini)")
    b.add_argument("--out", help="output directory (default: ./RECIPE_NAME)")
    b.add_argument("--format", choices=list(FORMATS), help="override the recipe's shard format (default: the recipe's)")
    add_device_arg(b)
    b.add_argument("--workers", type=workers_or_auto, default="auto", metavar="N|auto",
                   help="parallel worker processes; auto: one per core on the CPU (each renders with one torch "
                        "thread, so the bytes never depend on the machine)")
    b.add_argument("--overwrite", action="store_true",
                   help="replace a build of another recipe in --out (default: refuse)")
    b.set_defaults(func=cmd_build)

    v = sub.add_parser("verify", help="check a build against its manifest: every file's checksum, the counts, "
                       "the recipe, and files the build did not write")
    v.add_argument("dir", help="the build directory")
    v.add_argument("--decode", action="store_true", help="also decode every image (default: checksums and counts)")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", help="summarise a build and print the command that regenerates it")
    i.add_argument("dir", help="the build directory")
    i.set_defaults(func=cmd_info)


def _share_parsers(sub: argparse._SubParsersAction) -> None:
    """push, list and preview."""
    h = sub.add_parser("push", help="upload a verified build to the Hugging Face Hub as a dataset repo")
    add_hub_args(h)
    h.set_defaults(func=cmd_push)

    ls = sub.add_parser("list", help="list label spaces' classes, or the shipped recipes")
    ls.add_argument("what", choices=[*DEFAULT_SPACES, "recipes"], help="what to list")
    ls.add_argument("--space", help="label space (default: uc60 for styles, objects for objects)")
    ls.set_defaults(func=cmd_list)

    pv = sub.add_parser("preview", help="contact sheets of the content engine or the styles")
    pv.add_argument("what", choices=["content", "styles"], help="the content engine's scenes or the styles")
    pv.add_argument("--out", required=True, help="PNG file to write")
    pv.add_argument("--objects", nargs="*", help="objects to show (default: all)")
    pv.add_argument("--styles", nargs="*", help="styles to show (default: all)")
    pv.add_argument("--seeds", type=positive_int, default=8, help="content: seeds per object")
    pv.add_argument("--size", type=positive_int, default=128, help="tile size in px")
    pv.set_defaults(func=cmd_preview)


def make_parser() -> argparse.ArgumentParser:
    """The `canvasdata` argument parser with every subcommand."""
    p = CommandParser(prog="canvasdata", description="Build, shard, load and judge stylized style x object "
                                "image datasets for benchmarking machine unlearning in diffusion models.")
    p.add_argument("--version", action="version", version=f"canvasdata {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    _build_parsers(sub)

    e = sub.add_parser("export", help="export a build to a folder layout")
    e.add_argument("dir", help="the build directory")
    e.add_argument("--layout", default="unlearncanvas", choices=list(LAYOUTS),
                   help="unlearncanvas ({style}/{object}/{k}.jpg plus metadata.jsonl captions for diffusers' "
                        "--train_data_dir) for grids, imagefolder for concept sets")
    e.add_argument("--out", required=True, help="folder to write")
    add_partial_arg(e)
    e.set_defaults(func=cmd_export)

    _share_parsers(sub)
    add_judge_commands(sub)
    add_evaluate_commands(sub)
    add_attack_commands(sub)
    add_model_commands(sub)
    add_unlearn_commands(sub)
    add_world_commands(sub)
    return p


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """canvasdata's log lines go to stderr as plain messages: debug detail with `verbose`, warnings
    and errors only with `quiet`, else progress and information."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status: 0 done, 1 a check failed, 2 bad input, 130 interrupted."""
    args = make_parser().parse_args(argv)
    args.verbose, args.quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    setup_logging(args.verbose, args.quiet)
    finished = False
    try:
        with library_bars(not args.quiet):
            rc = args.func(args)
        finished = True
        return rc
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume (finished work is kept)", file=sys.stderr)
        return 130
    except CanvasdataError as e:  # bad input: one line and exit 2; anything else is a bug
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    finally:
        leave_ranks(finished)


if __name__ == "__main__":
    sys.exit(main())
