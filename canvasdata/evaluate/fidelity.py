"""How faithfully a model draws what it is prompted with, as the judges see it: the share of an answer set
whose prompted style and prompted object the judges recognise, overall and per class. The original
model's fidelity is what every unlearning score is read against (a concept the model never drew cannot
be forgotten)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from canvasdata.evaluate.answers import read_answers
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import judge_for, judge_name, run_judges


def prompt_fidelity(answers: Path | str, judges: Sequence[Any], styles: Sequence[str], objects: Sequence[str],
                    protocol: str | Protocol | None = None) -> dict[str, Any]:
    """`style` / `object`: the fraction of the answers (a `{style}_{object}_seed{N}` folder) whose prompted
    class the judges predict; `per_class`: the same per style and per object; the judges' names."""
    proto = get_protocol(protocol)
    items = read_answers(answers, styles, objects)
    sj, oj = judge_for(judges, "style"), judge_for(judges, "object")
    preds, _ = run_judges(list(dict.fromkeys([sj, oj])), items, resize=proto.judge_resize)
    s_names, o_names = list(sj.class_names["style"]), list(oj.class_names["object"])
    s_ok = np.array([s_names[p] == a.style for p, a in zip(preds["style"], items, strict=True)])
    o_ok = np.array([o_names[p] == a.object for p, a in zip(preds["object"], items, strict=True)])
    per = {f"style:{s}": float(s_ok[[a.style == s for a in items]].mean()) for s in styles}
    per |= {f"object:{o}": float(o_ok[[a.object == o for a in items]].mean()) for o in objects}
    return {"images": len(items), "style": float(s_ok.mean()), "object": float(o_ok.mean()), "per_class": per,
            "judges": ", ".join(dict.fromkeys(judge_name(j) for j in (sj, oj))), "protocol": proto.name}
