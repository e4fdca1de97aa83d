"""Diffusers backends: `source = "diffusers"` draws content with a text-to-image pipeline, and
`painter = "diffusers-img2img"` paints content with a style prompt at a given strength. `load_text2image`
is the one pipeline loader (also of `canvasdata evaluate generate`): any text-to-image pipeline
(`AutoPipelineForText2Image`, else `DiffusionPipeline`), a dtype, a scheduler by class name, model CPU
offload and attention slicing.

Both take a local directory or Hub id (`content.model`), seed one generator per image (so batching
never changes an image), and record every setting in the manifest and card. Their options are declared in
`recipes.options` (`DiffusersOptions`, `Img2ImgOptions`) and checked when the recipe is read. A pipeline
loads once per backend object, on its first image, and the two backends of one build share it when they
name the same pipeline: a build, which makes its backends once per process, loads it once per process.
diffusers is imported only when used (`pip install 'canvasdata[diffusers]'`).
"""

from __future__ import annotations

import importlib.util
import json
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image

from canvasdata.devices import resolve_device
from canvasdata.errors import MissingExtraError, UsageError
from canvasdata.fields import RecipeError
from canvasdata.recipes import Recipe
from canvasdata.recipes.options import DTYPE_NAMES, DiffusersOptions, Img2ImgOptions, read_options
from canvasdata.taxonomy import SEED_STYLE, prompt, unknown_message

DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in DTYPE_NAMES}
SCHEDULER_ALIASES = {"ddim": "DDIMScheduler"}  # recipes' short name; "" keeps the pipeline's own scheduler


def _diffusers() -> ModuleType:
    """diffusers, imported on first use: an optional extra."""
    try:
        import diffusers  # noqa: PLC0415 (an optional extra, imported on first use)
    except ModuleNotFoundError:
        raise MissingExtraError("the diffusers backends need diffusers: "
                                  "pip install 'canvasdata[diffusers]'") from None
    return diffusers


def diffusers_version() -> str:
    """The installed diffusers' version (for the records)."""
    return _diffusers().__version__


SD_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline")  # same components, loadable as SD
SD_COMPONENTS = ("unet", "text_encoder", "tokenizer", "vae", "scheduler")


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")   # owner/name, as the Hub names a repository


