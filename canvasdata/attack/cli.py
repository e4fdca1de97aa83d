"""`canvasdata attack conceal|prompts`: is the forgotten concept gone, or hidden? Parse, call the
library, print."""

from __future__ import annotations

import argparse

from canvasdata.attack.common import Sampling, percent, score
from canvasdata.attack.conceal import DEFAULT_PROBE_SEEDS, DEFAULT_PSI, run_conceal
from canvasdata.attack.config import DEFAULT_ATTACK, PROJECTIONS, AttackConfig
from canvasdata.attack.tokens import POSITIONS
from canvasdata.cliargs import non_negative_int, positive_int
from canvasdata.devices import JUDGE_BATCH, join_ranks
from canvasdata.evaluate.cli import protocol_flag, sampling_flags
from canvasdata.evaluate.commands import load_judges
from canvasdata.evaluate.protocol import PROTOCOL_SEEDS
from canvasdata.extras import load_extra
from canvasdata.sources.diffusers import PipelineOptions

LAYOUT_HINT = "runs/{method}/{style|object}_{target}/"
ATTACK = DEFAULT_ATTACK  # the attack's defaults, shown by --help


def _sampling(a: argparse.Namespace, device: str) -> Sampling:
    """How images are generated and pipelines loaded, from the flags, on `device` (this rank's)."""
    return Sampling(seeds=tuple(a.seeds), size=a.size, steps=a.steps, guidance=a.guidance, batch_size=a.batch_size,
                    device=device, generator_device=a.generator_device,
                    options=PipelineOptions(a.dtype, a.scheduler, a.cpu_offload, a.attention_slicing))


def _conceal(a: argparse.Namespace) -> int:
    """`attack conceal`: partial diffusion over the ψ grid, UA(ψ), CRS and CCS."""
    session = join_ranks(a.device)
    device = str(session.device)
    r = run_conceal(a.original, a.unlearned, a.forget, load_judges(a.judges, device), a.out, psi=a.psi,
                    styles=a.styles, objects=a.objects, probe_seeds=a.probe_seeds, sampling=_sampling(a, device),
                    protocol=a.protocol, judge_batch_size=a.judge_batch_size, workers=a.workers,
                    progress=not a.quiet, session=session)
    if not session.main:
        return 0
    worst = "—" if r.psi_worst is None else f"{r.psi_worst:g}"
    print(f"forget {a.forget}: UA {percent(r.ua_plain)} plain, {percent(r.ua_worst)} under "
          f"concealment (worst psi {worst}); CRS {score(r.crs)}  CCS {score(r.ccs)} -> "
          f"{r.paths['markdown']}, {r.paths['plot']}")
    return 0


def _prompts(a: argparse.Namespace) -> int:
    """`attack prompts`: adversarial prompts and their attack success rate."""
    config = AttackConfig(tokens=a.tokens, position=a.position, steps=a.attack_steps, lr=a.lr,
                          weight_decay=a.weight_decay, project=a.project, batch=a.attack_batch,
                          eval_draws=a.eval_draws, targets=a.targets_per_prompt, seed=a.attack_seed)
    attack = load_extra("canvasdata.attack.prompts", "diffusers")
    session = join_ranks(a.device)
    judges = load_judges(a.judges, str(session.device))
    r = attack.run_prompt_attack(a.unlearned, a.forget, a.target_images, judges, a.out, styles=a.styles,
                                 objects=a.objects, config=config, sampling=_sampling(a, str(session.device)),
                                 protocol=a.protocol, judge_batch_size=a.judge_batch_size, workers=a.workers,
                                 progress=not a.quiet, session=session)
    if not session.main:
        return 0
    print(f"forget {a.forget}: ASR {r.asr * 100:.2f} over images, {r.asr_prompts * 100:.2f} over prompts "
          f"({r.asr_plain * 100:.2f} before the attack) -> {r.paths['markdown']}, {r.paths['prompts']}")
    return 0


