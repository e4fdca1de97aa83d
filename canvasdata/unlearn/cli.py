"""`canvasdata unlearn esd`: erase a style or object from a StableDiffusionPipeline folder. Parse, call the
library, print. The library (diffusers) is imported in the handler, so the bare command line starts without
the diffusers extra."""

from __future__ import annotations

import argparse

from canvasdata.cliargs import add_device_arg, positive_int
from canvasdata.extras import load_extra
from canvasdata.unlearn import METHODS, RETAIN_LATENTS, ESDConfig

ESD = ESDConfig()  # ESD's defaults, shown by --help


def _config(a: argparse.Namespace) -> ESDConfig:
    return ESDConfig(method=a.method, iterations=a.iterations, lr=a.lr, negative_guidance=a.negative_guidance,
                     start_guidance=a.start_guidance, sample_steps=a.sample_steps,
                     checkpoint_every=a.checkpoint_every, seed=a.seed, size=a.size)


def _sequence(a: argparse.Namespace) -> int:
    """`unlearn sequence`: ESD on each request in turn, from the previous step's output."""
    seq = load_extra("canvasdata.unlearn.sequence", "diffusers")
    results = seq.erase_sequence(a.model, a.forget, a.out, _config(a), retain=a.retain,
                                 retain_weight=a.retain_weight, retain_latents=a.retain_latents, device=a.device,
                                 progress=not getattr(a, "quiet", False))
    for k, r in enumerate(results, 1):
        print(f"step {k}: forget {r.forget} (ESD {r.method}, {r.seconds:.1f} s) -> {r.out}")
    return 0


def _esd(a: argparse.Namespace) -> int:
    """`unlearn esd`: train, write the unlearned pipeline, print one line."""
    esd = load_extra("canvasdata.unlearn.esd", "diffusers")
    config = _config(a)
    prompt = a.prompt[0] if a.prompt and len(a.prompt) == 1 else a.prompt
    anchor = a.anchor[0] if a.anchor and len(a.anchor) == 1 else a.anchor
    r = esd.erase(a.model, a.forget, a.out, config, prompt=prompt, anchor=anchor, retain=a.retain,
                  retain_weight=a.retain_weight, retain_latents=a.retain_latents, device=a.device,
                  progress=not getattr(a, "quiet", False))
    print(f"forget {r.forget}: ESD {r.method} on {r.prompt!r}, {len(r.losses)} iterations in {r.seconds:.1f} s, "
          f"final loss {r.final_loss:.4g}, {r.changed_parameters} parameters changed "
          f"({r.changed_bytes / 2**20:.1f} MiB) -> {r.out}")
    return 0


def _esd_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("esd", help="Erased Stable Diffusion (Gandikota et al., ICCV 2023): fine-tune the UNet away "
                       "from the concept; writes a full pipeline folder (resumable)")
    p.add_argument("--model", required=True, help="the source: a StableDiffusionPipeline folder")
    p.add_argument("--forget", required=True, help="style:NAME, object:NAME, or a style x object combination "
                   "style:NAME+object:NAME (finer-scale; its style may be Seed_Images); several separated by commas "
                   "are forgotten simultaneously, in one run (iterations take the concepts in turn)")
    p.add_argument("--out", required=True, help="folder to write the unlearned pipeline to (new or empty; rerun the "
                   "same command to resume)")
    p.add_argument("--prompt", nargs="+", metavar="TEXT",
                   help="the concept text (default: 'NAME style' for a style, the object's name, the build's caption "
                   "'A OBJECT image in STYLE style.' for a combination), or several texts of the concept, one per "
                   "iteration in turn (e.g. the captions that name it); every word must be in the model's vocabulary")
    p.add_argument("--anchor", nargs="+", metavar="TEXT",
                   help="one text per erased text that replaces ESD's empty prompt as the target's reference: the "
                   "concept is pushed away from its anchor (e.g. the same caption in another style) instead of from "
                   "everything the text says (concept ablation's anchor; default: the paper's ESD)")
    _retain_flags(p, "")
    _esd_flags(p)
    p.set_defaults(func=_esd)


def _retain_flags(p: argparse.ArgumentParser, each: str) -> None:
    p.add_argument("--retain", nargs="+", metavar="TEXT",
                   help="texts to keep (e.g. the captions of other styles; \"\" is the empty prompt, the "
                   f"unconditional prediction): each iteration{each} also holds the prediction for one of them, drawn "
                   "at random, to the source's (a utility-retaining term as in AdvUnlearn; default: none, the "
                   "paper's ESD)")
    p.add_argument("--retain-weight", type=float, default=1.0,
                   help="weight of the retain term against ESD's (with --retain; default 1)")
    p.add_argument("--retain-latents", choices=RETAIN_LATENTS, default=RETAIN_LATENTS[0],
                   help="with --retain, where the term is taken: on the erased concept's x_t (default) or on an x_t "
                   "sampled the same way along the retain text's own trajectory (one more partial sampling run an "
                   "iteration)")


def _sequence_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sequence", help="sequential unlearning: ESD on each request in turn, each step from the "
                       "previous step's output (OUT/1_..., OUT/2_...; resumable)")
    p.add_argument("--model", required=True, help="the source: a StableDiffusionPipeline folder")
    p.add_argument("--forget", nargs="+", required=True, help="the requests in order (style:NAME, object:NAME or "
                   "style:NAME+object:NAME; each once)")
    p.add_argument("--out", required=True, help="folder of the steps (new or empty, or this sequence's own)")
    _retain_flags(p, " of every step")
    _esd_flags(p)
    p.set_defaults(func=_sequence)


def _esd_flags(p: argparse.ArgumentParser) -> None:
    """ESD's settings, shared by `esd` and `sequence`."""
    p.add_argument("--method", choices=METHODS, default=ESD.method,
                   help="parameters trained: xattn (ESD-x, cross-attention), xattn-strict (its key and value "
                        "projections: the authors' later esd-x-strict), noxattn (ESD-u, all but "
                        "cross-attention, the time embedding and the output layer), full; "
                        "auto is xattn for a style or a combination, noxattn for an object")
    p.add_argument("--iterations", type=positive_int, default=ESD.iterations, help="training iterations (batch 1)")
    p.add_argument("--lr", type=float, default=ESD.lr, help="Adam learning rate")
    p.add_argument("--negative-guidance", type=float, default=ESD.negative_guidance,
                   help="eta: how far the target points away from the concept")
    p.add_argument("--start-guidance", type=float, default=ESD.start_guidance,
                   help="classifier-free guidance of the sampling that makes each x_t")
    p.add_argument("--sample-steps", type=positive_int, default=ESD.sample_steps, help="DDIM steps of that sampling")
    p.add_argument("--checkpoint-every", type=positive_int, default=ESD.checkpoint_every,
                   help="iterations between resumable checkpoints")
    p.add_argument("--size", type=positive_int, help="image size in px (default: the UNet's native size)")
    p.add_argument("--seed", type=int, default=ESD.seed, help=f"seed of every draw (default: {ESD.seed})")
    add_device_arg(p)


def add_unlearn_commands(sub: argparse._SubParsersAction) -> None:
    """`canvasdata unlearn esd|sequence`."""
    u = sub.add_parser("unlearn", help="erase a style, an object or a style x object combination from a diffusers "
                       "pipeline (ESD)")
    s = u.add_subparsers(dest="unlearn_command", required=True)
    _esd_parser(s)
    _sequence_parser(s)
