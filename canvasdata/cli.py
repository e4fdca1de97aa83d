"""The `canvasdata` command: parse arguments, call the library, print. No logic lives here."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable, Sequence

from canvasdata import __version__
from canvasdata.cliargs import add_hub_args

Handler = Callable[[argparse.Namespace], int]


def _load(args: argparse.Namespace):
    from canvasdata.recipes import load_recipe

    recipe = load_recipe(args.recipe)
    if getattr(args, "format", None):
        recipe = recipe.replace(output=dataclasses.replace(recipe.output, format=args.format))
    return recipe


def cmd_build(args: argparse.Namespace) -> int:
    from canvasdata.dataset import build

    recipe = _load(args)
    out = Path(args.out or recipe.name)
    manifest = build(recipe, out, device=args.device, workers=args.workers, overwrite=args.overwrite,
                     progress=not args.quiet)
    if manifest is not None:
        print(f"built {manifest['num_rows']:,} images in {len(manifest['shards'])} shards -> {out}")
        print(f"load it with: datasets.load_dataset({str(out)!r})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from canvasdata.manifest import verify

    report = verify(args.dir, decode=args.decode)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_info(args: argparse.Namespace) -> int:
    from canvasdata.manifest import info

    print(info(args.dir))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from canvasdata.formats.folder import export_folder
    from canvasdata.manifest import read_manifest

    root = Path(args.dir)
    n = export_folder(root, Path(args.out), read_manifest(root), args.layout, progress=not args.quiet)
    print(f"exported {n:,} images to {args.out} ({args.layout} layout)")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from canvasdata.hub import push_folder
    from canvasdata.manifest import verify

    report = verify(args.dir)
    if not report.ok:
        print(report.summary(), file=sys.stderr)
        return 1
    url = push_folder(args.dir, args.repo_id, private=args.private, token=args.token)
    print(f"pushed {args.dir} -> {url}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from canvasdata.recipes import builtin_dir
    from canvasdata.taxonomy import label_space

    if args.what == "recipes":
        for kind in ("builders", "classifiers"):
            names = sorted(p.stem for p in builtin_dir(kind).glob("*.toml"))
            print(f"{kind}: {', '.join(names)}")
        return 0
    if args.what == "styles" and args.space in (None, "uc60", "uc50"):
        space = label_space(args.space or "uc60")
    else:
        space = label_space(args.space or "objects")
    for i, name in enumerate(space.names):
        print(f"{i:3d}  {name}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if args.what == "content":
        from canvasdata.content.preview import content_sheet

        sheet = content_sheet(objects=args.objects or None, seeds=range(args.seeds), size=args.size)
    else:
        from canvasdata.styles.preview import style_sheet

        sheet = style_sheet(styles=args.styles or None, objects=args.objects or None, size=args.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
    return 0


def _judge_parser(sub: argparse._SubParsersAction) -> None:
    from canvasdata.judges.cli import add_judge_commands

    add_judge_commands(sub)


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    from canvasdata.evaluate.cli import add_evaluate_commands

    add_evaluate_commands(sub)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="canvasdata", description="Build, shard, load and judge stylized style x object "
                                "image datasets for benchmarking machine unlearning in diffusion models.")
    p.add_argument("--version", action="version", version=f"canvasdata {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build (or resume) a dataset from a recipe")
    b.add_argument("recipe", nargs="?", default="mini", help="recipe file or shipped name (default: mini)")
    b.add_argument("--out", help="output directory (default: ./RECIPE_NAME)")
    b.add_argument("--format", choices=["parquet", "webdataset"], help="override the recipe's shard format")
    b.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    b.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
    b.add_argument("--overwrite", action="store_true", help="replace a build of another recipe in --out")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_build)

    v = sub.add_parser("verify", help="recompute checksums and counts of a build")
    v.add_argument("dir")
    v.add_argument("--decode", action="store_true", help="also decode every image")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", help="summarise a build")
    i.add_argument("dir")
    i.set_defaults(func=cmd_info)

    e = sub.add_parser("export", help="export a build to a folder layout")
    e.add_argument("dir")
    e.add_argument("--layout", default="unlearncanvas", choices=["unlearncanvas", "imagefolder"],
                   help="unlearncanvas ({style}/{object}/{k}.jpg) for grids, imagefolder for concept sets")
    e.add_argument("--out", required=True)
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_export)

    h = sub.add_parser("push", help="upload a verified build to the Hugging Face Hub as a dataset repo")
    add_hub_args(h)
    h.set_defaults(func=cmd_push)

    ls = sub.add_parser("list", help="list label spaces' classes, or the shipped recipes")
    ls.add_argument("what", choices=["styles", "objects", "recipes"])
    ls.add_argument("--space", help="label space (styles: uc60 or uc50; objects: objects)")
    ls.set_defaults(func=cmd_list)

    pv = sub.add_parser("preview", help="contact sheets of the content engine or the styles")
    pv.add_argument("what", choices=["content", "styles"])
    pv.add_argument("--out", required=True, help="PNG file to write")
    pv.add_argument("--objects", nargs="*", help="objects to show (default: all)")
    pv.add_argument("--styles", nargs="*", help="styles to show (default: all)")
    pv.add_argument("--seeds", type=int, default=8, help="content: seeds per object (default: 8)")
    pv.add_argument("--size", type=int, default=128, help="tile size in px (default: 128)")
    pv.set_defaults(func=cmd_preview)

    _judge_parser(sub)
    _evaluate_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted: finished shards are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