def _common_flags(p: argparse.ArgumentParser, out_name: str) -> None:
    """The request, judges, output, prompts, sampling, device, pipeline and protocol flags of both attacks."""
    p.add_argument("--forget", required=True, help="style:NAME or object:NAME")
    p.add_argument("--judges", nargs="+", required=True, help="judge directories or Hub ids (style and object)")
    p.add_argument("--out", required=True, help=f"folder to write (resumable); {LAYOUT_HINT}{out_name} puts the "
                   "report where `canvasdata evaluate suite` reads it")
    p.add_argument("--styles", nargs="*", help="styles prompted for an object request (default: uc50's)")
    p.add_argument("--objects", nargs="*", help="objects prompted for a style request (default: all 20)")
    p.add_argument("--seeds", nargs="+", type=non_negative_int, default=list(PROTOCOL_SEEDS),
                   help="the seeds of every prompt")
    sampling_flags(p, workers=True)
    p.add_argument("--judge-batch-size", type=positive_int, default=JUDGE_BATCH, help="images a judge batch")
    protocol_flag(p)


def _conceal_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("conceal", help="partial diffusion (original model first, unlearned model after) over a psi "
                       "grid: UA(psi), CRS, CCS and a plot")
    c.add_argument("--original", required=True, help="the original model: a diffusers pipeline directory or Hub id")
    c.add_argument("--unlearned", required=True, help="the unlearned model: a diffusers pipeline directory or Hub id")
    c.add_argument("--psi", nargs="+", type=float, default=list(DEFAULT_PSI),
                   help="shares of the denoising steps taken by the original model, each in [0, 1] "
                        "(0 and 1 are always generated as references)")
    c.add_argument("--probe-seeds", nargs="+", type=non_negative_int, default=list(DEFAULT_PROBE_SEEDS),
                   help="seeds of the discriminator's training images (both models, every prompt)")
    _common_flags(c, "conceal")
    c.set_defaults(func=_conceal)


def _prompts_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompts", help="adversarial prompts (UnlearnDiffAtk family) against an unlearned model, "
                       "and their attack success rate")
    p.add_argument("--unlearned", required=True, help="the unlearned model: a diffusers pipeline directory or Hub id")
    p.add_argument("--target-images", required=True,
                   help="images of the forgotten concept: an answer folder ({style}_{object}_seed{N}.jpg, e.g. the "
                        "original model's) or a canvasdata build")
    p.add_argument("--tokens", type=positive_int, default=ATTACK.tokens, help="adversarial tokens a prompt")
    p.add_argument("--position", choices=POSITIONS, default=ATTACK.position, help="where the adversarial tokens go")
    p.add_argument("--attack-steps", type=positive_int, default=ATTACK.steps, help="optimisation steps a prompt")
    p.add_argument("--lr", type=float, default=ATTACK.lr, help="AdamW learning rate of the token embeddings")
    p.add_argument("--weight-decay", type=float, default=ATTACK.weight_decay, help="AdamW weight decay")
    p.add_argument("--project", choices=PROJECTIONS, default=ATTACK.project,
                   help="take the loss at the nearest real tokens every step, or at the continuous embeddings")
    p.add_argument("--attack-batch", type=positive_int, default=ATTACK.batch, help="noised target draws a step")
    p.add_argument("--eval-draws", type=positive_int, default=ATTACK.eval_draws,
                   help="fixed draws scoring the tokens after a step")
    p.add_argument("--targets-per-prompt", type=positive_int, default=ATTACK.targets, help="target images a prompt")
    p.add_argument("--attack-seed", type=int, default=ATTACK.seed, help="seed of the initial tokens and every draw")
    _common_flags(p, "prompts")
    p.set_defaults(func=_prompts)


def add_attack_commands(sub: argparse._SubParsersAction) -> None:
    """`canvasdata attack conceal|prompts`."""
    a = sub.add_parser("attack", help="was the concept forgotten or hidden? concealment probe and adversarial prompts")
    s = a.add_subparsers(dest="attack_command", required=True)
    _conceal_parser(s)
    _prompts_parser(s)
