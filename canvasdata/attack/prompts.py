"""Adversarial prompts in the UnlearnDiffAtk family (Zhang et al., ECCV 2024): for each prompt of a
forget request, a few token slots (prefix by default) are optimised so that the unlearned model's
denoising loss on images of the forgotten concept falls — the target images encoded by the pipeline's
VAE (latent mean), noised at random timesteps, the model's prediction (ε, or v for v-prediction models)
compared with the truth by MSE — and kept as real tokens (nearest token embeddings, Euclidean).

Optimisation is PEZ-style: continuous slot embeddings, AdamW; with `project="each-step"` (the default,
as the paper keeps real tokens throughout) the loss is taken at the projected tokens and its gradient
applied to the continuous embeddings (straight-through); with `project="end"` it is taken at the
continuous embeddings. After every step the projected tokens are scored on fixed draws (the same timesteps
and noise each time); the best such tokens (the initial ones included) are the attack's result.

Every draw comes from a generator seeded by (seed, prompt, step), and each prompt's state (embeddings,
optimiser, best tokens, losses) is saved atomically after every step: an interrupted attack resumes
where it stopped and ends exactly as an uninterrupted one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from PIL import Image
from tqdm.auto import tqdm

from canvasdata.attack.common import AttackReport, Request, Sampling, forget_request, judges_record, percent, read_set
from canvasdata.attack.config import DEFAULT_ATTACK, AttackConfig
from canvasdata.attack.io import check_settings, load_state, save_state
from canvasdata.attack.tokens import AdversarialPipeline, SoftPrompt, execution_device
from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, Session
from canvasdata.encode import decode_image
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer, read_answers
from canvasdata.evaluate.generate import answer_name, model_name
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import judge_for, run_judges, score_answers
from canvasdata.formats.common import write_json
from canvasdata.seeds import derive_seed
from canvasdata.taxonomy import OBJECTS, UC60, prompt

PREDICTIONS = ("epsilon", "v_prediction", "sample")


def check_attackable(pipe: Any) -> None:
    """Refuse a pipeline the attack cannot differentiate through: it needs one CLIP-style text encoder
    (with an input-embedding table), a tokenizer, a UNet, a VAE and a DDPM-family noise schedule."""
    missing = [n for n in ("tokenizer", "text_encoder", "unet", "vae") if getattr(pipe, n, None) is None]
    if missing:
        raise UsageError(f"{type(pipe).__name__} lacks {', '.join(missing)}: the prompt attack needs an SD 1.x/2.x-"
                         "style pipeline (tokenizer, text_encoder, unet, vae)")
    if getattr(pipe, "text_encoder_2", None) is not None:
        raise UsageError(f"{type(pipe).__name__} has a second text encoder: the prompt attack supports pipelines "
                         "with one (SD 1.x/2.x)")
    kind = pipe.scheduler.config.get("prediction_type", "epsilon")
    if getattr(pipe.scheduler, "alphas_cumprod", None) is None or kind not in PREDICTIONS:
        raise UsageError(f"scheduler {type(pipe.scheduler).__name__}: the prompt attack needs alphas_cumprod and a "
                         f"prediction_type in {', '.join(PREDICTIONS)}")


class DenoisingLoss:
    """The unlearned model's denoising MSE on noised target latents, for a text conditioning. The latents
    are noised, and the target of a v-prediction model made, by the training noise schedule of the
    pipeline's scheduler config (`DDPMScheduler.add_noise` / `get_velocity`), whatever scheduler samples."""

    def __init__(self, pipe: Any, latents: torch.Tensor) -> None:
        self.unet, self.latents = pipe.unet, latents
        self.noise = DDPMScheduler.from_config(pipe.scheduler.config)
        self.kind = self.noise.config.prediction_type

    def draws(self, generator: torch.Generator, n: int, cycle: bool = False) -> tuple[torch.Tensor, ...]:
        """(image index, timestep, noise) of `n` draws from `generator` (`cycle`: images in turn)."""
        count = len(self.latents)
        idx = torch.arange(n) % count if cycle else torch.randint(count, (n,), generator=generator)
        t = torch.randint(self.noise.config.num_train_timesteps, (n,), generator=generator)
        noise = torch.randn((n, *self.latents.shape[1:]), generator=generator)
        return idx, t, noise

    def __call__(self, cond: torch.Tensor, idx: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the model's prediction for the draws, conditioned on `cond` [1, L, D]."""
        dev = self.latents.device
        z0, noise, t = self.latents[idx.to(dev)].float(), noise.to(dev), t.to(dev)
        xt = self.noise.add_noise(z0, noise, t)
        target = {"epsilon": noise, "sample": z0}.get(self.kind)
        if target is None:   # v_prediction
            target = self.noise.get_velocity(z0, noise, t)
        dtype = self.unet.dtype
        pred = self.unet(xt.to(dtype), t, encoder_hidden_states=cond.expand(len(t), -1, -1).to(dtype)).sample
        return F.mse_loss(pred.float(), target)


@torch.no_grad()
def encode_images(pipe: Any, answers: Sequence[Answer], size: int, batch: int = 8) -> torch.Tensor:
    """Target images resized to `size` px and encoded by the pipeline's VAE: latent means × scaling factor."""
    vae, dev = pipe.vae, execution_device(pipe)
    out = []
    for i in range(0, len(answers), batch):
        arrays = []
        for a in answers[i:i + batch]:
            img = decode_image(a.path if a.path is not None else a.data, draft=False, name=a.name)  # bomb-guarded
            arrays.append(np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), np.float32) / 127.5 - 1)
        x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(dev, vae.dtype)
        out.append(vae.encode(x).latent_dist.mean.float() * vae.config.scaling_factor)
    return torch.cat(out)


