"""Which model-recipe field makes the tiny model draw the prompted style: for each variant (one or more
`[unet]` fields changed from the world's model recipe), a fresh denoiser and text encoder are trained on a
finished world's training split, over the world model's own autoencoder (so every variant sees the same
latents), with the shipped loop (`models.loop.unet_step`, EMA, the recipe's seeds); at checkpoints the EMA
weights draw one seed of every cell (the `model train --judges` probe: 25 DDIM steps, guidance 7.5) and the
world's judges read them. The learning-rate schedule runs over `--schedule` steps (the recipe's length) and
training stops at `--steps`, so a short run is the start of a full one.

    python bench/model_levers.py --world DIR --variants "unet.channels=32,64,128" base "unet.snr_gamma=0"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _report import table, write_section
from diffusers import AutoencoderKL
from diffusers.training_utils import EMAModel
from transformers import CLIPTokenizer

from canvasdata.judges import load_judge
from canvasdata.models.components import Parts, assemble, make_text_encoder, make_unet, noise_scheduler
from canvasdata.models.data import load_captioned, open_model_data
from canvasdata.models.loop import Denoiser, encode_latents, unet_step
from canvasdata.models.probe import probe
from canvasdata.models.recipe import ModelRecipe, UNetConfig, load_model_recipe
from canvasdata.models.vocab import caption_token_ids
from canvasdata.world.recipe import load_world_recipe


def variant(recipe: ModelRecipe, spec: str, schedule: int) -> ModelRecipe:
    """The recipe with `unet.FIELD=VALUE[;unet.FIELD=VALUE]` applied ('base': unchanged) and the schedule's length."""
    changes: dict[str, Any] = {"steps": schedule}
    for part in [] if spec == "base" else spec.split(";"):
        key, value = part.split("=", 1)
        field = key.removeprefix("unet.")
        kind = type(getattr(UNetConfig(), field))
        changes[field] = tuple(int(v) for v in value.split(",")) if kind is tuple else kind(value)
    return dataclasses.replace(recipe, unet=dataclasses.replace(recipe.unet, **changes))


def run_variant(world: Path, recipe: ModelRecipe, steps: int, every: int, out: Path) -> dict[str, Any]:
    """Train one variant for `steps` and probe it every `every` steps; its measurements."""
    m = open_model_data(world / "data")
    data = load_captioned(world / "data", m, "train", recipe.resolution, None, False, False)
    tok = CLIPTokenizer.from_pretrained(str(world / "model" / "tokenizer"))
    vae = AutoencoderKL.from_pretrained(str(world / "model" / "vae"))
    u = recipe.unet
    torch.manual_seed(recipe.seed)
    text = make_text_encoder(recipe, len(tok))
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    unet = make_unet(recipe, recipe.resolution // factor, vae.config.latent_channels, recipe.text.hidden_size)
    parts = Parts(vae, text, tok, unet, noise_scheduler(recipe.noise, u.prediction_type))
    cpu = torch.device("cpu")
    latents = encode_latents(vae, data.images, cpu, scaling_factor=vae.config.scaling_factor)
    model = Denoiser(unet, text).train()
    params = list(model.parameters())
    opt = torch.optim.AdamW([{"params": list(unet.parameters()), "lr": u.lr, "initial_lr": u.lr},
                             {"params": list(text.parameters()), "lr": u.text_lr, "initial_lr": u.text_lr}],
                            weight_decay=u.weight_decay)
    ema = EMAModel(params, decay=u.ema_decay, use_ema_warmup=True, power=2 / 3)
    ids, empty = caption_token_ids(tok, data.prompts)
    judges = [load_judge(world / "judges", "cpu")]
    styles, objects = sorted(set(data.styles)), sorted(set(data.objects))
    curve, losses, train_s = [], [], 0.0
    for step in range(steps):
        t0 = time.perf_counter()
        losses.append(unet_step(model, opt, ema, params, latents, ids, empty, parts.noise, u, recipe.seed,
                                step, 0, 1, cpu))
        train_s += time.perf_counter() - t0
        if (step + 1) % every == 0 or step + 1 == steps:
            ema.store(params)
            ema.copy_to(params)
            model.eval()
            judged = probe(assemble(parts), out / "probe", styles, objects, judges, size=recipe.resolution,
                           steps=recipe.sample.steps, guidance=recipe.sample.guidance, step=step + 1)
            curve.append(judged)
            print(judged, file=sys.stderr, flush=True)
            ema.restore(params)
            model.train()
    return {"parameters": sum(p.numel() for p in unet.parameters()), "steps_per_s": steps / train_s,
            "loss": sum(losses[-100:]) / len(losses[-100:]), "curve": curve}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", required=True, help="a world folder whose model stage is done")
    p.add_argument("--size", default="tiny", help="its world recipe")
    p.add_argument("--variants", nargs="+", default=["unet.channels=32,64,128", "base", "unet.snr_gamma=0"])
    p.add_argument("--steps", type=int, default=1000, help="training steps of each variant")
    p.add_argument("--schedule", type=int, default=None, help="learning-rate schedule length (default: the recipe's)")
    p.add_argument("--every", type=int, default=500, help="steps between probes")
    p.add_argument("--out", default="/tmp/canvasdata-model-levers")
    a = p.parse_args(argv)
    world = Path(a.world).resolve()
    base = load_model_recipe(load_world_recipe(a.size).model)
    base = dataclasses.replace(base, resolution=base.resolution or 64)
    schedule = a.schedule or base.unet.steps
    rows, images = [], 0
    for spec in a.variants:
        r = run_variant(world, variant(base, spec, schedule), a.steps, a.every, Path(a.out) / spec)
        curve = "; ".join(f"{c['step']}: {100 * c['style']:.1f} / {100 * c['object']:.1f}" for c in r["curve"])
        images = r["curve"][-1]["images"]
        rows.append((spec, f"{r['parameters'] / 1e6:.2f} M", round(r["steps_per_s"], 2), round(r["loss"], 4), curve))
    body = "\n\n".join([
        f"Denoiser variants on the world `{a.world}` (its training split, autoencoder and judges), the model "
        f"recipe `{base.name}` with the named `[unet]` fields changed; learning-rate schedule over {schedule} "
        f"steps, stopped at {a.steps}. Probe: one seed of every cell, {base.sample.steps} DDIM steps, guidance "
        f"{base.sample.guidance}, judged style / object % "
        f"({images} images a probe). Steps/s on "
        f"{torch.get_num_threads()} thread(s), batch {base.unet.batch_size}.",
        table(["variant", "UNet", "steps/s", "loss (last 100)", "probe at step: style / object %"], rows)])
    write_section("model_levers", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