def check_sd_folder(model: Path, flag: str = "--model", user: str = "this command") -> dict:
    """model_index.json of a StableDiffusionPipeline folder (one CLIP text encoder, a UNet, a VAE); anything
    else is a one-line UsageError naming the flag, the path and what is missing (`user`: who needs it)."""
    index = model / "model_index.json"
    if not model.is_dir():
        raise UsageError(f"{flag} {model}: not a folder (a StableDiffusionPipeline folder is expected)")
    if not index.is_file():
        raise UsageError(f"{flag} {model}: no model_index.json; not a diffusers pipeline folder")
    try:
        config = json.loads(index.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag} {model}: model_index.json is unreadable ({e})") from None
    kind = config.get("_class_name")
    if kind not in SD_PIPELINES:
        raise UsageError(f"{flag} {model}: a {kind} folder; {user} needs a StableDiffusionPipeline")
    missing = [c for c in SD_COMPONENTS if not isinstance(config.get(c), list) or None in config[c]
               or not (model / c).is_dir()]
    if missing:
        raise UsageError(f"{flag} {model}: missing {', '.join(missing)} (a StableDiffusionPipeline needs "
                         f"{', '.join(SD_COMPONENTS)})")
    return config


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """A DTYPES name, or `auto`: float16 on CUDA, float32 elsewhere."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise RecipeError(f"dtype {name!r}: allowed auto, {', '.join(DTYPES)}")
    return DTYPES[name]


def scheduler_class(name: str) -> type:
    """The diffusers scheduler class named `name` (e.g. DDIMScheduler, EulerDiscreteScheduler; `ddim`)."""
    d = _diffusers()
    cls = getattr(d, SCHEDULER_ALIASES.get(name, name), None)
    if not (isinstance(cls, type) and issubclass(cls, d.SchedulerMixin)):
        known = sorted(n for n in dir(d) if n.endswith("Scheduler") and isinstance(getattr(d, n, None), type))
        raise RecipeError(unknown_message(name, known, "diffusers schedulers"))
    return cls


@dataclass(frozen=True)
class PipelineOptions:
    """How a pipeline is loaded: `dtype` a DTYPES name or `auto` (float16 on CUDA, else float32);
    `scheduler` a diffusers scheduler class name built `from_config` of the pipeline's own ("" keeps
    it); `cpu_offload`: `enable_model_cpu_offload` onto the device (needs accelerate);
    `attention_slicing`: `enable_attention_slicing`."""

    dtype: str = "auto"
    scheduler: str = ""
    cpu_offload: bool = False
    attention_slicing: bool = False


def check_pipeline_source(model: str | Path, flag: str = "--model") -> None:
    """A local diffusers pipeline folder (with model_index.json) or something shaped like a Hub id
    (owner/name); anything else (a missing path, a file, a folder without model_index.json) is a one-line
    UsageError naming the flag and the path, before anything is loaded or written."""
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{flag} {model}: a file, not a diffusers pipeline folder")
        if not (path / "model_index.json").is_file():
            raise UsageError(f"{flag} {model}: no model_index.json; not a diffusers pipeline folder")
        return
    if str(model).startswith(("/", ".", "~")) or not HUB_ID.fullmatch(str(model)):
        raise UsageError(f"{flag} {model}: no such folder (expected a diffusers pipeline folder or a Hub id "
                         "owner/name)")


def load_text2image(model: str | Path, device: str | torch.device = "auto",
                    options: PipelineOptions = PipelineOptions()) -> Any:
    """Any text-to-image pipeline from a local directory or Hub id (`AutoPipelineForText2Image`,
    falling back to `DiffusionPipeline` for pipelines it does not map), loaded as `options` say, with no
    safety checker and no progress bar. A source that is neither (`check_pipeline_source`), or a Hub id
    that cannot be fetched, is a one-line UsageError."""
    check_pipeline_source(model)
    d = _diffusers()
    if options.cpu_offload and importlib.util.find_spec("accelerate") is None:  # fail before loading anything
        raise MissingExtraError("--cpu-offload needs accelerate: pip install accelerate")
    scheduler = scheduler_class(options.scheduler) if options.scheduler else None
    dev = resolve_device(device)
    kwargs = {"dtype": resolve_dtype(options.dtype, dev), "safety_checker": None, "requires_safety_checker": False}
    try:
        try:
            pipe = d.AutoPipelineForText2Image.from_pretrained(str(model), **kwargs)
        except ValueError:  # a pipeline class AutoPipeline has no text-to-image mapping for
            pipe = d.DiffusionPipeline.from_pretrained(str(model), **kwargs)
    except OSError as e:  # huggingface_hub / diffusers: not found locally, not reachable on the Hub
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"--model {model}: cannot be loaded ({first})") from None
    if scheduler is not None:
        pipe.scheduler = scheduler.from_config(pipe.scheduler.config)
    if options.attention_slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    if options.cpu_offload:
        pipe.enable_model_cpu_offload(device=dev)
        return pipe
    return pipe.to(dev)


class _Pipelines:
    """A text-to-image pipeline, loaded on first use, and an img2img pipeline sharing its components.
    `shared` gives the backends alive in a process one object per (model, dtype, scheduler)."""

    _alive: weakref.WeakValueDictionary[tuple[str, str, str], _Pipelines] = weakref.WeakValueDictionary()

    def __init__(self, model: str, dtype: str, scheduler: str) -> None:
        self.model, self.dtype_name, self.scheduler = model, dtype, scheduler
        self._t2i = self._i2i = None
        self._device: torch.device | None = None

    @classmethod
    def shared(cls, model: str, dtype: str, scheduler: str) -> _Pipelines:
        """The pipelines of (model, dtype, scheduler) that a live backend holds, else new ones (loaded on use;
        gone with the last backend that holds them)."""
        key = (model, dtype, scheduler)
        pipes = cls._alive.get(key)
        if pipes is None:
            pipes = cls._alive[key] = cls(model, dtype, scheduler)
        return pipes

    def text2img(self, device: torch.device) -> Any:
        """The text-to-image pipeline on `device`, loaded once."""
        if self._t2i is None or self._device != device:
            pipe = load_text2image(self.model, device, PipelineOptions(self.dtype_name, self.scheduler))
            self._t2i, self._i2i, self._device = pipe, None, device
        return self._t2i

    def img2img(self, device: torch.device) -> Any:
        """The image-to-image pipeline of the same family, sharing the text-to-image pipeline's components."""
        if self._i2i is None or self._device != device:
            pipe = _diffusers().AutoPipelineForImage2Image.from_pipe(self.text2img(device))
            pipe.set_progress_bar_config(disable=True)
            self._i2i = pipe
        return self._i2i