def _initial_state(soft_prompt: SoftPrompt, config: AttackConfig, evaluate: Any) -> dict:
    """Step 0: slots filled with real tokens drawn from the seed; their fixed-draw loss is the initial loss."""
    tokens = soft_prompt.random_tokens(torch.Generator().manual_seed(derive_seed("init", config.seed,
                                                                                 soft_prompt.text)))
    loss = evaluate(tokens)
    return {"step": 0, "soft": soft_prompt.embed(tokens).detach().cpu(), "optimizer": None,
            "initial_tokens": tokens, "initial_loss": loss, "best_tokens": tokens, "best_loss": loss, "best_step": 0,
            "final_loss": loss, "train_loss": [], "eval_loss": []}


def _step(soft: torch.Tensor, soft_prompt: SoftPrompt, loss_fn: DenoisingLoss, opt: torch.optim.Optimizer,
          config: AttackConfig, step: int) -> float:
    """One optimisation step on fresh draws (seeded by seed, prompt and step); returns its loss."""
    draws = loss_fn.draws(torch.Generator().manual_seed(derive_seed("step", config.seed, soft_prompt.text, step)),
                          config.batch)
    opt.zero_grad()
    tokens = soft_prompt.project(soft.detach())
    used = soft
    if config.project == "each-step":  # loss at the projected tokens, gradient to the continuous embeddings
        used = soft + (soft_prompt.embed(tokens).to(soft.device) - soft).detach()
    loss = loss_fn(soft_prompt.encode(tokens, used), *draws)
    if not torch.isfinite(loss):
        raise UsageError(f"prompt {soft_prompt.text!r}: the denoising loss is not finite at step {step}; "
                         "load the pipeline with --dtype float32")
    loss.backward()
    opt.step()
    return float(loss.detach())


def attack_prompt(pipe: Any, text: str, latents: torch.Tensor, config: AttackConfig = DEFAULT_ATTACK,
                  state_path: Path | str | None = None, progress: bool = False) -> dict:
    """Optimise `config.tokens` slots of the prompt `text` against the unlearned pipeline `pipe` on target
    `latents` (`encode_images`); resumes from and saves to `state_path` after every step (`progress`: a bar
    of steps). The pipeline's weights are frozen (requires_grad off). Returns the found prompt
    (`SoftPrompt.describe`) with its initial, best and final fixed-draw losses and histories."""
    check_attackable(pipe)
    for module in (pipe.unet, pipe.text_encoder, pipe.vae):
        module.requires_grad_(False)
    soft_prompt, loss_fn = SoftPrompt(pipe, text, config.tokens, config.position), DenoisingLoss(pipe, latents)
    fixed = loss_fn.draws(torch.Generator().manual_seed(derive_seed("eval", config.seed, text)), config.eval_draws,
                          cycle=True)

    @torch.no_grad()
    def evaluate(tokens: torch.Tensor) -> float:
        return float(loss_fn(soft_prompt.encode(tokens), *fixed))

    state = (load_state(state_path) if state_path is not None else None) or _initial_state(soft_prompt, config,
                                                                                           evaluate)
    soft = torch.nn.Parameter(state["soft"].to(latents.device, torch.float32))
    opt = torch.optim.AdamW([soft], lr=config.lr, weight_decay=config.weight_decay)
    if state["optimizer"] is not None:
        opt.load_state_dict(state["optimizer"])
    with torch.enable_grad():
        for step in tqdm(range(state["step"], config.steps), initial=state["step"], total=config.steps,
                         desc=text[:30], unit="step", leave=False, disable=not progress):
            state["train_loss"].append(_step(soft, soft_prompt, loss_fn, opt, config, step))
            tokens = soft_prompt.project(soft.detach())
            state["final_loss"] = evaluate(tokens)
            state["eval_loss"].append(state["final_loss"])
            if state["final_loss"] < state["best_loss"]:
                state.update(best_tokens=tokens, best_loss=state["final_loss"], best_step=step + 1)
            state.update(step=step + 1, soft=soft.detach().cpu(), optimizer=opt.state_dict())
            if state_path is not None:
                save_state(state_path, state)
    kept = ("initial_loss", "best_loss", "best_step", "final_loss", "train_loss", "eval_loss")
    return {**soft_prompt.describe(state["best_tokens"]), "position": config.position,
            "initial_tokens": [int(i) for i in state["initial_tokens"]], **{k: state[k] for k in kept}}


