"""`canvasdata judge ...` subcommands: parse, call the library, print."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from canvasdata.cliargs import add_device_arg, add_device_args, add_hub_args, add_partial_arg, positive_int
from canvasdata.data import load_split
from canvasdata.formats.common import write_text
from canvasdata.judges.card import judge_card
from canvasdata.judges.evaluate import evaluate_judge, worst
from canvasdata.judges.predict import predict_paths, write_csv
from canvasdata.judges.push import judge_files, push_judge
from canvasdata.judges.recipe import load_judge_recipe, parse_judge_recipe
from canvasdata.judges.train import train_judge
from canvasdata.judges.unlearncanvas import import_unlearncanvas
from canvasdata.judges.weights import load_judge
from canvasdata.taxonomy import BUILTIN_SPACES


def _train(a: argparse.Namespace) -> int:
    """`judge train`: train a judge from a recipe, with command-line overrides."""
    recipe = load_judge_recipe(a.recipe)
    overrides = {k: v for k, v in (("epochs", a.epochs), ("lr", a.lr), ("batch_size", a.batch_size),
                                   ("workers", a.workers), ("concept", a.concept)) if v is not None}
    if a.concept is not None:
        overrides["task"] = "binary"
    recipe = parse_judge_recipe({**recipe.to_dict(), **overrides, "freeze": list(recipe.freeze),
                                 "mean": list(recipe.mean), "std": list(recipe.std), "model_kwargs": recipe.kwargs},
                                f"{recipe.source} (with command-line overrides)") if overrides else recipe
    hist = train_judge(recipe, a.data, a.out, device=a.device, max_steps=a.max_steps, overwrite=a.overwrite,
                       allow_partial=a.allow_partial, progress=not a.quiet)
    acc = hist.get("test_accuracy") or {}
    resumed = f"; resumed at step {hist['resumed_at'][-1]}" if hist.get("resumed_at") else ""
    print(f"trained {recipe.name} -> {a.out} in {hist['seconds']:.0f} s "
          f"({hist['train_images_per_s']:.1f} images/s{resumed}); held-out top-1: "
          + (", ".join(f"{t} {v * 100:.2f}%" for t, v in acc.items()) or "n/a"))
    return 0


def _eval(a: argparse.Namespace) -> int:
    """`judge eval`: accuracy tables and figures on a split; the judge's card is updated."""
    judge = load_judge(a.judge, a.device)
    data = None
    if a.concept is None and set(judge.tasks) <= {"style", "object"}:
        try:  # both factors, to group each task's accuracy by the other (grid builds have both)
            data = load_split(a.data, a.split, ["style", "object"], allow_partial=a.allow_partial)
        except KeyError:
            data = None
    if data is None:
        data = load_split(a.data, a.split, judge.tasks, a.concept, allow_partial=a.allow_partial)
    root = Path(a.judge)
    out = Path(a.out or root / "eval")
    about = {"source": str(a.data), "split": a.split, **({"concept": a.concept} if a.concept else {})}
    report = evaluate_judge(judge, data, out, batch_size=a.batch_size, workers=a.workers, about=about,
                            progress=not a.quiet)
    for t, r in report["tasks"].items():
        print(f"{t}: top-1 {r['top1'] * 100:.2f}%  ECE {r['ece']:.3f}  "
              + "  ".join(f"{k} {v * 100:.1f}%" for k, v in r["degraded_top1"].items()))
        for c in r["top_confusions"][:5]:
            print(f"   {c['true']} -> {c['predicted']}: {c['count']}")
        for key, group in (("by_style", "style"), ("by_object", "object")):
            if key in r:
                print(f"   worst {t} top-1 by {group}: " + ", ".join(
                    f"{name} {g['accuracy'] * 100:.1f}% (n={g['n']})" for name, g in worst(r[key], 5)))
    figures = [f for r in report["tasks"].values() for f in r["figures"]]
    print(f"wrote {out}/eval.json and figures: {', '.join(figures)}")
    if root.is_dir():
        try:
            eval_dir = out.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            eval_dir = None
        history = json.loads((root / "history.json").read_text()) if (root / "history.json").exists() else None
        write_text(root / "README.md", judge_card(judge.info, history, report, eval_dir))
        print(f"updated {root / 'README.md'} with the evaluation"
              + ("" if eval_dir is not None else f" (figures not linked: {out} is outside the judge directory)"))
    return 0


def _predict(a: argparse.Namespace) -> int:
    """`judge predict`: predictions for image files, as CSV."""
    judge = load_judge(a.judge, a.device)
    rows = predict_paths(judge, a.images, a.batch_size)
    write_csv(rows, a.out)
    print(f"wrote {len(rows)} predictions to {a.out}")
    return 0


