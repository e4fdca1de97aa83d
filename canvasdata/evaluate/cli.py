"""`canvasdata evaluate ...`: generate answer sets with a diffusers pipeline and score them with judges,
grouped the way `canvasdata judge ...` is (a noun, then a verb): `generate`/`score` one request's grid answer
set, `suite` a folder of runs, `generate-concept`/`score-concept` a concept set's prompts. Parse, call the
library, print. `retrained` (answer sets against a model retrained without the target) needs diffusers, imported in
its handler through `extras.load_extra`."""

from __future__ import annotations

import argparse

from canvasdata.cliargs import add_device_arg, add_device_args, non_negative_int, positive_int
from canvasdata.devices import DECODE_WORKERS, Rank, join_ranks
from canvasdata.errors import UsageError
from canvasdata.evaluate.commands import evaluate_command, generate_command, load_judges, suite_command
from canvasdata.evaluate.concepts import generate_prompt_images, score_concept
from canvasdata.evaluate.generate import GENERATE_BATCH
from canvasdata.evaluate.jeffreys import LOSS_BATCH, LOSS_TIMESTEPS, NOISE_SEED
from canvasdata.evaluate.protocol import (
    CONCEPT_GUIDANCE,
    CONCEPT_STEPS,
    DEFAULT_PROTOCOL,
    INCEPTION_PIPELINES,
    JUDGE_RESIZES,
    OPTION_HELP,
    PROTOCOL_GUIDANCE,
    PROTOCOL_SCHEDULER,
    PROTOCOL_SEEDS,
    PROTOCOL_SIZE,
    PROTOCOL_STEPS,
    PROTOCOLS,
    SEED_IMAGES_WORDS,
    Protocol,
    get_protocol,
)
from canvasdata.evaluate.score import NEIGHBOURS_K
from canvasdata.evaluate.sequence import score_sequence
from canvasdata.evaluate.sweep import (
    Sampling,
    answer_set_plan,
    load_sweep,
    measure_image_cost,
    run_sweep,
    sweep_plan,
)
from canvasdata.extras import load_extra
from canvasdata.sources.diffusers import DTYPES, PipelineOptions
from canvasdata.taxonomy import OBJECTS, label_space

SCORING_OPTIONS = ("cra_includes_forgotten", "judge_resize", "inception_pipeline", "seed_images_in_style_metrics")
GENERATION_OPTIONS = ("seed_images_words",)


def _protocol(a: argparse.Namespace, options: tuple[str, ...] = SCORING_OPTIONS) -> Protocol:
    """The named protocol with those of the per-option flags `options` that were given."""
    return get_protocol(a.protocol, **{k: getattr(a, k) for k in options})


def _score(a: argparse.Namespace) -> int:
    """`evaluate score`: one request's UA/IRA/CRA (and FD/KID)."""
    session = join_ranks(a.device)
    r = evaluate_command(a.answers, a.forget, a.judges, protocol=_protocol(a), reference=a.reference,
                         inception=a.inception, out=a.out, device=str(session.device), batch_size=a.batch_size,
                         workers=a.workers, progress=not a.quiet and session.main, split=a.split,
                         neighbours_k=a.neighbours, session=session)
    if not session.main:
        return 0
    pct = lambda v: "—" if v is None or v != v else f"{v * 100:.2f}"  # noqa: E731
    if r.forget["domain"] == "combination":
        scores = (f"FU {pct(r.fu)}  FR {pct(r.fr)} (same style {pct(r.fr_same_style)}, same object "
                  f"{pct(r.fr_same_object)}, rest {pct(r.fr_rest)})")
    else:
        scores = f"UA {pct(r.ua)}  IRA {pct(r.ira)}  CRA {pct(r.cra)}"
    print(f"forget {a.forget}: {scores}"
          + (f"  FD {r.frechet_distance:.2f}  KID {r.kid:.4f}" if r.frechet_distance is not None else "")
          + f"  ({r.num_images} images; protocol {r.protocol.describe()}) -> {r.paths['markdown']}")
    return 0


