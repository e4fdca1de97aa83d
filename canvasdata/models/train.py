"""`canvasdata model train`: train a text-to-image model on a build and write a standard diffusers
StableDiffusionPipeline folder. From scratch (a word-level tokenizer from the build's prompts, the
autoencoder, then text encoder + UNet), or `init` = an existing pipeline whose UNet is fine-tuned with
the same loop (the published benchmark's path). Resumable at any moment: one atomic checkpoint
(weights, EMA, optimizer, phase and step) in `OUT/.canvasdata-model/`, and every step's random draws
derive from the recipe seed and the step; a sample grid PNG at each checkpoint; torchrun ranks split
each batch (DDP). The folder is sealed by `model.json`, written last."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from diffusers import StableDiffusionPipeline
from diffusers.training_utils import EMAModel
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import CLIPTokenizer

from canvasdata.checkpoints import load_optimizer, optimizer_tensors, read_state, save_state, under
from canvasdata.devices import Session, intra_op_threads, join_ranks, usable_cores
from canvasdata.errors import ModelError, UsageError
from canvasdata.formats.common import save_image
from canvasdata.locks import folder_lock
from canvasdata.models.card import model_card
from canvasdata.models.components import Parts, assemble, check_init, from_pipeline, from_scratch
from canvasdata.models.data import Captioned, cell_prompts, grid_cells, load_captioned, open_model_data, parse_exclude
from canvasdata.models.loop import (
    Autoencoding,
    Denoiser,
    Latents,
    encode_latents,
    reconstruction_psnr,
    unet_step,
    vae_step,
)
from canvasdata.models.output import (
    SAMPLES,
    STATE_DIR,
    finish_folder,
    identity_of,
    plan_out,
    read_record,
    sample_grid,
    write_identity,
)
from canvasdata.models.probe import probe
from canvasdata.models.recipe import ModelRecipe
from canvasdata.models.vocab import caption_token_ids, unknown_words, write_tokenizer
from canvasdata.sheet import contact_sheet

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "canvasdata-model-checkpoint-1"
GRID_CELLS = 8


@dataclass
class Progress:
    """Where training stands (the JSON part of the checkpoint)."""

    phase: str = "vae"
    step: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"vae": 0.0, "unet": 0.0})
    losses: dict[str, list[float]] = field(default_factory=lambda: {"vae": [], "unet": []})
    scaling_factor: float | None = None
    vae_psnr: float | None = None
    resumed_at: list[str] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)   # the judged probe at checkpoints (probe.py)


@dataclass
class Run:
    """Everything one training run holds."""

    recipe: ModelRecipe
    out: Path
    data: Captioned
    parts: Parts
    session: Session
    identity: dict[str, Any]
    init: bool
    progress: Progress
    budget: int | None          # steps this call may take (None: to the end)
    show: bool
    optimizer_values: dict = field(default_factory=dict)  # the checkpoint's non-tensor optimizer state
    judges: Sequence[Any] = ()  # judge the generations every `judge_every` denoiser steps (the learning curve)
    judge_every: int = 1000

    @property
    def ckpt(self) -> Path:
        return self.out / STATE_DIR / "checkpoint.safetensors"

    @property
    def main(self) -> bool:
        return self.session.main

    def spend(self) -> bool:
        """Take one step of this call's budget; False when it is spent."""
        if self.budget is None:
            return True
        self.budget -= 1
        return self.budget >= 0