def _import(a: argparse.Namespace) -> int:
    """`judge import`: an original UnlearnCanvas checkpoint as a judge directory."""
    kwargs = json.loads(a.model_kwargs) if a.model_kwargs else None
    out = import_unlearncanvas(a.checkpoint, a.space, a.out, arch=a.arch, image_size=a.image_size, model_kwargs=kwargs)
    print(f"imported {a.checkpoint} ({a.space}) -> {out}")
    return 0


def _push(a: argparse.Namespace) -> int:
    """`judge push`: upload a judge directory's model files."""
    files = judge_files(a.dir, a.include_eval, a.include_checkpoint)
    url = push_judge(a.dir, a.repo_id, a.private, a.token, include_eval=a.include_eval,
                     include_checkpoint=a.include_checkpoint)
    print(f"pushed {a.dir} -> {url} ({len(files)} files: {', '.join(files)})")
    return 0


def add_judge_commands(sub: argparse._SubParsersAction) -> None:
    j = sub.add_parser("judge", help="train, evaluate, run, import and push judge classifiers")
    js = j.add_subparsers(dest="judge_command", required=True)

    t = js.add_parser("train", help="train a judge from a recipe in classifiers/")
    t.add_argument("recipe", help="recipe file or shipped name (effnet-lite0-cpu, effnet-lite0-tiny, vit-mini, "
                   "vit-base, vit-large-uc)")
    t.add_argument("--data", required=True, help="a canvasdata build directory or a datasets dataset / Hub id")
    t.add_argument("--out", required=True, help="judge directory to write: new or empty, or this training run's "
                   "own (same recipe and data: resumed exactly from its checkpoint)")
    t.add_argument("--overwrite", action="store_true", help="replace the judge in --out trained with another recipe "
                   "or data: deletes only the judge's own files, refused when --out holds others (default: off)")
    add_partial_arg(t)
    add_device_arg(t)
    t.add_argument("--max-steps", type=positive_int,
                   help="stop after this many steps, for smoke tests (default: the recipe's epochs)")
    t.add_argument("--epochs", type=int, help="override the recipe's epochs (default: the recipe's)")
    t.add_argument("--lr", type=float, help="override the recipe's peak learning rate (default: the recipe's)")
    t.add_argument("--batch-size", type=int, help="override the recipe's batch size (default: the recipe's)")
    t.add_argument("--workers", type=int,
                   help="override the recipe's data-loading worker processes (default: the recipe's)")
    t.add_argument("--concept", help="train a binary detector of this concept of a concept set, task = binary "
                   "(default: the recipe's tasks)")
    t.set_defaults(func=_train)

    _use_parsers(js)
    _share_parsers(js)


def _use_parsers(js: argparse._SubParsersAction) -> None:
    """judge eval and judge predict."""
    e = js.add_parser("eval", help="accuracy, confusion matrices, ECE and robustness on a split")
    e.add_argument("judge", help="judge directory or Hub id")
    e.add_argument("--data", required=True, help="a canvasdata build directory")
    e.add_argument("--split", default="test", help="the split to evaluate on")
    e.add_argument("--concept", help="concept-set config, for binary judges (default: none)")
    e.add_argument("--out", help="report directory (default: JUDGE/eval)")
    add_partial_arg(e)
    add_device_args(e)
    e.set_defaults(func=_eval)

    p = js.add_parser("predict", help="batched predictions for image files, as CSV")
    p.add_argument("judge", help="judge directory or Hub id")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", required=True, help="CSV file to write")
    add_device_args(p, workers=False)
    p.set_defaults(func=_predict)


def _share_parsers(js: argparse._SubParsersAction) -> None:
    """judge import and judge push."""
    i = js.add_parser("import", help="convert an original UnlearnCanvas checkpoint (style50.pth, ...)")
    i.add_argument("checkpoint", help="the original checkpoint file")
    i.add_argument("--space", required=True, choices=list(BUILTIN_SPACES), help="its label space")
    i.add_argument("--out", required=True, help="judge directory to write")
    i.add_argument("--arch", default="vit_large_patch16_224", help="timm architecture of the checkpoint")
    i.add_argument("--image-size", type=int, default=224, help="input size in px")
    i.add_argument("--model-kwargs", help="JSON of extra timm.create_model arguments of the architecture (e.g. "
                   "'{\"img_size\": 384}'), stored in the judge's config")
    i.set_defaults(func=_import)

    h = js.add_parser("push", help="upload a judge directory as a Hub model repo (config.json, weights, card, "
                      "the card's figures)")
    add_hub_args(h)
    h.add_argument("--include-eval", action="store_true", help="also upload eval/ (eval.json, confusion PNGs)")
    h.add_argument("--include-checkpoint", action="store_true",
                   help="also upload checkpoint/ and history.json (training state, for resuming)")
    h.set_defaults(func=_push)