def _options(a: argparse.Namespace) -> PipelineOptions:
    """How the pipeline is loaded, from the pipeline flags."""
    return PipelineOptions(a.dtype, a.scheduler, a.cpu_offload, a.attention_slicing)


def _sampling(a: argparse.Namespace) -> Sampling:
    """The prompt grid and sampling settings of `generate` / `sweep`, from their flags (names checked)."""
    return Sampling(styles=tuple(a.styles or label_space(a.space).names), objects=tuple(a.objects or OBJECTS),
                    seeds=tuple(a.seeds), size=a.size, steps=a.steps, guidance=a.guidance, batch_size=a.batch_size)


def _generate(a: argparse.Namespace) -> int:
    """`evaluate generate`: an answer set from a diffusers pipeline (or, with --plan, what it would cost)."""
    proto = _protocol(a, GENERATION_OPTIONS)
    if a.plan:
        sampling = _sampling(a)
        cost = measure_image_cost(a.model, sampling, a.device, _options(a))
        p = answer_set_plan(sampling, a.out, cost)
        print(f"answer set of {p['images']:,} images ({p['present']:,} already in {a.out}): {p['to_generate']:,} "
              f"to generate, {p['unet_evaluations']:,} UNet evaluations; {p['judge_calls']:,} judge calls to score "
              f"it; {cost:.3f} s an image measured on {a.model} -> about {p['estimate_seconds'] / 60:.1f} min on "
              f"{a.device} in one process (N torchrun ranks on N such devices: about 1/N of it)")
        return 0
    out = generate_command(a.model, a.out, space=a.space, styles=a.styles, objects=a.objects, seeds=a.seeds,
                           size=a.size, steps=a.steps, guidance=a.guidance, batch_size=a.batch_size,
                           device=a.device, generator_device=a.generator_device, protocol=proto,
                           options=_options(a), progress=not a.quiet)
    if Rank.from_env().main:
        print(f"answer set in {out} (protocol {proto.name}, Seed_Images prompted as "
              f"\"{proto.seed_images_words}\"; settings in generation.json)")
    return 0


def _sweep(a: argparse.Namespace) -> int:
    """`evaluate sweep`: every model of a sweep file generated into RUNS, then one suite (or --plan)."""
    entries = load_sweep(a.models)
    if not a.plan and not a.judges:
        raise UsageError("evaluate sweep: --judges is required (unless --plan)")
    proto = _protocol(a, SCORING_OPTIONS + GENERATION_OPTIONS)
    sampling = _sampling(a)
    if a.plan:
        cost = measure_image_cost(entries[0].model, sampling, a.device, _options(a))
        p = sweep_plan(entries, sampling, seconds_per_image=cost)
        print(f"sweep of {p['models']} models ({p['requests']} requests): {p['images']:,} images "
              f"({p['images_per_model']:,} a model), {p['unet_evaluations']:,} UNet evaluations, "
              f"{p['judge_calls']:,} judge calls; {cost:.3f} s an image measured on {entries[0].model} "
              f"-> about {p['estimate_seconds'] / 60:.1f} min of generation on {a.device} in one process "
              "(N torchrun ranks on N such devices: about 1/N of it)")
        return 0
    session = join_ranks(a.device)
    suite = run_sweep(entries, a.out, load_judges(a.judges, str(session.device)), sampling,
                      device=a.device, options=_options(a), protocol=proto, generator_device=a.generator_device,
                      progress=not a.quiet, reference=a.reference, inception=a.inception, workers=a.workers,
                      neighbours_k=a.neighbours, session=session)
    if suite is None:
        return 0
    print(suite.to_markdown())
    print(f"-> {a.out}/suite/suite.md")
    return 0