def concept_images(source: Path | str, request: Request) -> list[Answer]:
    """The images of the forgotten concept in an answer folder or a build (`read_answers`), sorted by name."""
    found = [a for a in read_answers(source, UC60, OBJECTS)
             if (a.style if request.domain == "style" else a.object) == request.target]
    if not found:
        raise UsageError(f"{source}: no image of the {request.domain} {request.target!r} among the target images")
    return sorted(found, key=lambda a: (a.style, a.object, a.seed))


def targets_for(cell: tuple[str, str], images: list[Answer], count: int) -> list[Answer]:
    """Up to `count` target images for one prompt: its own cell's first, then the concept's others."""
    own = [a for a in images if (a.style, a.object) == cell]
    return (own + [a for a in images if (a.style, a.object) != cell])[:count]


@dataclass(kw_only=True)
class PromptReport(AttackReport):
    """What the prompt attack found and measured, and every setting it used (fractions in [0, 1])."""

    kind: ClassVar[str] = "prompts"
    model: str
    asr: float
    asr_prompts: float
    asr_plain: float
    prompts: list[dict]
    attack: dict
    targets: dict

    def to_markdown(self) -> str:
        """Headline numbers, the found prompts, then how they were obtained."""
        d, t, s, a = self.forget["domain"], self.forget["target"], self.sampling, self.attack
        lines = [f"# Adversarial prompts: forget {d} `{t}`", "",
                 "| ASR (images) | ASR (prompts) | before the attack | prompts | images |", "|---|---|---|---|---|",
                 f"| {percent(self.asr)} | {percent(self.asr_prompts)} | {percent(self.asr_plain)} | "
                 f"{len(self.prompts)} | {len(self.prompts) * len(s['seeds'])} |", "",
                 f"- ASR: the share of the images generated with the found prompts (seeds {s['seeds']}) in which the "
                 f"{d} judge finds `{t}`; by prompts: the share of prompts with at least one such image; before the "
                 "attack: the same share for the plain prompts.",
                 f"- Attack: {a['tokens']} {a['position']} token(s), {a['steps']} AdamW steps (lr {a['lr']}, weight "
                 f"decay {a['weight_decay']}), projection to the nearest real tokens {a['project']}, {a['batch']} "
                 f"noised draw(s) a step, best of {a['eval_draws']} fixed draws kept, seed {a['seed']}.",
                 f"- Targets: up to {a['targets']} image(s) a prompt from `{self.targets['source']}` "
                 f"({self.targets['images']} of the concept), VAE latent means at {s['size']} px.",
                 f"- Model: `{self.model}`; sampling: {s['scheduler']} {s['steps']} steps, guidance {s['guidance']}, "
                 f"{s['size']} px, {s['dtype']}, {s['generator']}.", *self.protocol.markdown_lines(),
                 "- Judges: " + ", ".join(f"{k}: `{v}`" for k, v in self.judges.items()) + ".", "",
                 "| prompt | adversarial prompt | loss: initial → best | detected |", "|---|---|---|---|"]
        lines += [f"| {p['prompt']} | `{p['adversarial_prompt']}` | {p['initial_loss']:.4f} → {p['best_loss']:.4f} | "
                  f"{p['detected']}/{len(s['seeds'])} |" for p in self.prompts]
        return "\n".join(lines) + "\n"

    def write(self, out: Path | str) -> dict[str, str]:
        """report.json and report.md into `out`, atomically (prompts.json is written as prompts are found);
        returns their paths."""
        return self.write_reports(Path(out), prompts="prompts.json")