def train_model(recipe: ModelRecipe, data: str | Path, out: str | Path, *, init: str | Path | None = None,
                exclude: str | None = None, split: str = "train", device: str = "auto", max_steps: int | None = None,
                overwrite: bool = False, allow_partial: bool = False, progress: bool = True,
                judges: Sequence[Any] = (), judge_every: int = 1000) -> dict[str, Any]:
    """Train (or resume) and return the model record (`OUT/model.json`; `{"stopped": step}` when
    `max_steps` ran out first: rerun to go on). `exclude` ('style:NAME', 'object:NAME' or
    'style:NAME+object:NAME') leaves those images out: a model that never saw them. With `judges`, every
    `judge_every` denoiser steps (and at the end) one seed of every cell is generated and judged: the
    record's `curve`."""
    out = Path(out)
    m = open_model_data(data, allow_partial)
    recipe = dataclasses.replace(recipe, resolution=recipe.resolution or m.facts.resolution)
    factor = 2 ** (len(recipe.vae.channels) - 1)
    if init is None and recipe.resolution % factor:
        raise UsageError(f"{recipe.source}: resolution {recipe.resolution} is not a multiple of the autoencoder's "
                         f"{factor}x downsampling")
    if init is not None:
        check_init(init)
    spec = parse_exclude(exclude, m)
    identity = identity_of(recipe, m, Path(data), split, exclude, init)
    session = join_ranks(device)
    for phase, batch in [("unet", recipe.unet.batch_size)] + ([] if init is not None else
                                                               [("vae", recipe.vae.batch_size)]):
        if batch % session.world:
            raise UsageError(f"{recipe.source}: {phase}.batch_size {batch} does not split evenly over "
                             f"{session.world} ranks (each takes an equal share of every batch); use a multiple "
                             f"of {session.world}")
    # under torchrun rank 0 alone plans (and with `overwrite` clears), locks and writes the folder; the others follow
    if session.from_main(lambda: plan_out(out, identity, overwrite)) == "done":
        return read_record(out)
    if session.main:
        (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    doing = f"{out} is being trained"
    with folder_lock(out / STATE_DIR / "lock", doing) if session.main else contextlib.nullcontext():
        if session.main:
            write_identity(out, identity)
        captioned = load_captioned(data, m, split, recipe.resolution, spec, allow_partial, progress and session.main)
        parts = _parts(recipe, captioned, out, init, session)
        run = Run(recipe, out, captioned, parts, session, identity, init is not None,
                  Progress(phase="unet" if init is not None else "vae"), max_steps, progress and session.main,
                  judges=judges, judge_every=judge_every)
        return _train(run)


def _parts(recipe: ModelRecipe, data: Captioned, out: Path, init: str | Path | None, session: Session) -> Parts:
    """The components: an existing pipeline's, or new ones over a tokenizer of the build's own words (written
    by rank 0, read back by the other ranks)."""
    if init is not None:
        parts = from_pipeline(init, recipe)
        for caption in dict.fromkeys(data.prompts):
            bad = unknown_words(parts.tokenizer, caption)
            if bad:
                raise UsageError(f"--init {init}: its tokenizer does not know the word {bad[0]!r} of the build's "
                                 f"caption {caption!r}; fine-tune a model whose vocabulary covers the captions")
        return parts
    folder = out / STATE_DIR / "tokenizer"
    tokenizer = write_tokenizer(data.prompts, folder, recipe.text.max_length) if session.main else None
    session.barrier()
    return from_scratch(recipe, CLIPTokenizer.from_pretrained(str(folder)) if tokenizer is None else tokenizer)


def _train(run: Run) -> dict[str, Any]:
    tensors = _resume(run)
    dev = run.session.device
    run.parts.vae.to(dev)
    if run.progress.phase == "vae" and not _train_vae(run, tensors, dev):
        return {"stopped": run.progress.step, "phase": "vae"}
    scale = run.progress.scaling_factor or (run.parts.vae.config.scaling_factor if run.init else None)
    latents = encode_latents(run.parts.vae, run.data.images, dev, scaling_factor=scale)
    run.progress.scaling_factor = latents.scaling_factor
    run.parts.vae.register_to_config(scaling_factor=latents.scaling_factor)
    if not _train_unet(run, latents, tensors if run.progress.step else {}, dev):
        return {"stopped": run.progress.step, "phase": "unet"}
    return _finish(run)


def _resume(run: Run) -> dict[str, torch.Tensor]:
    """Load the checkpoint, if any, into the parts and the progress; its tensors for the optimizer."""
    if not run.ckpt.exists():
        return {}
    tensors, meta = read_state(run.ckpt, CHECKPOINT_FORMAT, ModelError)
    if meta.get("identity") != run.identity:
        raise ModelError(f"{run.ckpt}: a checkpoint of another run; pass --overwrite to start afresh")
    run.progress = Progress(**meta["progress"])
    run.progress.resumed_at.append(f"{run.progress.phase}:{run.progress.step}")
    run.parts.vae.load_state_dict(under(tensors, "vae."))
    if run.progress.phase == "unet":
        run.parts.unet.load_state_dict(under(tensors, "unet."))
        run.parts.text_encoder.load_state_dict(under(tensors, "text."))
    run.optimizer_values = meta.get("optimizer", {})
    log.info("resuming %s at %s step %d", run.out, run.progress.phase, run.progress.step)
    return tensors


def _save(run: Run, extra: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> None:
    """One atomic checkpoint of everything (rank 0 writes; the others wait)."""
    if run.main:
        tensors = {f"vae.{k}": v for k, v in run.parts.vae.state_dict().items()}
        if run.progress.phase == "unet":
            tensors.update({f"unet.{k}": v for k, v in run.parts.unet.state_dict().items()})
            tensors.update({f"text.{k}": v for k, v in run.parts.text_encoder.state_dict().items()})
        opt_tensors, values = optimizer_tensors(opt)
        save_state(run.ckpt, {**tensors, **opt_tensors, **extra},
                   {"format": CHECKPOINT_FORMAT, "identity": run.identity, "progress": asdict(run.progress),
                    "optimizer": values}, ModelError)
    run.session.barrier()


def _train_vae(run: Run, tensors: dict[str, torch.Tensor], dev: torch.device) -> bool:
    """The autoencoder phase; False when this call's step budget ran out first (checkpoint written)."""
    cfg, p, vae = run.recipe.vae, run.progress, run.parts.vae
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0)
    if p.step and tensors:
        load_optimizer(opt, tensors, run.optimizer_values)
    vae.train()
    model = Autoencoding(vae)
    wrapped = DistributedDataParallel(model) if run.session.distributed else model
    every = run.recipe.sample.checkpoint_every
    with tqdm(total=cfg.steps, initial=p.step, desc="autoencoder", unit="step", disable=not run.show) as bar:
        while p.step < cfg.steps:
            if not run.spend():
                _save(run, {}, opt)
                return False
            t0 = time.perf_counter()
            loss = vae_step(wrapped, opt, run.data.images, cfg, run.recipe.seed, p.step, run.session.rank,
                            run.session.world, dev)
            if run.session.distributed:
                loss = _mean_over_ranks(loss, dev)
            p.losses["vae"].append(round(loss, 5))
            p.seconds["vae"] += time.perf_counter() - t0
            p.step += 1
            bar.set_postfix(loss=f"{p.losses['vae'][-1]:.4f}")
            bar.update()
            if p.step % every == 0 and p.step < cfg.steps:
                _save(run, {}, opt)
                _reconstructions(run, dev)
    vae.eval()
    _reconstructions(run, dev)
    p.vae_psnr = round(reconstruction_psnr(vae, run.data.images[:512], dev), 2)
    p.phase, p.step = "unet", 0
    _save(run, {}, torch.optim.AdamW([nn.Parameter(torch.zeros(1))]))
    return True


@torch.no_grad()
def _reconstructions(run: Run, dev: torch.device) -> None:
    """Eight training images above their reconstructions (`samples/vae_{step}.png`; rank 0, every core
    while the other ranks wait)."""
    if not run.main:
        return
    vae = run.parts.vae
    x = run.data.images[:: max(1, len(run.data) // 8)][:8].to(dev)
    was = vae.training
    vae.eval()
    with intra_op_threads(usable_cores()):
        y = vae.decode(vae.encode(x).latent_dist.mean).sample
    vae.train(was)
    tiles = torch.cat([x, y]).add(1).div(2).clamp(0, 1).cpu()
    sheet = contact_sheet(tiles, ncol=len(x))
    path = run.out / SAMPLES / f"vae_{run.progress.step:06d}.png"
    save_image(sheet.resize((sheet.width * 3, sheet.height * 3)), path)


def _train_unet(run: Run, latents: Latents, tensors: dict[str, torch.Tensor], dev: torch.device) -> bool:
    """The denoiser phase (and the text encoder when from scratch); False when the budget ran out first."""
    cfg, p, parts = run.recipe.unet, run.progress, run.parts
    text_trains = not run.init and cfg.text_lr > 0
    parts.text_encoder.requires_grad_(text_trains)
    parts.vae.requires_grad_(False)
    model = Denoiser(parts.unet, parts.text_encoder).to(dev).train()
    params = [q for q in model.parameters() if q.requires_grad]
    groups = [{"params": list(parts.unet.parameters()), "lr": cfg.lr, "initial_lr": cfg.lr}]
    if text_trains:
        groups.append({"params": list(parts.text_encoder.parameters()), "lr": cfg.text_lr, "initial_lr": cfg.text_lr})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, power=2 / 3) if cfg.ema_decay else None
    if tensors:
        load_optimizer(opt, tensors, run.optimizer_values)
        if ema is not None:
            saved = under(tensors, "ema.")
            ema.shadow_params = [saved[str(i)].to(dev) for i in range(len(saved))]
            ema.optimization_step = p.step
    wrapped = DistributedDataParallel(model) if run.session.distributed else model
    ids, empty = caption_token_ids(run.parts.tokenizer, run.data.prompts)
    every = run.recipe.sample.checkpoint_every
    with tqdm(total=cfg.steps, initial=p.step, desc="denoiser", unit="step", disable=not run.show) as bar:
        while p.step < cfg.steps:
            if not run.spend():
                _save(run, _ema_tensors(ema), opt)
                return False
            t0 = time.perf_counter()
            loss = unet_step(wrapped, opt, ema, params, latents, ids, empty, parts.noise, cfg, run.recipe.seed,
                             p.step, run.session.rank, run.session.world, dev)
            if run.session.distributed:  # the whole batch's loss: each rank's is its share's
                loss = _mean_over_ranks(loss, dev)
            p.losses["unet"].append(round(loss, 5))
            p.seconds["unet"] += time.perf_counter() - t0
            p.step += 1
            bar.set_postfix(loss=f"{loss:.4f}")
            bar.update()
            if p.step % run.judge_every == 0 and p.step < cfg.steps:
                _probe(run, ema, params)
            if p.step % every == 0 and p.step < cfg.steps:
                _save(run, _ema_tensors(ema), opt)
                _samples(run, ema, params)
    if not any(point["step"] == p.step for point in p.curve):
        _probe(run, ema, params)
    if ema is not None:
        ema.copy_to(params)
    return True


def _mean_over_ranks(value: float, dev: torch.device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=dev)
    dist.all_reduce(t)
    return float(t) / dist.get_world_size()


def _ema_tensors(ema: EMAModel | None) -> dict[str, torch.Tensor]:
    return {} if ema is None else {f"ema.{i}": t for i, t in enumerate(ema.shadow_params)}


def pipeline_of(run: Run) -> StableDiffusionPipeline:
    """The parts as a pipeline on the training device."""
    return assemble(run.parts).to(run.session.device)


def _samples(run: Run, ema: EMAModel | None, params: list[nn.Parameter]) -> None:
    """The sample grid of this checkpoint (EMA weights), `samples/step_{step}.png` (rank 0, every core while
    the other ranks wait)."""
    if not run.main:
        return
    if ema is not None:
        ema.store(params)
        ema.copy_to(params)
    cells = grid_cells(run.data, GRID_CELLS)
    run.parts.unet.eval()
    with intra_op_threads(usable_cores()):
        sample_grid(pipeline_of(run), cell_prompts(run.data, cells), [f"{s[:6]}/{o[:5]}" for s, o in cells],
                    run.out / SAMPLES / f"step_{run.progress.step:06d}.png", run.recipe.sample.steps,
                    run.recipe.sample.guidance)
    run.parts.unet.train()
    if ema is not None:
        ema.restore(params)


def _probe(run: Run, ema: EMAModel | None, params: list[nn.Parameter]) -> None:
    """One point of the learning curve (EMA weights; no-op without judges): the ranks share the generation,
    rank 0 judges, every rank records the point."""
    if not run.judges:
        return
    if ema is not None:
        ema.store(params)
        ema.copy_to(params)
    run.parts.unet.eval()
    run.parts.text_encoder.eval()
    point = probe(pipeline_of(run), run.out / STATE_DIR / "probe", sorted(set(run.data.styles)),
                  sorted(set(run.data.objects)), run.judges, size=run.recipe.resolution,
                  steps=run.recipe.sample.steps, guidance=run.recipe.sample.guidance, step=run.progress.step,
                  session=run.session)
    run.progress.curve.append(point)
    if run.main:
        log.info("judged probe at step %d: style %.1f %%, object %.1f %%", point["step"], point["style"] * 100,
                 point["object"] * 100)
    run.parts.unet.train()
    run.parts.text_encoder.train()
    if ema is not None:
        ema.restore(params)


def _finish(run: Run) -> dict[str, Any]:
    """Save the pipeline folder with its card and record (rank 0)."""
    p = run.progress
    record = {"identity": run.identity, "images": len(run.data), "scaling_factor": p.scaling_factor,
              "vae_psnr": p.vae_psnr,
              "steps": {"vae": 0 if run.init else run.recipe.vae.steps, "unet": run.recipe.unet.steps},
              "seconds": {k: round(v, 1) for k, v in p.seconds.items()}, "losses": p.losses,
              "resumed_at": p.resumed_at, "curve": p.curve, "device": str(run.session.device),
              "ranks": run.session.world,
              "parameters": {name: sum(q.numel() for q in getattr(run.parts, name).parameters())
                             for name in ("vae", "text_encoder", "unet")},
              "example_prompt": run.data.prompts[0], "styles": sorted(set(run.data.styles)),
              "objects": sorted(set(run.data.objects)), "torch": torch.__version__}
    if not run.main:
        run.session.barrier()
        return record
    run.parts.unet.eval()
    run.parts.text_encoder.eval()
    pipe = pipeline_of(run)
    cells = grid_cells(run.data, GRID_CELLS)
    sample_grid(pipe, cell_prompts(run.data, cells), [f"{s[:6]}/{o[:5]}" for s, o in cells],
                run.out / SAMPLES / "final.png", run.recipe.sample.steps, run.recipe.sample.guidance)
    record = finish_folder(pipe.to("cpu"), run.out, record, model_card(record))
    run.session.barrier()
    return record
