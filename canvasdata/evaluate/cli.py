"""`canvasdata evaluate`, `canvasdata generate` and `canvasdata suite`: parse, call the library, print."""

from __future__ import annotations

import argparse
from pathlib import Path


def _judges(paths: list[str], device: str):
    from canvasdata.judges.io import load_judge

    return [load_judge(p, device) for p in paths]


def _evaluate(a: argparse.Namespace) -> int:
    from canvasdata.evaluate.score import score_answers

    out = Path(a.out or Path(a.answers) / "report")
    r = score_answers(a.answers, a.forget, _judges(a.judges, a.device), reference=a.reference,
                      inception=a.inception, include_seed_images=not a.exclude_seed_images,
                      batch_size=a.batch_size, workers=a.workers, out=out)
    print(f"forget {a.forget}: UA {r['ua'] * 100:.2f}  IRA {r['ira'] * 100:.2f}  CRA {r['cra'] * 100:.2f}"
          + (f"  FD {r['frechet_distance']:.2f}  KID {r['kid']:.4f}" if "frechet_distance" in r else "")
          + f"  ({r['num_images']} images) -> {out}/report.md")
    return 0


def _generate(a: argparse.Namespace) -> int:
    from canvasdata.evaluate.generate import generate_answers
    from canvasdata.taxonomy import OBJECTS, label_space

    styles = a.styles or list(label_space(a.space).names)
    out = generate_answers(a.model, a.out, styles=styles, objects=a.objects or list(OBJECTS), seeds=a.seeds,
                           size=a.size, steps=a.steps, guidance=a.guidance, batch_size=a.batch_size, device=a.device,
                           progress=not a.quiet)
    print(f"answer set in {out} (settings in generation.json)")
    return 0


def _suite(a: argparse.Namespace) -> int:
    from canvasdata.evaluate.suite import score_suite, suite_markdown

    rows = score_suite(a.runs, _judges(a.judges, a.device), reference=a.reference,
                       include_seed_images=not a.exclude_seed_images, workers=a.workers, out=a.out or a.runs)
    print(suite_markdown(rows))
    return 0


def _concept(a: argparse.Namespace) -> int:
    from canvasdata.evaluate.concepts import score_concept
    from canvasdata.judges.io import load_judge

    r = score_concept(a.unlearned, a.original, load_judge(a.detector, a.device), workers=a.workers, out=a.out)
    print(f"{r['concept']}: forgetting rate {r['forgetting_rate'] * 100:.2f}% (UA {r['ua'] * 100:.2f}), "
          f"FD {r['frechet_distance']:.2f} over {r['pairs']} pairs")
    return 0


def _generate_prompts(a: argparse.Namespace) -> int:
    from canvasdata.evaluate.concepts import generate_prompt_images

    out = generate_prompt_images(a.model, a.prompts, a.out, size=a.size, steps=a.steps, guidance=a.guidance,
                                 batch_size=a.batch_size, device=a.device, progress=not a.quiet)
    print(f"images in {out}")
    return 0


def add_evaluate_commands(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="score one unlearning request's answer set with judges (UA, IRA, CRA, FD)")
    e.add_argument("--answers", required=True, help="folder of {style}_{object}_seed{N}.jpg, or a canvasdata build")
    e.add_argument("--forget", required=True, help="style:NAME or object:NAME")
    e.add_argument("--judges", nargs="+", required=True, help="judge directories or Hub ids (style and object)")
    e.add_argument("--reference", help="real images for FD/KID: a canvasdata build or a {style}/{object}/{k}.jpg folder")
    e.add_argument("--inception", help="torchvision Inception v3 weights file for FD (default: style-judge features)")
    e.add_argument("--exclude-seed-images", action="store_true", help="leave Seed_Images out of the style denominators")
    e.add_argument("--out", help="report directory (default: ANSWERS/report)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--workers", type=int, default=2)
    e.set_defaults(func=_evaluate)

    g = sub.add_parser("generate", help="generate an answer set from a diffusers pipeline (the protocol's defaults)")
    g.add_argument("--model", required=True, help="a local diffusers pipeline directory or a Hub id")
    g.add_argument("--out", required=True)
    g.add_argument("--space", default="uc50", help="style label space whose styles are prompted (default uc50)")
    g.add_argument("--styles", nargs="*")
    g.add_argument("--objects", nargs="*")
    g.add_argument("--seeds", nargs="*", type=int, default=[188, 288, 588, 688, 888])
    g.add_argument("--size", type=int, default=512)
    g.add_argument("--steps", type=int, default=100)
    g.add_argument("--guidance", type=float, default=9.0)
    g.add_argument("--batch-size", type=int, default=4)
    g.add_argument("--device", default="cpu")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=_generate)

    c = sub.add_parser("evaluate-concept", help="forgetting rate and paired FD for a concept (DataIGM shape)")
    c.add_argument("--unlearned", required=True, help="the unlearned model's images for forget_prompts.json")
    c.add_argument("--original", required=True, help="the original model's images for retain_prompts.json")
    c.add_argument("--detector", required=True, help="a binary judge trained on the concept set")
    c.add_argument("--out")
    c.add_argument("--device", default="cpu")
    c.add_argument("--workers", type=int, default=2)
    c.set_defaults(func=_concept)

    gp = sub.add_parser("generate-prompts", help="images {id}_seed{seed}.jpg for a concept set's prompts JSON")
    gp.add_argument("--model", required=True)
    gp.add_argument("--prompts", required=True, help="prompts/{concept}/forget_prompts.json or retain_prompts.json")
    gp.add_argument("--out", required=True)
    gp.add_argument("--size", type=int, default=512)
    gp.add_argument("--steps", type=int, default=50)
    gp.add_argument("--guidance", type=float, default=7.5)
    gp.add_argument("--batch-size", type=int, default=4)
    gp.add_argument("--device", default="cpu")
    gp.add_argument("--quiet", action="store_true")
    gp.set_defaults(func=_generate_prompts)

    s = sub.add_parser("suite", help="score runs/{method}/{style|object}_{target}/ and print a Table-2-shaped table")
    s.add_argument("runs")
    s.add_argument("--judges", nargs="+", required=True)
    s.add_argument("--reference")
    s.add_argument("--exclude-seed-images", action="store_true")
    s.add_argument("--out", help="where suite.md/.csv go (default: RUNS)")
    s.add_argument("--device", default="cpu")
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=_suite)
