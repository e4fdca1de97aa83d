"""Generate an answer set from a diffusers text-to-image pipeline with the protocol's defaults:
the prompt template, seeds 188/288/588/688/888, 512 px, 100 DDIM steps (eta 0), guidance 9.0.
Batched (one generator per image, so batching never changes an image), resumable (existing files
are kept), every setting recorded in generation.json beside the images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from canvasdata.taxonomy import OBJECTS, PROMPT_TEMPLATE, UC50, prompt

PROTOCOL_SEEDS = (188, 288, 588, 688, 888)


def load_pipeline(model: str, device: str = "cpu", dtype: torch.dtype | None = None):
    """A StableDiffusionPipeline from a local directory or a Hub id, with a DDIM scheduler."""
    try:
        from diffusers import DDIMScheduler, StableDiffusionPipeline
    except ModuleNotFoundError:
        raise ModuleNotFoundError("generating answer sets needs diffusers: pip install 'canvasdata[diffusers]'") from None
    dtype = dtype or (torch.float16 if str(device).startswith("cuda") else torch.float32)
    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate_answers(model: str | object, out: Path | str, styles: Sequence[str] = UC50,
                     objects: Sequence[str] = OBJECTS, seeds: Sequence[int] = PROTOCOL_SEEDS, size: int = 512,
                     steps: int = 100, guidance: float = 9.0, batch_size: int = 4, device: str = "cpu",
                     template: str = PROMPT_TEMPLATE, quality: int = 95, progress: bool = True) -> Path:
    """Write `{style}_{object}_seed{seed}.jpg` for every prompt and seed; returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = load_pipeline(model, device) if isinstance(model, (str, Path)) else model
    settings = {"model": str(model) if isinstance(model, (str, Path)) else type(model).__name__,
                "styles": list(styles), "objects": list(objects), "seeds": list(seeds), "size": size,
                "steps": steps, "guidance": guidance, "scheduler": "DDIM", "eta": 0.0, "template": template,
                "jpeg_quality": quality}
    (out / "generation.json").write_text(json.dumps(settings, indent=2))
    jobs = [(s, o, seed) for seed in seeds for s in styles for o in objects
            if not (out / f"{s}_{o}_seed{seed}.jpg").exists()]
    gen_device = "cpu" if str(device) == "cpu" else device
    with tqdm(total=len(styles) * len(objects) * len(seeds), initial=len(styles) * len(objects) * len(seeds) - len(jobs),
              unit="img", desc="generate", disable=not progress) as bar:
        for i in range(0, len(jobs), batch_size):
            chunk = jobs[i:i + batch_size]
            prompts = [prompt(s, o, template) for s, o, _ in chunk]
            gens = [torch.Generator(gen_device).manual_seed(seed) for _, _, seed in chunk]
            images = pipe(prompts, height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
                          eta=0.0, generator=gens).images
            for (s, o, seed), img in zip(chunk, images):
                tmp = out / f".{s}_{o}_seed{seed}.jpg.tmp"
                img.save(tmp, format="JPEG", quality=quality)
                tmp.replace(out / f"{s}_{o}_seed{seed}.jpg")
            bar.update(len(chunk))
    return out