def _attack_all(pipe: Any, request: Request, images: list[Answer], config: AttackConfig, proto: Protocol,
                size: int, out: Path, progress: bool, session: Session) -> list[dict]:
    """Attack every prompt of the request (resumable, one state file a prompt; each prompt's draws are
    seeded by the prompt, so the ranks of `session` deal the prompts round-robin); rank 0 writes
    prompts.json, and every rank gets every prompt's result in the request's order."""
    found = []
    cells = session.deal(request.cells)
    desc = "attack" + (f" [rank {session.rank}]" if session.world > 1 else "")
    for style, obj in tqdm(cells, desc=desc, unit="prompt", disable=not progress):
        text = prompt(style, obj, seed_words=proto.seed_images_words)
        latents = encode_images(pipe, targets_for((style, obj), images, config.targets), size)
        result = attack_prompt(pipe, text, latents, config, out / "state" / f"{style}_{obj}.pt", progress)
        found.append({"style": style, "object": obj, **result})
    by_cell = session.merge({(f["style"], f["object"]): f for f in found})
    found = [by_cell[c] for c in request.cells]
    if session.main:
        write_json(out / "prompts.json", found)
    return found


def _detected(judges: Sequence[Any], answers: list[Answer], request: Request, proto: Protocol, batch_size: int,
              workers: int, session: Session | None = None) -> list[bool]:
    """Whether the forgotten domain's judge finds the target in each image."""
    judge = judge_for(judges, request.domain)
    preds, _ = run_judges([judge], answers, batch_size, workers, resize=proto.judge_resize, session=session)
    target = judge.class_names[request.domain].index(request.target)
    return [bool(p == target) for p in preds[request.domain]]


def run_prompt_attack(unlearned: str | Path | Any, forget: str, target_images: Path | str, judges: Sequence[Any],
                      out: Path | str, *, styles: Sequence[str] | None = None, objects: Sequence[str] | None = None,
                      config: AttackConfig = DEFAULT_ATTACK, sampling: Sampling | None = None,
                      protocol: str | Protocol | None = None, judge_batch_size: int = JUDGE_BATCH,
                      workers: int = DECODE_WORKERS, progress: bool = True,
                      session: Session | None = None) -> PromptReport:
    """Attack every prompt of `forget` on the unlearned pipeline with images of the concept from
    `target_images` (an answer folder or a build), generate with the found prompts and with the plain ones
    over the sampling seeds, read ASR with `judges` under `protocol`, and write everything into `out`
    (resumable: finished prompts and images are kept). Under torchrun (`session`) the ranks share the
    prompts, the generation and the judging; rank 0 alone writes the report."""
    proto, out, sampling = get_protocol(protocol), Path(out), sampling or Sampling()
    session = session or Session.alone()
    request = forget_request(forget, styles, objects, judges)
    images = concept_images(target_images, request)
    session.from_main(lambda: check_settings(out / "attack.json", {
        "model": model_name(unlearned), "forget": forget, "attack": asdict(config), "size": sampling.size,
        "dtype": sampling.options.dtype, "targets": str(Path(target_images).resolve()),
        "seed_images_words": proto.seed_images_words}))
    pipe = sampling.load(unlearned)
    check_attackable(pipe)
    found = _attack_all(pipe, request, images, config, proto, sampling.size, out, progress, session)
    adversarial = AdversarialPipeline(pipe, {f["prompt"]: f["input_ids"] for f in found},
                                      f"{model_name(unlearned)} with the adversarial prompts of {out / 'prompts.json'}")
    sets = {}
    for key, p in (("plain", pipe), ("answers", adversarial)):
        sets[key] = read_set(sampling.generate(p, out / key, request, proto, progress=progress, session=session),
                             request, sampling.seeds)
    plain = score_answers(sets["plain"], forget, judges, protocol=proto, batch_size=judge_batch_size,
                          workers=workers, out=out / "plain" / "report", session=session)
    attacked = score_answers(sets["answers"], forget, judges, protocol=proto, batch_size=judge_batch_size,
                             workers=workers, out=out / "answers" / "report", session=session)
    hits = dict(zip([(a.style, a.object, a.seed) for a in sets["answers"]],
                    _detected(judges, sets["answers"], request, proto, judge_batch_size, workers, session),
                    strict=True))
    for f in found:
        f["detected"] = sum(hits[(f["style"], f["object"], int(s))] for s in sampling.seeds)
        f["images"] = [answer_name(f["style"], f["object"], int(s)) for s in sampling.seeds]
    report = PromptReport(
        forget={"domain": request.domain, "target": request.target}, model=model_name(unlearned),
        asr=attacked.residual_rate, asr_prompts=float(np.mean([f["detected"] > 0 for f in found])),
        asr_plain=plain.residual_rate, prompts=found, attack=asdict(config),
        targets={"source": str(target_images), "images": len(images)}, protocol=proto,
        sampling=sampling.to_dict(pipe), request=request.to_dict(), judges=judges_record(judges))
    if session.main:
        report.write(out)
    return report
