"""The training steps of a text-to-image model, one readable loop per phase of library parts (after
diffusers' examples/text_to_image): the autoencoder (reconstruction + KL), then the denoiser and text
encoder on cached latents (the scheduler's `add_noise` / `get_velocity`, `compute_snr` for min-SNR
weighting, `EMAModel`). Every random draw of step k comes from `derive_seed(recipe seed, phase, k)`:
a step's batch, flips, noise, timesteps and dropped captions do not depend on the steps before it,
so a resumed run repeats exactly what an uninterrupted one does."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel, compute_snr
from torch import nn
from transformers import CLIPTextModel

from canvasdata.models.recipe import UNetConfig, VAEConfig
from canvasdata.seeds import derive_seed


def generator(seed: int, phase: str, step: int) -> torch.Generator:
    """The CPU generator of one step of one phase."""
    return torch.Generator().manual_seed(derive_seed(seed, phase, step))


def lr_at(step: int, total: int, base: float, warmup: int, min_ratio: float) -> float:
    """Linear warmup, then cosine decay to `base * min_ratio` (a function of the step alone)."""
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def flip_some(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Mirror the rows of `x` where `flips` is true."""
    return torch.where(flips.view(-1, 1, 1, 1), x.flip(-1), x)


class Autoencoding(nn.Module):
    """The autoencoder's training pass as one module (one DDP wrapper syncs its gradients): the
    reconstruction of `x` through a posterior sample drawn with the given standard-normal `eps`, and the
    posterior's KL divergence per image."""

    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        post = self.vae.encode(x).latent_dist
        return self.vae.decode(post.mean + post.std * eps).sample, post.kl()


def latent_shape(cfg: VAEConfig, images: torch.Tensor, batch: int) -> tuple[int, int, int, int]:
    """The shape of a batch of `images`' latents under the recipe's autoencoder."""
    factor = 2 ** (len(cfg.channels) - 1)
    return (batch, cfg.latent_channels, images.shape[-2] // factor, images.shape[-1] // factor)


def vae_step(model: nn.Module, opt: torch.optim.Optimizer, images: torch.Tensor, cfg: VAEConfig, seed: int,
             step: int, rank: int, world: int, device: torch.device) -> float:
    """One autoencoder update (`model`: an `Autoencoding`, DDP-wrapped under torchrun) on a seeded batch,
    this rank's share of it: L1 + MSE reconstruction plus a small KL term. GroupNorm sees one image at a
    time, so the ranks' averaged gradients are the whole batch's."""
    g = generator(seed, "vae", step)
    b = cfg.batch_size
    idx = torch.randint(0, len(images), (b,), generator=g)
    flips = torch.rand(b, generator=g) < 0.5
    eps = torch.randn(latent_shape(cfg, images, b), generator=g)
    mine = slice(rank, None, world)
    x = flip_some(images[idx], flips)[mine].to(device)
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg.steps, cfg.lr, min(100, cfg.steps // 10), 0.1)
    recon, kl = model(x, eps[mine].to(device))
    loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + cfg.kl_weight * kl.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


@dataclass
class Latents:
    """Each image's posterior mean and std, unflipped and mirrored, and the scaling factor."""

    mean: torch.Tensor      # [2, N, C, h, w]: index 0 as stored, 1 mirrored
    std: torch.Tensor
    scaling_factor: float


@torch.no_grad()
def encode_latents(vae: AutoencoderKL, images: torch.Tensor, device: torch.device, batch: int = 64,
                   scaling_factor: float | None = None) -> Latents:
    """Encode every image (and its mirror) once; the scaling factor makes the latents unit-variance
    (SD's recipe) unless the model already has one (`--init`)."""
    vae.eval()
    means, stds = [[], []], [[], []]
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(device)
        for k, xx in enumerate((x, x.flip(-1))):
            post = vae.encode(xx).latent_dist
            means[k].append(post.mean.cpu())
            stds[k].append(post.std.cpu())
    mean = torch.stack([torch.cat(m) for m in means])
    std = torch.stack([torch.cat(s) for s in stds])
    if scaling_factor is None:
        scaling_factor = float(1.0 / torch.sqrt((mean ** 2).mean() - mean.mean() ** 2 + (std ** 2).mean()))
    return Latents(mean, std, scaling_factor)


@torch.no_grad()
def reconstruction_psnr(vae: AutoencoderKL, images: torch.Tensor, device: torch.device, batch: int = 64) -> float:
    """Mean PSNR (dB, images in [-1, 1] read as [0, 1]) of the autoencoder's reconstructions of `images`."""
    vae.eval()
    psnrs = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(device)
        y = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        mse = ((y - x) / 2).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnrs.append(-10 * torch.log10(mse))
    return float(torch.cat(psnrs).mean())


class Denoiser(nn.Module):
    """The text encoder and the UNet as one module (one DDP wrapper trains both)."""

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel) -> None:
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder

    def forward(self, noisy: torch.Tensor, t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        context = self.text_encoder(ids)[0]
        return self.unet(noisy, t, context).sample


def unet_step(model: nn.Module, opt: torch.optim.Optimizer, ema: EMAModel | None, params: list[nn.Parameter],
              latents: Latents, ids: torch.Tensor, empty: torch.Tensor, noise: DDPMScheduler, cfg: UNetConfig,
              seed: int, step: int, rank: int, world: int, device: torch.device) -> float:
    """One denoiser update on a seeded batch (this rank's share of it): caption dropout, min-SNR weights."""
    g = generator(seed, "unet", step)
    b = cfg.batch_size
    idx = torch.randint(0, latents.mean.shape[1], (b,), generator=g)
    flip = (torch.rand(b, generator=g) < 0.5).long() if cfg.hflip else torch.zeros(b, dtype=torch.long)
    eps = torch.randn((b, *latents.mean.shape[2:]), generator=g)
    z = (latents.mean[flip, idx] + latents.std[flip, idx] * eps) * latents.scaling_factor
    noise_draw = torch.randn(z.shape, generator=g)
    t = torch.randint(0, noise.config.num_train_timesteps, (b,), generator=g)
    drop = torch.rand(b, generator=g) < cfg.caption_dropout
    mine = slice(rank, None, world)
    z, noise_draw, t = z[mine].to(device), noise_draw[mine].to(device), t[mine].to(device)
    tokens = torch.where(drop.view(-1, 1), empty.view(1, -1), ids[idx])[mine].to(device)
    noisy = noise.add_noise(z, noise_draw, t)
    target = noise_draw if cfg.prediction_type == "epsilon" else noise.get_velocity(z, noise_draw, t)
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg.steps, group["initial_lr"], cfg.warmup_steps, cfg.min_lr_ratio)
    pred = model(noisy, t, tokens)
    loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
    if cfg.snr_gamma:
        snr = compute_snr(noise, t)
        weight = torch.clamp(snr, max=cfg.snr_gamma) / (snr + 1 if cfg.prediction_type == "v_prediction" else snr)
        loss = loss * weight
    loss = loss.mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    if ema is not None:
        ema.step(params)
    return float(loss.detach())