def _sweep_parser(es: argparse._SubParsersAction) -> None:
    w = es.add_parser("sweep", help="many models as one job: generate every pipeline of MODELS.toml into "
                      "RUNS/{method}/{request}/ (resumable), then score the suite; --plan prints the cost first")
    w.add_argument("models", help="a TOML file of [[model]] entries: method, forget (a request or a list), path")
    w.add_argument("--out", required=True, help="the runs folder (RUNS/{method}/{request}/, RUNS/suite/)")
    w.add_argument("--judges", nargs="+", default=[], help="judge directories or Hub ids (style and object); "
                   "required unless --plan")
    w.add_argument("--plan", action="store_true", help="print images, UNet evaluations, judge calls and a time "
                   "estimate (a per-image cost measured on the first model), then exit")
    w.add_argument("--space", default="uc50", help="style label space whose styles are prompted")
    w.add_argument("--styles", nargs="*", help="styles to prompt (default: all of --space)")
    w.add_argument("--objects", nargs="*", help="objects to prompt (default: all)")
    w.add_argument("--seeds", nargs="*", type=non_negative_int, default=list(PROTOCOL_SEEDS),
                   help="the seeds of every prompt")
    w.add_argument("--reference", help="real images for FD/KID (a build or a {style}/{object}/{k}.jpg folder)")
    w.add_argument("--inception", help="Inception v3 weights file for FD/KID (default: the judge's features)")
    w.add_argument("--neighbours", type=non_negative_int, default=NEIGHBOURS_K,
                   help="IRA is also split into the K retained classes nearest the target and the rest")
    _scoring_flags(w)
    w.add_argument("--seed-images-words", choices=SEED_IMAGES_WORDS,
                   help=f"{OPTION_HELP['seed_images_words']} ({_default('seed_images_words')})")
    sampling_flags(w, workers=True)
    w.set_defaults(func=_sweep)


def _suite(a: argparse.Namespace) -> int:
    """`evaluate suite`: every request under RUNS, as one table."""
    session = join_ranks(a.device)
    suite = suite_command(a.runs, a.judges, protocol=_protocol(a), reference=a.reference, inception=a.inception,
                          out=a.out, device=str(session.device), batch_size=a.batch_size, workers=a.workers,
                          progress=not a.quiet, neighbours_k=a.neighbours, session=session)
    if not session.main:
        return 0
    print(suite.to_markdown())
    print(f"-> {suite.paths['md']}, {suite.paths['csv']}")
    return 0


def _score_concept(a: argparse.Namespace) -> int:
    """`evaluate score-concept`: a concept's forgetting rate and paired FD."""
    r = score_concept(a.unlearned, a.original, load_judges([a.detector], a.device)[0], workers=a.workers, out=a.out)
    print(f"{r['concept']}: forgetting rate {r['forgetting_rate'] * 100:.2f}% (UA {r['ua'] * 100:.2f}), "
          f"FD {r['frechet_distance']:.2f} over {r['pairs']} pairs")
    return 0


def _generate_concept(a: argparse.Namespace) -> int:
    """`evaluate generate-concept`: images for a concept set's prompts."""
    out = generate_prompt_images(a.model, a.prompts, a.out, size=a.size, steps=a.steps, guidance=a.guidance,
                                 batch_size=a.batch_size, device=a.device, options=_options(a),
                                 progress=not a.quiet, session=join_ranks(a.device))
    if Rank.from_env().main:
        print(f"images in {out}")
    return 0


def _retrained(a: argparse.Namespace) -> int:
    """`evaluate retrained`: answer sets against the retrained reference's (scores, FD/KID, J)."""
    retrained = load_extra("canvasdata.evaluate.retrained", "diffusers")
    r = retrained.compare_retrained(a.reference, a.answers, a.forget, load_judges(a.judges, a.device),
                                    models=a.models, reference_model=a.reference_model, protocol=_protocol(a, ()),
                                    timesteps=a.timesteps, noise_seed=a.noise_seed, loss_batch=a.loss_batch,
                                    device=a.device, batch_size=a.batch_size, workers=a.workers, out=a.out,
                                    progress=not a.quiet)
    for row in r.rows[1:]:
        f, rest = row["forgotten"], row["rest"]
        fd = "—" if f["fd"] is None else f"{f['fd']:.2f}"
        print(f"{row['label']}: J forgotten {f['loss']['j']:.5f}, J rest {rest['loss']['j']:.5f}, FD forgotten {fd} "
              f"(UA {row['scores']['ua'] * 100:.2f}; reference UA {r.rows[0]['scores']['ua'] * 100:.2f})")
    print(f"-> {r.paths['markdown']}")
    return 0


