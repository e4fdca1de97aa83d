"""Judge model cards from the template in `cards/judge.md`."""

from __future__ import annotations

from canvasdata.judges.model import JudgeInfo
from canvasdata.recipes import builtin_dir


def judge_card(info: JudgeInfo, history: dict | None = None, evaluation: dict | None = None) -> str:
    """Front matter (library, tags, license) and prose with the facts of this judge."""
    acc = (info.metrics or {}).get("test_accuracy", {})
    rows = "\n".join(f"| {t} | {len(info.class_names[t])} ({info.label_space[t]}) | "
                     f"{acc[t] * 100:.2f}% |" if t in acc else f"| {t} | {len(info.class_names[t])} | n/a |"
                     for t in info.tasks)
    facts = {
        "model": info.model, "tasks": ", ".join(info.tasks), "image_size": info.image_size,
        "mean": list(info.mean), "std": list(info.std), "accuracy_rows": rows,
        "data": ", ".join(f"{k}: `{v}`" for k, v in info.data.items()) or "unknown",
        "steps": (info.metrics or {}).get("steps", "n/a"), "seconds": (info.metrics or {}).get("train_seconds", "n/a"),
        "first_task": info.tasks[0], "extra_tasks": ", ".join(info.tasks[1:]) or "none",
        "confusion": "\n".join(f"![confusion matrix ({t})](confusion_{t}.png)" for t in info.tasks) if evaluation else
        "Run `canvasdata judge eval` to add the confusion matrices.",
    }
    return (builtin_dir("cards") / "judge.md").read_text(encoding="utf-8").format(**facts)
