"""Judge model cards from the template in `cards/judge.md`; after `canvasdata judge eval`, with the
evaluation: top-1 and ECE per task, where the judge fails, and its figures."""

from __future__ import annotations

from canvasdata.judges.evaluate import worst
from canvasdata.judges.model import JudgeInfo
from canvasdata.recipes import builtin_dir

# Report key of the groups of each task, and the question that grouping answers.
FAILURE_TABLES = (
    ("object", "by_style", "style", "Object accuracy by style", "does a style erase objects?"),
    ("style", "by_object", "object", "Style accuracy by object", "does an object hide a style?"),
)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def evaluation_section(evaluation: dict, eval_dir: str | None = None, k: int = 5) -> str:
    """Markdown of an `evaluate_judge` report: top-1, ECE and degraded top-1 per task, the `k` worst
    per-style object and per-object style accuracies, and image links to the figures under `eval_dir`
    (a path relative to the card; None leaves the figures out)."""
    about = evaluation.get("data", {})
    where = f" of split `{about['split']}` of `{about['source']}`" if {"split", "source"} <= set(about) else ""
    tasks = evaluation["tasks"]
    kinds = list(dict.fromkeys(kind for r in tasks.values() for kind in r.get("degraded_top1", {})))
    lines = ["## Evaluation", "",
             f"`canvasdata judge eval` on {evaluation['num_images']} images{where}"
             + (" (top-1 also under degradations that generated images show)" if kinds else "") + ":", "",
             "| task | top-1 | ECE |" + "".join(f" {kind} |" for kind in kinds),
             "|---|---|---|" + "---|" * len(kinds)]
    for t, r in tasks.items():
        lines.append(f"| {t} | {r['top1'] * 100:.2f}% | {r['ece']:.3f} |"
                     + "".join(f" {r['degraded_top1'][kind] * 100:.2f}% |" if kind in r.get("degraded_top1", {})
                               else " n/a |" for kind in kinds))
    for task, key, group, heading, question in FAILURE_TABLES:
        groups = tasks.get(task, {}).get(key)
        if not groups:
            continue
        lines += ["", f"### {heading}: the worst {min(k, len(groups))} of {len(groups)}", "",
                  (f"Where the judge fails: {question} Share of the images of each {group} whose {task} the "
                   "judge names correctly."), "", f"| {group} | {task} top-1 | images |", "|---|---|---|"]
        lines += [f"| {_cell(name)} | {g['accuracy'] * 100:.1f}% | {g['n']} |" for name, g in worst(groups, k)]
    if eval_dir is not None:
        prefix = eval_dir.rstrip("/") + "/" if eval_dir not in ("", ".") else ""
        figures = [(t, f) for t, r in tasks.items() for f in r.get("figures", [])]
        for t, f in figures:
            alt = f"confusion matrix ({t})" if f.startswith("confusion_") else f"{t} top-1 by style x object"
            lines += ["", f"![{alt}]({prefix}{f})"]
        lines += ["", f"Full report: [{prefix}eval.json]({prefix}eval.json)."]
    return "\n".join(lines)


def judge_card(info: JudgeInfo, history: dict | None = None, evaluation: dict | None = None,
               eval_dir: str | None = None, license: str | None = None) -> str:
    """Front matter (library, tags, license) and prose with the facts of this judge, and its evaluation
    when given (`eval_dir`: where its figures are, relative to the card). The licence is `license`,
    else that of the starting weights (`info.data["start_license"]`, as config.json says), else `unknown`."""
    acc = (info.metrics or {}).get("test_accuracy", {})
    rows = "\n".join(f"| {t} | {len(info.class_names[t])} ({info.label_space[t]}) | "
                     f"{acc[t] * 100:.2f}% |" if t in acc else f"| {t} | {len(info.class_names[t])} | n/a |"
                     for t in info.tasks)
    facts = {
        "license": license or info.data.get("start_license") or "unknown",
        "model": info.model, "tasks": ", ".join(info.tasks), "image_size": info.image_size,
        "mean": list(info.mean), "std": list(info.std), "accuracy_rows": rows,
        "data": ", ".join(f"{k}: `{v}`" for k, v in info.data.items()) or "unknown",
        "steps": (info.metrics or {}).get("steps", "n/a"), "seconds": (info.metrics or {}).get("train_seconds", "n/a"),
        "first_task": info.tasks[0], "extra_tasks": ", ".join(info.tasks[1:]) or "none",
        "evaluation": evaluation_section(evaluation, eval_dir) if evaluation else
        "Run `canvasdata judge eval` to add the evaluation: confusion matrices and where the judge fails.",
    }
    return (builtin_dir("cards") / "judge.md").read_text(encoding="utf-8").format(**facts)