def _retrained_parser(es: argparse._SubParsersAction) -> None:
    r = es.add_parser("retrained", help="compare answer sets with a model retrained without the target (the gold "
                      "standard): scores, FD/KID and a denoising-loss Jeffreys divergence (FADE)")
    r.add_argument("--reference", required=True, help="answer folder of the model retrained without --forget "
                   "(`canvasdata model train ... --exclude`)")
    r.add_argument("--answers", nargs="+", required=True, help="answer folders to compare (e.g. the original model's "
                   "and an unlearned model's), on the reference's cells, seeds and sampling settings")
    r.add_argument("--forget", required=True, help="the request: style:NAME, object:NAME or style:NAME+object:NAME "
                   "(what the reference was retrained without)")
    r.add_argument("--judges", nargs="+", required=True, help="judge directories or Hub ids (style and object)")
    r.add_argument("--out", required=True, help="folder for retrained.json and retrained.md")
    r.add_argument("--models", nargs="+", help="the pipeline folder of each --answers, in the same order (default: "
                   "each generation.json's model)")
    r.add_argument("--reference-model", help="the reference's pipeline folder (default: its generation.json's model)")
    r.add_argument("--timesteps", type=positive_int, default=LOSS_TIMESTEPS,
                   help="evenly spaced timesteps of each model's training schedule the denoising loss averages over")
    r.add_argument("--noise-seed", type=non_negative_int, default=NOISE_SEED,
                   help=f"seed of the fixed noise draws, with each answer's style, object and seed "
                        f"(default: {NOISE_SEED})")
    r.add_argument("--loss-batch", type=positive_int, default=LOSS_BATCH,
                   help="images a denoising forward pass (each at every timestep)")
    protocol_flag(r)
    add_device_args(r)
    r.set_defaults(func=_retrained)


def _default(option: str) -> str:
    """'unlearncanvas: X, canvasdata: Y' for a flag's help."""
    return "default: the protocol's; " + ", ".join(f"{name}: {getattr(p, option)}" for name, p in PROTOCOLS.items())


def pipeline_flags(p: argparse.ArgumentParser) -> None:
    """How a diffusers pipeline is loaded: --dtype, --scheduler, --cpu-offload, --attention-slicing."""
    p.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                   help="weights' dtype (auto: float16 on CUDA, float32 elsewhere)")
    p.add_argument("--scheduler", default=PROTOCOL_SCHEDULER,
                   help="a diffusers scheduler class name, built from the pipeline's scheduler config "
                        "(e.g. EulerDiscreteScheduler; '' keeps the pipeline's own)")
    p.add_argument("--cpu-offload", action="store_true",
                   help="enable_model_cpu_offload: each model on the device only while it runs (needs accelerate; "
                        "default: off)")
    p.add_argument("--attention-slicing", action="store_true",
                   help="enable_attention_slicing: less memory, a little slower (default: off)")


def sampling_flags(p: argparse.ArgumentParser, *, steps: int = PROTOCOL_STEPS, guidance: float = PROTOCOL_GUIDANCE,
                   generator_device: bool = True, workers: bool = False) -> None:
    """How a diffusers pipeline generates: --size, --steps, --guidance, the device and batch flags (with
    --workers when images are judged too), --generator-device and the pipeline-loading flags."""
    p.add_argument("--size", type=positive_int, default=PROTOCOL_SIZE, help="image size in px")
    p.add_argument("--steps", type=positive_int, default=steps, help="denoising steps")
    p.add_argument("--guidance", type=float, default=guidance, help="classifier-free guidance scale")
    add_device_args(p, batch_size=GENERATE_BATCH, workers=workers)
    if generator_device:
        p.add_argument("--generator-device", default="cpu",
                       help="where the seeded initial noise is drawn (default: cpu, the same images on any machine)")
    pipeline_flags(p)


def protocol_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=list(PROTOCOLS), default=DEFAULT_PROTOCOL,
                   help="evaluation protocol: unlearncanvas (default) makes the original benchmark code's choices, "
                        "canvasdata canvasdata's own; the flags below override single options")


