"""A learning curve in judged terms: at checkpoints, one seed of every trained (style, object) cell is
generated with the EMA weights and judged, so a run shows how often its generations already read as the
prompted style and object (the number the world's fidelity targets are about), not only a loss. The
probe's images live in the state folder and are removed once judged; it draws no random number of the
training run, so a run with a probe trains the same weights as one without."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from canvasdata.devices import Session
from canvasdata.evaluate.fidelity import prompt_fidelity
from canvasdata.evaluate.generate import generate_answers
from canvasdata.evaluate.protocol import get_protocol
from canvasdata.sources.diffusers import PipelineOptions
from canvasdata.taxonomy import SEED_WORDS_CAPTION

PROBE_SEED = 188          # the protocol's first seed
PROBE_BATCH = 32          # two batches for the tiny world's 64 cells: one for each of two ranks


def probe(pipe: Any, folder: Path, styles: Sequence[str], objects: Sequence[str], judges: Sequence[Any], *,
          size: int, steps: int, guidance: float, step: int, session: Session | None = None) -> dict[str, Any]:
    """Generate every cell once (seed `PROBE_SEED`, prompts as the captions say them), judge, remove the
    images; returns `{"step", "style", "object", "images"}` (accuracies as fractions). Under torchrun
    (`session`, every rank calling with the same weights) the ranks deal the batches (an image's bytes do
    not depend on the rank count), rank 0 judges, and every rank returns the point."""
    session = session or Session.alone()
    proto = get_protocol("unlearncanvas", seed_images_words=SEED_WORDS_CAPTION)
    session.from_main(lambda: shutil.rmtree(folder, ignore_errors=True))
    pipe.set_progress_bar_config(disable=True)      # the probe is part of the training bar's step
    answers = generate_answers(pipe, folder, styles=styles, objects=objects, seeds=(PROBE_SEED,), size=size,
                               steps=steps, guidance=guidance, batch_size=PROBE_BATCH,
                               options=PipelineOptions(dtype="float32"), protocol=proto, progress=False,
                               session=session)

    def judge() -> dict[str, Any]:
        judged = prompt_fidelity(answers, judges, styles, objects, proto)
        shutil.rmtree(folder, ignore_errors=True)
        return {"step": step, "style": round(judged["style"], 4), "object": round(judged["object"], 4),
                "images": judged["images"]}

    return session.from_main(judge)
