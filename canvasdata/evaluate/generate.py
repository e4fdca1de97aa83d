"""Generate an answer set from a diffusers text-to-image pipeline with the protocol's defaults: the
prompt template of `canvasdata.taxonomy.prompt` ("A {object} image in {style} style.", underscores
as spaces; Seed_Images named as the protocol's `seed_images_words` says: "Seed Images" under
`unlearncanvas`, as the original's sampling scripts for unlearned models, "Photo" under
`canvasdata`, as the dataset's captions), seeds 188/288/588/688/888, 512 px, 100 DDIM steps with eta 0,
guidance 9.0. One generator per image, seeded with the protocol seed; every setting is recorded in
generation.json beside the images, and a resume with settings that would change the images is refused.

The grid (seeds, then styles, then objects) is cut into fixed batches of `batch_size` prompts, and an image
is always made in its own batch: a batch's other prompts change the last bits of its images (the kernels'
sums depend on the batch's shape), so a resumed run regenerates any batch with a missing image whole and
writes the missing ones. Under torchrun the ranks deal those batches round-robin (rank 0 checks the folder
and lists them), so the folder is byte-identical to a one-process run, and a rerun after any rank died
redoes only the unfinished batches. On the CPU the number of torch threads changes the last bits too:
torchrun starts its ranks with OMP_NUM_THREADS=1, and `OMP_NUM_THREADS=1 canvasdata evaluate generate`
matches them (the thread count is recorded)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from canvasdata.devices import Session
from canvasdata.evaluate.protocol import (
    PROTOCOL_GUIDANCE,
    PROTOCOL_SCHEDULER,
    PROTOCOL_SEEDS,
    PROTOCOL_SIZE,
    PROTOCOL_STEPS,
    Protocol,
    get_protocol,
)
from canvasdata.folders import refuse_changed
from canvasdata.formats.common import write_json
from canvasdata.sources.diffusers import PipelineOptions, diffusers_version, load_text2image
from canvasdata.taxonomy import OBJECTS, PROMPT_TEMPLATE, SEED_STYLE, SEED_WORDS_CAPTION, UC50, prompt

GENERATE_BATCH = 4         # prompts a pipeline call
# settings that change the pixels: a resume must use the same values
# (cpu_offload only moves weights: not here; the batch size is, since an image's batch changes its last bits)
IMAGE_SETTINGS = ("model", "size", "steps", "guidance", "scheduler", "eta", "template", "seed_images_words", "dtype",
                  "attention_slicing", "jpeg_quality", "generator", "batch_size")
# image settings that generation.json files written before they existed lack, with the value then used
LEGACY_SETTINGS = {"seed_images_words": SEED_WORDS_CAPTION}


def recorded_setting(generation: dict, key: str) -> object:
    """A setting of a generation.json, or the value used before it was recorded (None if unknown)."""
    return generation.get(key, LEGACY_SETTINGS.get(key))


def answer_name(style: str, obj: str, seed: int) -> str:
    """The protocol's file name `{style}_{object}_seed{seed}.jpg`."""
    return f"{style}_{obj}_seed{seed}.jpg"


def load_pipeline(model: str | Path, device: str = "auto", options: PipelineOptions | None = None) -> Any:
    """A text-to-image pipeline from a local directory or a Hub id (`load_text2image`), by default
    with the protocol's DDIM scheduler and float16 on CUDA, float32 elsewhere."""
    return load_text2image(model, device, options or PipelineOptions(scheduler=PROTOCOL_SCHEDULER))


def _check_resume(path: Path, settings: dict) -> dict:
    """Merge the recorded settings with the new ones; refuse a change that would alter the images
    (the name of Seed_Images only where Seed_Images is prompted)."""
    if not path.exists():
        return settings
    old = json.loads(path.read_text())
    seed_prompted = SEED_STYLE in {*old.get("styles", []), *settings["styles"]}
    recorded = {k: v for k in IMAGE_SETTINGS if (v := recorded_setting(old, k)) is not None}
    refuse_changed(path.parent, "the answer set there was generated", recorded, settings,
                   [k for k in IMAGE_SETTINGS if k != "seed_images_words" or seed_prompted])
    merged = dict(settings)
    for k in ("styles", "objects", "seeds"):
        merged[k] = list(dict.fromkeys([*old.get(k, []), *settings[k]]))
    return merged


