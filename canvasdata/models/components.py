"""The parts of a text-to-image model, built from a model recipe with stock diffusers and transformers
classes (so the saved folder loads with `StableDiffusionPipeline.from_pretrained` and no canvasdata
code), or taken from an existing pipeline (`--init`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from canvasdata.errors import UsageError
from canvasdata.models.recipe import ModelRecipe, NoiseConfig
from canvasdata.sources.diffusers import SD_PIPELINES, check_sd_folder


@dataclass
class Parts:
    """The components being trained or kept."""

    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    unet: UNet2DConditionModel
    noise: DDPMScheduler

    @property
    def latent_size(self) -> int:
        return int(self.unet.config.sample_size)


def norm_groups(channels: tuple[int, ...]) -> int:
    """The largest group count (at most 32) dividing every channel count."""
    return next(g for g in (32, 16, 8, 4, 2, 1) if all(c % g == 0 for c in channels))


def make_vae(recipe: ModelRecipe) -> AutoencoderKL:
    v = recipe.vae
    n = len(v.channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=v.latent_channels,
                         block_out_channels=list(v.channels), layers_per_block=v.layers_per_block,
                         down_block_types=["DownEncoderBlock2D"] * n, up_block_types=["UpDecoderBlock2D"] * n,
                         norm_num_groups=norm_groups(v.channels), sample_size=recipe.resolution)


def make_text_encoder(recipe: ModelRecipe, vocab_size: int) -> CLIPTextModel:
    t = recipe.text
    return CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=t.hidden_size,
                                        intermediate_size=t.intermediate_size, num_hidden_layers=t.layers,
                                        num_attention_heads=t.heads, max_position_embeddings=t.max_length,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1,
                                        projection_dim=t.hidden_size))


def make_unet(recipe: ModelRecipe, latent_size: int, latent_channels: int, context_dim: int) -> UNet2DConditionModel:
    u = recipe.unet
    n, k = len(u.channels), u.cross_attention_levels
    down = ["CrossAttnDownBlock2D"] * k + ["DownBlock2D"] * (n - k)
    up = ["UpBlock2D"] * (n - k) + ["CrossAttnUpBlock2D"] * k
    return UNet2DConditionModel(sample_size=latent_size, in_channels=latent_channels, out_channels=latent_channels,
                                block_out_channels=tuple(u.channels), layers_per_block=u.layers_per_block,
                                down_block_types=tuple(down), up_block_types=tuple(up),
                                cross_attention_dim=context_dim, attention_head_dim=u.attention_head_dim,
                                norm_num_groups=norm_groups(u.channels))


def noise_scheduler(noise: NoiseConfig, prediction_type: str) -> DDPMScheduler:
    """The training scheduler (its add_noise and get_velocity are the forward process)."""
    return DDPMScheduler(num_train_timesteps=noise.train_timesteps, beta_schedule=noise.beta_schedule,
                         beta_start=noise.beta_start, beta_end=noise.beta_end, prediction_type=prediction_type,
                         clip_sample=False)


def sampling_scheduler(noise: DDPMScheduler) -> DDIMScheduler:
    """The scheduler saved with the pipeline: DDIM with the training betas (the protocol's sampler)."""
    return DDIMScheduler.from_config(noise.config, clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def from_scratch(recipe: ModelRecipe, tokenizer: CLIPTokenizer) -> Parts:
    """New components sized by the recipe (seeded by it)."""
    torch.manual_seed(recipe.seed)
    vae = make_vae(recipe)
    text = make_text_encoder(recipe, len(tokenizer))
    factor = 2 ** (len(recipe.vae.channels) - 1)
    unet = make_unet(recipe, recipe.resolution // factor, recipe.vae.latent_channels, recipe.text.hidden_size)
    return Parts(vae, text, tokenizer, unet, noise_scheduler(recipe.noise, recipe.unet.prediction_type))


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_init(init: Path | str) -> None:
    """`--init`: a local StableDiffusionPipeline folder (checked here), or a Hub id `owner/name` (checked
    by diffusers when loaded); anything else is one line naming it."""
    if Path(init).exists():
        check_sd_folder(Path(init), "--init", "model train")
    elif not HUB_ID.match(str(init)):
        raise UsageError(f"--init {init}: no such pipeline folder (nor a Hub id owner/name)")


def from_pipeline(path: Path | str, recipe: ModelRecipe) -> Parts:
    """The components of an existing StableDiffusionPipeline folder or Hub id (fine-tuning: `--init`)."""
    check_init(path)
    pipe = StableDiffusionPipeline.from_pretrained(str(path), safety_checker=None, requires_safety_checker=False)
    if type(pipe).__name__ not in SD_PIPELINES:
        raise UsageError(f"--init {path}: a {type(pipe).__name__}, not a StableDiffusionPipeline")
    prediction = pipe.scheduler.config.get("prediction_type", recipe.unet.prediction_type)
    noise = DDPMScheduler.from_config(pipe.scheduler.config, prediction_type=prediction)
    return Parts(pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.unet, noise)


def assemble(parts: Parts) -> StableDiffusionPipeline:
    """A StableDiffusionPipeline of the parts (no safety checker: the images are the benchmark's own)."""
    return StableDiffusionPipeline(vae=parts.vae, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer,
                                   unet=parts.unet, scheduler=sampling_scheduler(parts.noise), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
