"""Diffusers backends: `source = "diffusers"` draws content with a text-to-image pipeline, and
`painter = "diffusers-img2img"` paints content with a style prompt at a given strength.

Both take a local directory or Hub id (`content.model`), seed one generator per image (so batching
never changes an image), load the pipeline once per process, and record every setting in the
manifest and card. diffusers is imported only when used (`pip install 'canvasdata[diffusers]'`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from canvasdata.recipes import Recipe
from canvasdata.sources import register_painter, register_source
from canvasdata.sources.photos import _field
from canvasdata.taxonomy import SEED_STYLE, prompt


def _diffusers():
    try:
        import diffusers
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the diffusers backends need diffusers: pip install 'canvasdata[diffusers]'") from None
    return diffusers


class _Pipelines:
    """One text-to-image pipeline per process, and an img2img pipeline sharing its components."""

    def __init__(self, model: str, dtype: str, scheduler: str) -> None:
        self.model, self.dtype_name, self.scheduler = model, dtype, scheduler
        self._t2i = self._i2i = None
        self._device: torch.device | None = None

    def _dtype(self, device: torch.device) -> torch.dtype:
        if self.dtype_name == "auto":
            return torch.float16 if device.type == "cuda" else torch.float32
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype_name]

    def text2img(self, device: torch.device):
        if self._t2i is None or self._device != device:
            d = _diffusers()
            pipe = d.StableDiffusionPipeline.from_pretrained(self.model, dtype=self._dtype(device), safety_checker=None,
                                                             requires_safety_checker=False)
            if self.scheduler == "ddim":
                pipe.scheduler = d.DDIMScheduler.from_config(pipe.scheduler.config)
            pipe.set_progress_bar_config(disable=True)
            self._t2i, self._i2i, self._device = pipe.to(device), None, device
        return self._t2i

    def img2img(self, device: torch.device):
        if self._i2i is None or self._device != device:
            pipe = _diffusers().StableDiffusionImg2ImgPipeline(**self.text2img(device).components)
            pipe.set_progress_bar_config(disable=True)
            self._i2i = pipe
        return self._i2i


def _generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    return [torch.Generator("cpu" if device.type == "cpu" else device).manual_seed(int(s) % 2**63) for s in seeds]


def _to_tensor(images, size: int, device: torch.device) -> torch.Tensor:
    arr = np.stack([np.asarray(im.convert("RGB").resize((size, size))) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255).to(device)


def _settings(recipe: Recipe) -> tuple[str, str, str]:
    dtype = _field(recipe, "dtype", str, "auto")
    if dtype not in ("auto", "float32", "float16", "bfloat16"):
        raise ValueError(f"{recipe.source}: field 'content.dtype': {dtype!r} is not one of auto, float32, float16, bfloat16")
    scheduler = _field(recipe, "scheduler", str, "")
    if scheduler not in ("", "ddim"):
        raise ValueError(f"{recipe.source}: field 'content.scheduler': {scheduler!r} is not one of '', ddim")
    return _field(recipe, "model", str), dtype, scheduler


class DiffusersContent:
    """Content k of an object: the pipeline's image for `prompt` with the sample's content seed."""

    supports_removal = False

    def __init__(self, recipe: Recipe) -> None:
        model, dtype, scheduler = _settings(recipe)
        self.pipes = _Pipelines(model, dtype, scheduler)
        self.prompt = _field(recipe, "prompt", str, "A photo of a {object}.")
        self.steps = _field(recipe, "steps", int, 30)
        self.guidance = float(_field(recipe, "guidance", (int, float), 7.5))
        self.gen_size = _field(recipe, "gen_size", int, 0)

    def render(self, obj: str, indices: Sequence[int], seeds: Sequence[int], size: int, device: torch.device,
               *, draw_object: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        if not draw_object:
            raise ValueError("the diffusers source cannot render a scene without its object")
        gen = self.gen_size or size
        out = self.pipes.text2img(device)([self.prompt.format(object=obj)] * len(seeds), height=gen, width=gen,
                                          num_inference_steps=self.steps, guidance_scale=self.guidance,
                                          generator=_generators(seeds, device)).images
        return _to_tensor(out, size, device), torch.ones(len(seeds), 1, size, size, device=device)

    def describe(self) -> dict:
        return {"source": "diffusers", "model": self.pipes.model, "prompt": self.prompt, "steps": self.steps,
                "guidance": self.guidance, "scheduler": self.pipes.scheduler or "pipeline default",
                "dtype": self.pipes.dtype_name, "gen_size": self.gen_size or "resolution"}


class Img2ImgPainter:
    """Paint content with `style_prompt` at `strength` (Seed_Images stays unpainted)."""

    def __init__(self, recipe: Recipe) -> None:
        model = _field(recipe, "painter_model", str, recipe.content.option("model", None) or "")
        if not model:
            raise ValueError(f"{recipe.source}: field 'content.painter_model' (or 'content.model'): is required for "
                             "painter = 'diffusers-img2img'")
        _, dtype, scheduler = _settings(recipe) if recipe.content.option("model") else ("", "auto", "")
        self.pipes = _Pipelines(model, dtype, scheduler)
        self.template = _field(recipe, "style_prompt", str, recipe.prompt_template)
        self.strength = float(_field(recipe, "strength", (int, float), 0.6))
        if not 0 < self.strength <= 1:
            raise ValueError(f"{recipe.source}: field 'content.strength': {self.strength} is out of range: allowed (0, 1]")
        self.steps = _field(recipe, "img2img_steps", int, 30)
        self.guidance = float(_field(recipe, "guidance", (int, float), 7.5))

    def check(self, styles: Sequence[str]) -> None:
        """Any style name can be prompted."""

    def paint(self, style: str, images: torch.Tensor, seeds: Sequence[int], masks: torch.Tensor | None,
              objects: Sequence[str]) -> torch.Tensor:
        if style == SEED_STYLE:
            return images.clone()
        size = images.shape[-1]
        pipe = self.pipes.img2img(images.device)
        out = pipe([prompt(style, o, self.template) for o in objects], image=images.float(), strength=self.strength,
                   num_inference_steps=self.steps, guidance_scale=self.guidance,
                   generator=_generators(seeds, images.device)).images
        return _to_tensor(out, size, images.device)

    def describe(self) -> dict:
        return {"painter": "diffusers-img2img", "painter_model": self.pipes.model, "style_prompt": self.template,
                "strength": self.strength, "img2img_steps": self.steps, "guidance": self.guidance}


register_source("diffusers")(DiffusersContent)
register_painter("diffusers-img2img")(Img2ImgPainter)