def model_name(model: str | Path | Any) -> str:
    """How generation.json names a model: a local pipeline directory's absolute path, a Hub id, or a loaded
    pipeline's `_name_or_path` (else its class name)."""
    if isinstance(model, (str, Path)):
        return str(Path(model).resolve()) if Path(model).exists() else str(model)
    return getattr(getattr(model, "config", None), "_name_or_path", None) or type(model).__name__


def generate_answers(model: str | Path | Any, out: Path | str, styles: Sequence[str] = UC50,
                     objects: Sequence[str] = OBJECTS, seeds: Sequence[int] = PROTOCOL_SEEDS,
                     size: int = PROTOCOL_SIZE, steps: int = PROTOCOL_STEPS, guidance: float = PROTOCOL_GUIDANCE,
                     batch_size: int = GENERATE_BATCH, device: str = "auto",
                     options: PipelineOptions | None = None, template: str = PROMPT_TEMPLATE, quality: int = 95,
                     generator_device: str = "cpu", protocol: str | Protocol | None = None,
                     progress: bool = True, session: Session | None = None) -> Path:
    """Write `{style}_{object}_seed{seed}.jpg` for every style, object and seed into `out` (files
    already there are kept) and return `out`. `model` is a pipeline directory, a Hub id, or a
    loaded pipeline (then its own scheduler and dtype are used as they are); `options` say how a
    pipeline is loaded (default: the protocol's DDIM scheduler, float16 on CUDA). The initial noise is
    drawn by a generator on `generator_device` (default CPU, so the same seed gives the same noise on
    any machine, GPU or not). `protocol` (default `unlearncanvas`) decides how Seed_Images is named in
    the prompts; its name and that choice go into generation.json. `session`: the torchrun ranks that share
    the work (`devices.join_ranks`; its device replaces `device`); every rank returns when all are done."""
    proto = get_protocol(protocol)
    words = proto.seed_images_words
    out = Path(out)
    options = options or PipelineOptions(scheduler=PROTOCOL_SCHEDULER)
    session = session or Session.alone()
    device = session.device_or(device)
    pipe = load_pipeline(model, device, options) if isinstance(model, (str, Path)) else model
    settings = {"model": model_name(model),
                "styles": list(styles), "objects": list(objects), "seeds": [int(s) for s in seeds],
                "size": size, "steps": steps, "guidance": guidance,
                "scheduler": type(pipe.scheduler).__name__, "eta": 0.0, "template": template,
                "protocol": proto.name, "seed_images_words": words,
                "example_prompt": prompt(styles[0], objects[0], template, words) if styles and objects else None,
                "dtype": str(pipe.dtype).removeprefix("torch."), "attention_slicing": options.attention_slicing,
                "cpu_offload": options.cpu_offload, "jpeg_quality": quality, "batch_size": batch_size,
                "generator": f"one torch.Generator('{generator_device}') per image, seeded with the protocol seed",
                "device": str(device), "ranks": session.world, "torch_threads": torch.get_num_threads(),
                "versions": {"torch": torch.__version__, "diffusers": diffusers_version()}}
    total = [(s, o, seed) for seed in seeds for s in styles for o in objects]
    batches = [total[i:i + batch_size] for i in range(0, len(total), batch_size)]

    def prepare() -> list[int]:
        out.mkdir(parents=True, exist_ok=True)   # after the pipeline loaded: a bad --model leaves nothing behind
        write_json(out / "generation.json", _check_resume(out / "generation.json", settings))
        return [k for k, b in enumerate(batches) if not all((out / answer_name(*j)).exists() for j in b)]

    todo = session.deal(session.from_main(prepare))
    mine = sum(len(batches[k]) for k in todo)
    share = len(total) if session.world == 1 else mine
    desc = "generate" + (f" [rank {session.rank}]" if session.world > 1 else "")
    with tqdm(total=share, initial=share - mine, unit="img", desc=desc, disable=not progress) as bar:
        for k in todo:
            chunk = batches[k]
            images = pipe([prompt(s, o, template, words) for s, o, _ in chunk], height=size, width=size,
                          num_inference_steps=steps, guidance_scale=guidance, eta=0.0,
                          generator=[torch.Generator(generator_device).manual_seed(seed)
                                     for _, _, seed in chunk]).images
            for job, img in zip(chunk, images, strict=True):
                if (out / answer_name(*job)).exists():
                    continue   # written before an interruption: the same bytes (the same batch made it)
                tmp = out / f".{answer_name(*job)}.tmp"
                img.save(tmp, format="JPEG", quality=quality)
                tmp.replace(out / answer_name(*job))
            bar.update(len(chunk))
    session.barrier()
    return out