def _generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    return [torch.Generator("cpu" if device.type == "cpu" else device).manual_seed(int(s) % 2**63) for s in seeds]


def _to_tensor(images: Sequence[Image.Image], size: int, device: torch.device) -> torch.Tensor:
    arr = np.stack([np.asarray(im.convert("RGB").resize((size, size))) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255).to(device)


class DiffusersContent:
    """Content k of an object: the pipeline's image for `prompt` with the sample's content seed."""

    options = DiffusersOptions
    name = options.backend
    supports_removal = False

    def __init__(self, recipe: Recipe) -> None:
        opts = read_options(DiffusersOptions, recipe.content.fields(recipe.source))
        self.pipes = _Pipelines.shared(opts.model or "", opts.dtype, opts.scheduler)
        self.prompt, self.steps, self.guidance, self.gen_size = opts.prompt, opts.steps, opts.guidance, opts.gen_size

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int, device: torch.device,
               *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The pipeline's images for the object's prompt, one seeded generator per image; masks all ones."""
        if not draw_object:
            raise RecipeError("the diffusers source cannot render a scene without its object")
        gen = self.gen_size or size
        out = self.pipes.text2img(device)([self.prompt.format(object=obj)] * len(seeds), height=gen, width=gen,
                                          num_inference_steps=self.steps, guidance_scale=self.guidance,
                                          generator=_generators(seeds, device)).images
        return _to_tensor(out, size, device), torch.ones(len(seeds), 1, size, size, device=device)

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        return {"source": self.name, "model": self.pipes.model, "prompt": self.prompt, "steps": self.steps,
                "guidance": self.guidance, "scheduler": self.pipes.scheduler or "pipeline default",
                "dtype": self.pipes.dtype_name, "gen_size": self.gen_size or "resolution"}

    def fingerprint(self) -> None:
        """The pipeline's weights are not fingerprinted (gigabytes): the model id or path in `describe`
        stands for them."""
        return None


class Img2ImgPainter:
    """Paint content with `style_prompt` at `strength` (Seed_Images stays unpainted)."""

    options = Img2ImgOptions
    name = options.backend

    def __init__(self, recipe: Recipe) -> None:
        opts = read_options(Img2ImgOptions, recipe.content.fields(recipe.source))
        self.pipes = _Pipelines.shared(opts.pipeline, opts.dtype, opts.scheduler)
        self.template = recipe.prompt_template if opts.style_prompt is None else opts.style_prompt
        self.strength, self.steps, self.guidance = opts.strength, opts.img2img_steps, opts.guidance

    def check(self, styles: Sequence[str]) -> None:
        """Any style name can be prompted."""

    def paint(self, style: str, images: torch.Tensor, seeds: Sequence[int], masks: torch.Tensor | None,
              objects: Sequence[str]) -> torch.Tensor:
        """img2img from the content with the style prompt, one seeded generator per image."""
        if style == SEED_STYLE:
            return images.clone()
        size = images.shape[-1]
        pipe = self.pipes.img2img(images.device)
        out = pipe([prompt(style, o, self.template) for o in objects], image=images.float(), strength=self.strength,
                   num_inference_steps=self.steps, guidance_scale=self.guidance,
                   generator=_generators(seeds, images.device)).images
        return _to_tensor(out, size, images.device)

    def describe(self) -> dict:
        """Settings recorded in the manifest and card."""
        return {"painter": self.name, "painter_model": self.pipes.model, "style_prompt": self.template,
                "strength": self.strength, "img2img_steps": self.steps, "guidance": self.guidance}
