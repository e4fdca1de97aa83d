"""How well a trained model generates, judged: an answer set over every (style, object) cell it was
trained on (`DIR/samples/answers/`, with the recipe's sample settings) scored by
`evaluate.fidelity.prompt_fidelity`, and recorded in the model's record and card."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canvasdata.evaluate.fidelity import prompt_fidelity
from canvasdata.evaluate.generate import generate_answers
from canvasdata.evaluate.protocol import get_protocol
from canvasdata.models.output import SAMPLES, check_model, record_judgement
from canvasdata.sources.diffusers import PipelineOptions
from canvasdata.taxonomy import SEED_WORDS_CAPTION

JUDGE_SEEDS = (188, 288)


def judge_model(out: Path | str, judges: Sequence[Any], *, seeds: Sequence[int] = JUDGE_SEEDS,
                device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Generate every trained cell with `seeds` (prompts as the captions say them) and record the judged
    style and object accuracy in `out`'s model.json and card; returns the judgement."""
    out = Path(out)
    record = check_model(out)
    recipe = record["identity"]["recipe"]
    proto = get_protocol("unlearncanvas", seed_images_words=SEED_WORDS_CAPTION)
    answers = generate_answers(out, out / SAMPLES / "answers", styles=record["styles"], objects=record["objects"],
                               seeds=seeds, size=recipe["resolution"], steps=recipe["sample"]["steps"],
                               guidance=recipe["sample"]["guidance"], batch_size=64, device=device,
                               options=PipelineOptions(dtype="float32", scheduler="DDIMScheduler"), protocol=proto,
                               progress=progress)
    judged = {**prompt_fidelity(answers, judges, record["styles"], record["objects"], proto),
              "steps": recipe["sample"]["steps"], "guidance": recipe["sample"]["guidance"], "seeds": list(seeds)}
    record_judgement(out, judged)
    return judged
