"""Concept-set evaluation (the DataIGM shape): generate images for a concept's forget prompts and
their concept-removed pairs, then measure the forgetting rate (the detector still seeing the concept)
and the Frechet distance between the unlearned model on forget prompts and the original model on the
paired prompts. Images are paired by prompt id and seed in their file names, never by listing order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from tqdm.auto import tqdm

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, Session, resolve_device
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer
from canvasdata.evaluate.generate import GENERATE_BATCH, load_pipeline
from canvasdata.evaluate.protocol import CANVASDATA, CONCEPT_GUIDANCE, CONCEPT_STEPS, PROTOCOL_SIZE
from canvasdata.evaluate.score import judge_name, run_judge
from canvasdata.formats.common import write_json
from canvasdata.judges.model import Judge
from canvasdata.metrics import frechet_distance, kid
from canvasdata.sources.diffusers import PipelineOptions

NAME_RE = re.compile(r"^(\d+)_seed(\d+)\.(jpg|jpeg|png)$")


def read_prompts(path: Path | str) -> list[dict]:
    """A concept set's prompts JSON: a list of {"id", "prompt", "seeds"}; anything else is a one-line error."""
    try:
        records = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"--prompts {path}: unreadable ({e})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and {"id", "prompt", "seeds"} <= set(r)
                                                for r in records):
        raise UsageError(f"--prompts {path}: expected a list of {{\"id\", \"prompt\", \"seeds\"}} records "
                         "(forget_prompts.json or retain_prompts.json of a concept set)")
    return records


def generate_prompt_images(model: str | object, prompts: Path | str, out: Path | str, size: int = PROTOCOL_SIZE,
                           steps: int = CONCEPT_STEPS, guidance: float = CONCEPT_GUIDANCE,
                           batch_size: int = GENERATE_BATCH, device: str = "auto",
                           options: PipelineOptions | None = None, progress: bool = True,
                           session: Session | None = None) -> Path:
    """Images `{id:05d}_seed{seed}.jpg` for every prompt of a prompts JSON (forget_prompts.json or
    retain_prompts.json of a concept set) and each of its seeds, the pipeline loaded as `options` say
    (default: DDIM); resumable. As `generate_answers`: fixed batches of the prompt list (a resume redoes a
    batch with a missing image whole), dealt over the torchrun ranks of `session`."""
    out = Path(out)
    records = read_prompts(prompts)
    session = session or Session.alone()
    device = session.device_or(device)
    pipe = load_pipeline(model, device, options) if isinstance(model, (str, Path)) else model
    jobs = [(r["id"], r["prompt"], s) for r in records for s in r["seeds"]]
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]

    def name(job: tuple[int, str, int]) -> str:
        return f"{job[0]:05d}_seed{job[2]}.jpg"

    def prepare() -> list[int]:
        out.mkdir(parents=True, exist_ok=True)   # after the inputs are read: bad input leaves nothing behind
        write_json(out / "generation.json", {"model": str(model), "prompts": str(prompts), "size": size,
                                             "steps": steps, "guidance": guidance, "batch_size": batch_size,
                                             "ranks": session.world})
        return [k for k, b in enumerate(batches) if not all((out / name(j)).exists() for j in b)]

    todo = session.deal(session.from_main(prepare))
    gen_device = resolve_device(device)
    desc = "generate" + (f" [rank {session.rank}]" if session.world > 1 else "")
    for k in tqdm(todo, desc=desc, disable=not progress):
        chunk = batches[k]
        images = pipe([p for _, p, _ in chunk], height=size, width=size, num_inference_steps=steps,
                      guidance_scale=guidance, generator=[torch.Generator(gen_device).manual_seed(s % 2**63)
                                                          for _, _, s in chunk]).images
        for job, img in zip(chunk, images, strict=True):
            if (out / name(job)).exists():
                continue
            tmp = out / f".{name(job)}.tmp"
            img.save(tmp, format="JPEG", quality=95)
            tmp.replace(out / name(job))
    session.barrier()
    return out


def read_prompt_images(folder: Path | str) -> dict[tuple[int, int], Path]:
    """{(prompt id, seed): path} of a folder written by generate_prompt_images."""
    folder = Path(folder)
    found = {}
    for p in sorted(folder.iterdir()):
        m = NAME_RE.match(p.name)
        if m:
            found[(int(m.group(1)), int(m.group(2)))] = p
    if not found:
        raise UsageError(f"{folder}: no images named {{id}}_seed{{seed}}.jpg")
    return found


def score_concept(unlearned: Path | str, original: Path | str, detector: Judge, *, batch_size: int = JUDGE_BATCH,
                  workers: int = DECODE_WORKERS, out: Path | str | None = None) -> dict:
    """Forgetting rate of the unlearned model's forget-prompt images, and FD/KID against the original
    model's images for the paired concept-removed prompts (features: the detector's pre-logits)."""
    task = detector.tasks[0]
    if detector.class_names[task] != ["negative", "positive"]:
        raise UsageError("the detector must be a binary (negative/positive) judge trained on a concept set")
    u, o = read_prompt_images(unlearned), read_prompt_images(original)
    missing = sorted(set(u) ^ set(o))
    if missing:
        pid, seed = missing[0]
        raise UsageError(f"{len(missing)} image(s) have no pair, e.g. prompt {pid} seed {seed}: both folders need "
                         "the same prompt ids and seeds")
    keys = sorted(u)
    ua = [Answer("", "", s, path=u[(i, s)]) for i, s in keys]
    oa = [Answer("", "", s, path=o[(i, s)]) for i, s in keys]
    resize = CANVASDATA.judge_resize  # concept sets have no original code to follow: resize as judges train
    pu, fu = run_judge(detector, ua, batch_size, workers, features=True, resize=resize)
    _, fo = run_judge(detector, oa, batch_size, workers, features=True, resize=resize)
    rate = float((pu[task] == 1).mean())
    report = {"concept": detector.label_space[task], "pairs": len(keys), "forgetting_rate": rate,
              "ua": 1 - rate, "frechet_distance": frechet_distance(fu, fo),
              "kid": kid(fu, fo, subsets=20, subset_size=min(1000, len(keys)))[0],
              "feature_extractor": f"detector penultimate layer ({judge_name(detector)})"}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_json(Path(out) / "concept_report.json", report)
    return report
