"""Model recipes: TOML under `models/` saying how `canvasdata model train` builds and trains a
text-to-image model (component sizes, steps, batch, learning rates, EMA, caption dropout), validated
into frozen dataclasses. A leaf: reading a recipe imports neither torch nor diffusers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from canvasdata.fields import Fields
from canvasdata.tomlfiles import RecipeTable, load_toml, resolve_recipe_path

PREDICTION_TYPES = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("scaled_linear", "linear", "squaredcos_cap_v2")


@dataclass(frozen=True)
class VAEConfig:
    """The autoencoder (AutoencoderKL), trained first when the model starts from scratch."""

    channels: tuple[int, ...] = (32, 64, 64)   # one entry a block: 2**(len-1) times down
    layers_per_block: int = 1
    latent_channels: int = 4
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    kl_weight: float = 1e-6


@dataclass(frozen=True)
class TextConfig:
    """The text encoder (CLIPTextModel) over a word-level vocabulary built from the build's prompts."""

    hidden_size: int = 64
    layers: int = 2
    heads: int = 2
    intermediate_size: int = 128
    max_length: int = 24             # tokens a prompt (start and end tokens included)


@dataclass(frozen=True)
class UNetConfig:
    """The denoiser (UNet2DConditionModel) and its training."""

    channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    cross_attention_levels: int = 2  # the first N resolutions carry cross-attention
    steps: int = 3000
    batch_size: int = 32
    lr: float = 5e-4
    text_lr: float = 5e-4            # the text encoder's (trained jointly when from scratch; frozen with --init)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1        # cosine decay to lr x this
    weight_decay: float = 0.01
    ema_decay: float = 0.999         # 0 = no EMA
    caption_dropout: float = 0.1     # empty captions, so classifier-free guidance has an unconditional branch
    snr_gamma: float = 5.0           # min-SNR loss weighting (0 = plain MSE)
    prediction_type: str = "epsilon"
    hflip: bool = True


@dataclass(frozen=True)
class NoiseConfig:
    """The training noise schedule (DDPMScheduler), also the sampling scheduler's betas."""

    train_timesteps: int = 1000
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012


@dataclass(frozen=True)
class SampleConfig:
    """Checkpoints and the sample grid drawn at each of them."""

    checkpoint_every: int = 250
    steps: int = 25
    guidance: float = 7.5


