"""The model card (README.md of a model folder): what the model was trained on, how, and how well it
generates when judges were given."""

from __future__ import annotations

import json
from typing import Any

import yaml


def model_card(record: dict[str, Any]) -> str:
    """Markdown with YAML front matter (diffusers' library tag) from a `model.json` record."""
    ident = record["identity"]
    recipe = ident["recipe"]
    front = {"library_name": "diffusers", "pipeline_tag": "text-to-image",
             "tags": ["canvasdata", "unlearning", "text-to-image", "stable-diffusion"]}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# canvasdata model `{recipe['name']}` on `{ident['data_recipe']}`", "",
             "A StableDiffusionPipeline (AutoencoderKL, CLIPTextModel + tokenizer, UNet2DConditionModel, DDIM) "
             "trained by `canvasdata model train`. It loads with diffusers alone:", "",
             "```python", "from diffusers import StableDiffusionPipeline",
             "pipe = StableDiffusionPipeline.from_pretrained(\"PATH\")",
             f"image = pipe(\"{record.get('example_prompt', '')}\", num_inference_steps=50, "
             "guidance_scale=7.5).images[0]", "```", "",
             "## Training", "",
             f"- Data: build `{ident['data_recipe']}` (recipe hash {ident['data_hash']}), split `{ident['split']}`, "
             f"{record['images']} images" + (f", excluding `{ident['exclude']}`" if ident["exclude"] else "") + ".",
             f"- Start: {'fine-tuned from `' + ident['init'] + '`' if ident['init'] else 'from scratch'}; "
             f"resolution {recipe['resolution']} px; latent scaling factor {record['scaling_factor']:.4f}.",
             f"- Steps: autoencoder {record['steps']['vae']}, denoiser {record['steps']['unet']} "
             f"(batch {recipe['unet']['batch_size']}, lr {recipe['unet']['lr']}, EMA {recipe['unet']['ema_decay']}, "
             f"caption dropout {recipe['unet']['caption_dropout']}, min-SNR gamma {recipe['unet']['snr_gamma']}, "
             f"{recipe['unet']['prediction_type']}).",
             f"- Parameters: {_params(record)}.",
             f"- Time: {record['seconds']['vae']:.0f} s autoencoder, {record['seconds']['unet']:.0f} s denoiser "
             f"on {record['device']}.",
             f"- Final losses (mean of the last 50 steps): {_final(record)}.", ""]
    judged = record.get("judged")
    lines += ["## How well it generates", ""]
    if judged:
        lines += [f"Judged by `{judged['judges']}` on {judged['images']} generations ({judged['steps']} DDIM steps, "
                  f"guidance {judged['guidance']}, seeds {judged['seeds']}): the prompted style is recognised in "
                  f"**{judged['style'] * 100:.1f} %** and the prompted object in "
                  f"**{judged['object'] * 100:.1f} %**.", ""]
    else:
        lines += ["Not judged yet (`canvasdata model train ... --judges J`, or `canvasdata world run`, judges it).", ""]
    curve = record.get("curve") or []
    if curve:
        lines += ["## Learning curve", "",
                  "At checkpoints, one seed of every trained cell generated with the EMA weights "
                  f"({recipe['sample']['steps']} DDIM steps, guidance {recipe['sample']['guidance']}) and judged:", "",
                  "| denoiser step | style | object |", "|---:|---:|---:|"]
        lines += [f"| {c['step']} | {c['style'] * 100:.1f} % | {c['object'] * 100:.1f} % |" for c in curve]
        lines += [""]
    lines += ["## Recipe", "", "```json", json.dumps(recipe, indent=1), "```", ""]
    return "\n".join(lines)


def _params(record: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in record["parameters"].items())


def _final(record: dict[str, Any]) -> str:
    out = []
    for k, v in record["losses"].items():
        if v:
            tail = v[-50:]
            out.append(f"{k} {sum(tail) / len(tail):.4f}")
    return ", ".join(out) or "n/a"