def _scoring_flags(p: argparse.ArgumentParser) -> None:
    """--protocol and one flag per scoring option (None: the protocol's value)."""
    protocol_flag(p)
    p.add_argument("--cra-includes-forgotten", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{OPTION_HELP['cra_includes_forgotten']} ({_default('cra_includes_forgotten')})")
    p.add_argument("--judge-resize", choices=JUDGE_RESIZES,
                   help=f"{OPTION_HELP['judge_resize']} ({_default('judge_resize')})")
    p.add_argument("--inception-pipeline", choices=INCEPTION_PIPELINES,
                   help=f"{OPTION_HELP['inception_pipeline']} ({_default('inception_pipeline')})")
    p.add_argument("--seed-images-in-style-metrics", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{OPTION_HELP['seed_images_in_style_metrics']} ({_default('seed_images_in_style_metrics')}; "
                        "the paper's 'other 49 styles')")


def _judging_flags(p: argparse.ArgumentParser, out_help: str) -> None:
    """What scoring answer sets takes: the judges, the FD/KID reference and features, the protocol, the
    report directory, the device and batch flags."""
    p.add_argument("--judges", nargs="+", required=True, help="judge directories or Hub ids (style and object)")
    p.add_argument("--reference", help="real images for FD/KID: a canvasdata build or a {style}/{object}/{k}.jpg "
                   "folder (default: no FD/KID)")
    p.add_argument("--inception", help="Inception v3 weights file for FD/KID (pytorch-fid's pt_inception-2015-12-05-"
                   "6726825d.pth or torchvision's; default: the style judge's penultimate features)")
    _scoring_flags(p)
    p.add_argument("--neighbours", type=non_negative_int, default=NEIGHBOURS_K,
                   help="IRA is also split into the K retained classes nearest the target (cosine similarity of the "
                        "judge's class embeddings) and the rest: over-erasure hides in the near ones")
    p.add_argument("--out", help=out_help)
    add_device_args(p)


def _score_parser(es: argparse._SubParsersAction) -> None:
    e = es.add_parser("score", help="score one unlearning request's answer set with judges (UA, IRA, CRA, FD)")
    e.add_argument("--answers", required=True, help="folder of {style}_{object}_seed{N}.jpg, or a canvasdata build")
    e.add_argument("--forget", required=True, help="style:NAME, object:NAME, or a combination style:NAME+object:NAME "
                   "(finer-scale: FU and FR's parts instead of UA/IRA/CRA)")
    e.add_argument("--split", help="with a build as --answers: score only this split (e.g. test, the images the "
                   "judges never saw: the scores of a model that generates the data itself)")
    _judging_flags(e, "report directory (default: ANSWERS/report; required when --answers is a build)")
    e.set_defaults(func=_score)


def _generate_parser(es: argparse._SubParsersAction) -> None:
    g = es.add_parser("generate", help="generate an answer set from a diffusers pipeline (the protocol's defaults)")
    g.add_argument("--model", required=True, help="a local diffusers pipeline directory or a Hub id")
    g.add_argument("--out", required=True, help="answer folder to write (resumable)")
    g.add_argument("--plan", action="store_true", help="print the images, UNet evaluations, judge calls and a time "
                   "estimate measured on --model (two images, two steps), then exit; writes nothing")
    g.add_argument("--space", default="uc50", help="style label space whose styles are prompted")
    g.add_argument("--styles", nargs="*", help="styles to prompt (default: all of --space)")
    g.add_argument("--objects", nargs="*", help="objects to prompt (default: all)")
    g.add_argument("--seeds", nargs="*", type=non_negative_int, default=list(PROTOCOL_SEEDS),
                   help="the seeds of every prompt")
    sampling_flags(g)
    protocol_flag(g)
    g.add_argument("--seed-images-words", choices=SEED_IMAGES_WORDS,
                   help=f"{OPTION_HELP['seed_images_words']} ({_default('seed_images_words')})")
    g.set_defaults(func=_generate)


def _suite_parser(es: argparse._SubParsersAction) -> None:
    s = es.add_parser("suite", help="score runs/{method}/{style|object}_{target}/ and print a Table-2-shaped table")
    s.add_argument("runs", help="folder of {method}/{style|object}_{target}/ answer sets (a combination: "
                   "{method}/style_{STYLE}+object_{OBJECT}/; FU/FR columns, and cost columns from the unlearn.json "
                   "of the model each generation.json names)")
    _judging_flags(s, "where the reports, suite.md and suite.csv go (default: RUNS/suite)")
    s.set_defaults(func=_suite)


def _sequence(a: argparse.Namespace) -> int:
    """`evaluate sequence`: continual unlearning, step by step."""
    r = score_sequence(a.answers, a.forget, load_judges(a.judges, a.device), original=a.original,
                       simultaneous=a.simultaneous, protocol=_protocol(a), out=a.out, batch_size=a.batch_size,
                       workers=a.workers, progress=not a.quiet)
    for row in r.rows:
        su = "—" if row.su is None else f"{row.su * 100:.2f}"
        print(f"{row.label}: SU {su}  SR {row.sr * 100:.2f}  ("
              + ", ".join(f"UA {t} {row.ua[t] * 100:.2f}" for t in row.forgotten) + ")")
    print(f"-> {r.paths['markdown']} and {r.paths['plot']}")
    return 0


def _sequence_parser(es: argparse._SubParsersAction) -> None:
    q = es.add_parser("sequence", help="score sequential unlearning: per-step UA of every target forgotten so far "
                      "(rebound), SR over what was never targeted, a plot; simultaneous mode side by side")
    q.add_argument("--answers", nargs="+", required=True, help="one answer set per step, in order: the model that "
                   "forgot the first request, then the one that also forgot the second, ...")
    q.add_argument("--forget", nargs="+", required=True, help="the requests in the order they were applied "
                   "(style:NAME, object:NAME or style:NAME+object:NAME; each once)")
    q.add_argument("--original", help="the original model's answer set (a step-0 row)")
    q.add_argument("--simultaneous", help="the answer set of a model that forgot every request in one run "
                   "(`unlearn esd --forget T1,T2,...`)")
    q.add_argument("--judges", nargs="+", required=True, help="judge directories or Hub ids (style and object)")
    _scoring_flags(q)
    q.add_argument("--out", required=True, help="where sequence.md, sequence.json and sequence.png go")
    add_device_args(q)
    q.set_defaults(func=_sequence)


def _concept_parsers(es: argparse._SubParsersAction) -> None:
    gp = es.add_parser("generate-concept", help="images {id}_seed{seed}.jpg for a concept set's prompts JSON")
    gp.add_argument("--model", required=True, help="a local diffusers pipeline directory or a Hub id")
    gp.add_argument("--prompts", required=True, help="prompts/{concept}/forget_prompts.json or retain_prompts.json")
    gp.add_argument("--out", required=True, help="image folder to write")
    sampling_flags(gp, steps=CONCEPT_STEPS, guidance=CONCEPT_GUIDANCE, generator_device=False)
    gp.set_defaults(func=_generate_concept)

    c = es.add_parser("score-concept", help="forgetting rate and paired FD for a concept (DataIGM shape)")
    c.add_argument("--unlearned", required=True, help="the unlearned model's images for forget_prompts.json")
    c.add_argument("--original", required=True, help="the original model's images for retain_prompts.json")
    c.add_argument("--detector", required=True, help="a binary judge trained on the concept set")
    c.add_argument("--out", help="report directory (default: none written)")
    add_device_arg(c)
    c.add_argument("--workers", type=non_negative_int, default=DECODE_WORKERS, help="image-decoding worker processes")
    c.set_defaults(func=_score_concept)


def add_evaluate_commands(sub: argparse._SubParsersAction) -> None:
    """`canvasdata evaluate generate|score|suite|sequence|generate-concept|score-concept|retrained`."""
    e = sub.add_parser("evaluate", help="generate answer sets from a diffusers pipeline and score them with judges")
    es = e.add_subparsers(dest="evaluate_command", required=True)
    _generate_parser(es)
    _score_parser(es)
    _suite_parser(es)
    _sequence_parser(es)
    _sweep_parser(es)
    _concept_parsers(es)
    _retrained_parser(es)
