"""A tiny Stable Diffusion pipeline built from small configs with a locally written tokenizer, for
offline tests: nothing is downloaded. `tiny_pipeline(folder)` saves it with save_pretrained and
returns the directory, so tests exercise `from_pretrained` exactly as users do."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def write_tokenizer(folder: Path) -> Path:
    """A CLIP BPE tokenizer over single printable characters (vocab.json + empty merges.txt),
    model_max_length 77 as the pipeline expects."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in (chr(i) for i in range(33, 127)):
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tok.save_pretrained(str(folder))
    return folder


def tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Build, save and return a tiny StableDiffusionPipeline directory (UNet (4, 8) channels with
    sample size 8, VAE [4, 8] so 8-px latents decode to 16 px natively; any multiple of 8 px works)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tokenizer = CLIPTokenizer.from_pretrained(str(write_tokenizer(folder / "_tokenizer")))
    text = CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=8, intermediate_size=16, num_hidden_layers=2,
                                        num_attention_heads=2, max_position_embeddings=77, bos_token_id=0,
                                        eos_token_id=1, pad_token_id=1, projection_dim=8))
    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                                norm_num_groups=2, attention_head_dim=2)
    vae = AutoencoderKL(block_out_channels=[4, 8], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], norm_num_groups=2, sample_size=16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tokenizer, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder / "pipe"))
    return folder / "pipe"