@dataclass(frozen=True)
class ModelRecipe(RecipeTable):
    """How to build and train a text-to-image model on a build."""

    name: str
    description: str = ""
    resolution: int = 0              # 0 = the build's resolution
    seed: int = 0
    vae: VAEConfig = field(default_factory=VAEConfig)
    text: TextConfig = field(default_factory=TextConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    source: str = "<memory>"


def _channels(f: Fields, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    value = f.get(key, list, list(default))
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in value):
        raise f.fail(key, "expected a non-empty list of channel counts (integers 1..4096)")
    return tuple(value)


def _rate(f: Fields, key: str, default: float, lo: float = 0.0, hi: float = 1.0, *, open_lo: bool = False) -> float:
    value = float(f.get(key, (float, int), default))
    if value < lo or value > hi or (open_lo and value == lo):
        raise f.fail(key, f"{value} is out of range: allowed {'(' if open_lo else '['}{lo}, {hi}]")
    return value


def _vae(f: Fields) -> VAEConfig:
    d = VAEConfig()
    return VAEConfig(channels=_channels(f, "channels", d.channels),
                     layers_per_block=f.get("layers_per_block", int, d.layers_per_block, lo=1, hi=8),
                     latent_channels=f.get("latent_channels", int, d.latent_channels, lo=1, hi=64),
                     steps=f.get("steps", int, d.steps, lo=0, hi=10_000_000),
                     batch_size=f.get("batch_size", int, d.batch_size, lo=1, hi=65_536),
                     lr=_rate(f, "lr", d.lr, open_lo=True), kl_weight=_rate(f, "kl_weight", d.kl_weight))


def _text(f: Fields) -> TextConfig:
    d = TextConfig()
    t = TextConfig(hidden_size=f.get("hidden_size", int, d.hidden_size, lo=2, hi=8192),
                   layers=f.get("layers", int, d.layers, lo=1, hi=64), heads=f.get("heads", int, d.heads, lo=1, hi=128),
                   intermediate_size=f.get("intermediate_size", int, d.intermediate_size, lo=1, hi=65_536),
                   max_length=f.get("max_length", int, d.max_length, lo=4, hi=512))
    if t.hidden_size % t.heads:
        raise f.fail("heads", f"{t.heads} does not divide hidden_size {t.hidden_size}")
    return t


def _unet(f: Fields) -> UNetConfig:
    d = UNetConfig()
    u = UNetConfig(channels=_channels(f, "channels", d.channels),
                   layers_per_block=f.get("layers_per_block", int, d.layers_per_block, lo=1, hi=8),
                   attention_head_dim=f.get("attention_head_dim", int, d.attention_head_dim, lo=1, hi=1024),
                   cross_attention_levels=f.get("cross_attention_levels", int, d.cross_attention_levels, lo=1, hi=8),
                   steps=f.get("steps", int, d.steps, lo=1, hi=10_000_000),
                   batch_size=f.get("batch_size", int, d.batch_size, lo=1, hi=65_536),
                   lr=_rate(f, "lr", d.lr, open_lo=True), text_lr=_rate(f, "text_lr", d.text_lr),
                   warmup_steps=f.get("warmup_steps", int, d.warmup_steps, lo=0, hi=10_000_000),
                   min_lr_ratio=_rate(f, "min_lr_ratio", d.min_lr_ratio),
                   weight_decay=_rate(f, "weight_decay", d.weight_decay),
                   ema_decay=_rate(f, "ema_decay", d.ema_decay, hi=0.99999),
                   caption_dropout=_rate(f, "caption_dropout", d.caption_dropout, hi=0.9),
                   snr_gamma=_rate(f, "snr_gamma", d.snr_gamma, hi=1000.0),
                   prediction_type=f.get("prediction_type", str, d.prediction_type, allowed=PREDICTION_TYPES),
                   hflip=f.get("hflip", bool, d.hflip))
    if u.cross_attention_levels > len(u.channels):
        raise f.fail("cross_attention_levels", f"{u.cross_attention_levels} is more than the {len(u.channels)} "
                                               "resolutions of unet.channels")
    return u


def _noise(f: Fields) -> NoiseConfig:
    d = NoiseConfig()
    n = NoiseConfig(train_timesteps=f.get("train_timesteps", int, d.train_timesteps, lo=10, hi=100_000),
                    beta_schedule=f.get("beta_schedule", str, d.beta_schedule, allowed=BETA_SCHEDULES),
                    beta_start=_rate(f, "beta_start", d.beta_start, open_lo=True),
                    beta_end=_rate(f, "beta_end", d.beta_end, open_lo=True))
    if n.beta_end <= n.beta_start:
        raise f.fail("beta_end", f"{n.beta_end} is not above beta_start {n.beta_start}")
    return n


def _sample(f: Fields) -> SampleConfig:
    d = SampleConfig()
    return SampleConfig(checkpoint_every=f.get("checkpoint_every", int, d.checkpoint_every, lo=1, hi=10_000_000),
                        steps=f.get("steps", int, d.steps, lo=1, hi=1000),
                        guidance=_rate(f, "guidance", d.guidance, hi=100.0))


def parse_model_recipe(data: dict, source: str = "<memory>") -> ModelRecipe:
    """Validate a model recipe's table; every error names the file, the field and what is allowed."""
    f = Fields(data, source)
    sections = {key: (parse, f.table_of(key)) for key, parse in
                (("vae", _vae), ("text", _text), ("unet", _unet), ("noise", _noise), ("sample", _sample))}
    r = ModelRecipe(name=f.get("name", str), description=f.get("description", str, ""),
                    resolution=f.get("resolution", int, 0, lo=0, hi=4096), seed=f.get("seed", int, 0, lo=0, hi=2**62),
                    **{key: parse(sub) for key, (parse, sub) in sections.items()}, source=source)
    for _, sub in sections.values():
        sub.check_unknown()
    f.check_unknown()
    if r.resolution and r.resolution % 2 ** (len(r.vae.channels) - 1):
        raise f.fail("resolution", f"{r.resolution} is not a multiple of the autoencoder's "
                                   f"{2 ** (len(r.vae.channels) - 1)}x downsampling")
    return r


def load_model_recipe(name_or_path: str | Path) -> ModelRecipe:
    """A model recipe by shipped name (`tiny`, `mini`) or path."""
    path = resolve_recipe_path(name_or_path, kind="models")
    return parse_model_recipe(load_toml(path), str(path))
