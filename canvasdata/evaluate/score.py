"""Score one unlearning request's answer set with judges: UA, IRA, CRA (from the residual rate),
per-class accuracies, what the judge saw instead of the forgotten class, and optionally Frechet
distance and KID against real images, under an evaluation protocol
(`canvasdata.evaluate.protocol`, default `unlearncanvas`: the original benchmark code's choices).
Judges are used only through their contract (`tasks`, `class_names`, `image_size`, `logits(x)`,
`features(x)` on float images in [0, 1]); images reach them at their own input size, resized as the
protocol says, so a judge never resizes them itself."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer, read_answers, read_reference
from canvasdata.evaluate.generate import recorded_setting
from canvasdata.evaluate.inception import load_inception, require_weights_file
from canvasdata.evaluate.preprocess import InceptionInputs, JudgeInputs
from canvasdata.evaluate.protocol import UNLEARNCANVAS, Protocol, get_protocol
from canvasdata.formats.common import write_json, write_text
from canvasdata.metrics import frechet_distance, kid, request_scores
from canvasdata.taxonomy import OBJECTS, SEED_STYLE, UC60, unknown_message

REFERENCE_INDICES = range(1, 6)


def parse_forget(spec: str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS) -> tuple[str, str]:
    """'style:Van_Gogh' or 'object:Cats' -> (domain, name), the name checked against the label space."""
    domain, _, name = spec.partition(":")
    if domain not in ("style", "object") or not name:
        raise UsageError(f"forget {spec!r}: expected style:NAME or object:NAME")
    space = styles if domain == "style" else objects
    if name not in space:
        raise UsageError(f"forget {spec!r}: " + unknown_message(name, space, f"{domain} names"))
    return domain, name


def judge_for(judges: Sequence[Any], task: str) -> Any:
    """The first judge with `task` among its tasks."""
    for j in judges:
        if task in j.tasks:
            return j
    raise UsageError(f"no judge for the {task} task among the judges given (their tasks: "
                     f"{sorted({t for j in judges for t in j.tasks})})")


def judge_name(judge: Any) -> str:
    """A judge's model name for reports (its `info.model` when it has one)."""
    info = getattr(judge, "info", None)
    return getattr(info, "model", None) or type(judge).__name__


def _device(module: Any) -> torch.device:
    try:
        return next(module.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def check_answers_exist(answers: Sequence[Answer]) -> None:
    """Fail before any work when an answer image file is missing, naming it."""
    missing = [a for a in answers if a.data is None and (a.path is None or not a.path.exists())]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"{missing[0].name}: missing answer image{more}")


@torch.no_grad()
def run_judges(judges: Sequence[Any], answers: Sequence[Answer], batch_size: int = JUDGE_BATCH,
               workers: int = DECODE_WORKERS, features_of: Any | None = None,
               resize: str = UNLEARNCANVAS.judge_resize, progress: bool = False
               ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Predicted class ids per task of every judge (and `features_of`'s penultimate features) for all
    answer images. Each image is decoded once, in `workers` processes, and resized to every judge
    input size as `resize` (a protocol's `judge_resize`) says; `progress` shows a bar of images."""
    check_answers_exist(answers)
    preds: dict[str, list[np.ndarray]] = {}
    feats: list[np.ndarray] = []
    for j in judges:
        if hasattr(j, "eval"):
            j.eval()
    devices = {j: _device(j) for j in judges}
    pin = any(d.type == "cuda" for d in devices.values())
    data = JudgeInputs(answers, [j.image_size for j in judges], resize)
    bar = tqdm(total=len(data), unit="img", desc="judge", disable=not progress, leave=False)
    for batch in DataLoader(data, batch_size=batch_size, num_workers=workers, pin_memory=pin):
        bar.update(len(next(iter(batch.values()))))
        on: dict[tuple[torch.device, int], torch.Tensor] = {}  # uint8 travels once per device, then becomes float
        for j in judges:
            key = (devices[j], int(j.image_size))
            xj = on.setdefault(key, batch[key[1]].to(key[0], non_blocking=True).float().div_(255))
            for t, logits in j.logits(xj).items():
                preds.setdefault(t, []).append(logits.argmax(1).cpu().numpy())
            if j is features_of:
                feats.append(j.features(xj).float().cpu().numpy())
    bar.close()
    features = np.concatenate(feats) if features_of is not None else None
    return {t: np.concatenate(v) for t, v in preds.items()}, features


def run_judge(judge: Any, answers: Sequence[Answer], batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS,
              features: bool = False, resize: str = UNLEARNCANVAS.judge_resize
              ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """`run_judges` for one judge."""
    return run_judges([judge], answers, batch_size, workers, features_of=judge if features else None, resize=resize)


@torch.no_grad()
def inception_features(answers: Sequence[Answer], net: Any, batch_size: int = 32,
                       workers: int = DECODE_WORKERS) -> np.ndarray:
    """Pool features of an Inception network from `canvasdata.evaluate.inception.load_inception`,
    its inputs prepared by the pipeline it was loaded for (`net.pipeline`)."""
    check_answers_exist(answers)
    dev = _device(net)
    loader = DataLoader(InceptionInputs(answers, net.pipeline), batch_size=batch_size, num_workers=workers)
    return np.concatenate([net(x.to(dev)).cpu().numpy() for x in loader])


@dataclass
class Report:
    """The scores of one unlearning request (fractions in [0, 1]) and how they were obtained."""

    forget: dict[str, str]
    protocol: Protocol
    judges: dict[str, str]
    num_images: int
    ua: float
    ira: float
    cra: float
    residual_rate: float
    n_forget_images: int
    n_cra_images: int
    ira_per_class: dict[str, float]
    cra_per_class: dict[str, float]
    forgotten_predicted_as: dict[str, int]
    frechet_distance: float | None = None
    kid: float | None = None
    kid_std: float | None = None
    feature_extractor: str | None = None
    num_fd_images: int | None = None
    num_reference_images: int | None = None
    generation: dict | None = None
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every field; the protocol as its name, options, overrides and `reproduces_original`."""
        return {**asdict(self), "protocol": self.protocol.to_dict()}

    def to_markdown(self) -> str:
        """The report as Markdown: headline table, the protocol and every choice it made, the
        forgotten class's confusion and per-class accuracies."""
        pct = lambda v: "—" if v is None or v != v else f"{v * 100:.2f}"  # noqa: E731
        d, t = self.forget["domain"], self.forget["target"]
        other = "object" if d == "style" else "style"
        head = ["UA", "IRA", "CRA", "residual rate", "images"]
        vals = [pct(self.ua), pct(self.ira), pct(self.cra), pct(self.residual_rate), str(self.num_images)]
        if self.frechet_distance is not None:
            head += ["FD", "KID"]
            vals += [f"{self.frechet_distance:.2f}", f"{self.kid:.4f} ± {self.kid_std:.4f}"]
        lines = [f"# Unlearning report: forget {d} `{t}`", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(vals) + " |", "",
                 f"- UA = 1 − residual rate: the {d} judge still saw `{t}` in {pct(self.residual_rate)}% of the "
                 f"{self.n_forget_images} images whose prompt names it.",
                 f"- IRA: mean over {len(self.ira_per_class)} retained {d} classes of the {d} judge's "
                 "per-class accuracy.",
                 f"- CRA: the {other} judge's accuracy over {self.n_cra_images} images"
                 + (f", those prompted with `{t}` included." if self.protocol.cra_includes_forgotten
                    else f" whose {d} is not `{t}`."),
                 *self.protocol.markdown_lines(),
                 "- Judges: " + ", ".join(f"{k}: `{v}`" for k, v in self.judges.items()) + "."]
        gen = self.generation or {}
        words = recorded_setting(gen, "seed_images_words") if SEED_STYLE in gen.get("styles", []) else None
        if words is not None and words != self.protocol.seed_images_words:
            lines.append(f"- Note: this answer set's prompts name Seed_Images \"{words}\" (generation.json), "
                         f"not \"{self.protocol.seed_images_words}\" as the protocol does.")
        if self.frechet_distance is not None:
            lines.append(f"- FD / KID: {self.num_fd_images} answers of the retained cells against "
                         f"{self.num_reference_images} real images; features: {self.feature_extractor}.")
        lines += ["", f"## What the {d} judge saw instead of `{t}`", "", "| predicted | images |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.forgotten_predicted_as.items()]
        for title, table in ((f"Retained {d} classes (IRA)", self.ira_per_class),
                             (f"{other.capitalize()} classes (CRA)", self.cra_per_class)):
            lines += ["", f"## {title}: per-class accuracy", "", "| class | accuracy |", "|---|---|"]
            lines += [f"| {k} | {pct(v)} |" for k, v in table.items()]
        return "\n".join(lines) + "\n"

    def write(self, out: Path | str) -> dict[str, str]:
        """Write report.json and report.md into `out`; returns their paths (also kept in `paths`)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.paths = {"json": str(out / "report.json"), "markdown": str(out / "report.md")}
        write_json(out / "report.json", self.to_dict())
        write_text(out / "report.md", self.to_markdown())
        return self.paths


def _generation(answers: Sequence[Answer] | Path | str) -> dict | None:
    if isinstance(answers, (str, Path)) and (Path(answers) / "generation.json").exists():
        return json.loads((Path(answers) / "generation.json").read_text())
    return None


def _class_ids(answers: list[Answer], styles: list[str], objects: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each answer's style and object class ids in the judges' label spaces; an answer outside them is
    an error naming it."""
    for a in answers:
        if a.style not in styles or a.object not in objects:
            bad, space = (a.style, styles) if a.style not in styles else (a.object, objects)
            raise UsageError(f"{a.name}: {bad!r} is not in the judge's label space: "
                             + unknown_message(bad, space, "classes"))
    return np.array([styles.index(a.style) for a in answers]), np.array([objects.index(a.object) for a in answers])


def score_answers(answers: Sequence[Answer] | Path | str, forget: str, judges: Sequence[Any], *,
                  protocol: str | Protocol | None = None, reference: Path | str | None = None,
                  reference_indices: Sequence[int] = REFERENCE_INDICES, inception: Path | str | None = None,
                  batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS, kid_subsets: int = 100,
                  kid_subset_size: int = 1000, out: Path | str | None = None, progress: bool = False,
                  split: str | None = None) -> Report:
    """Score one unlearning request (`forget` = 'style:NAME' or 'object:NAME').

    `answers`: a folder of `{style}_{object}_seed{N}.jpg`, a build directory (`split`: one of its splits),
    or a list of Answers.
    `judges`: objects with the judge contract; one must judge styles and one objects (may be the
    same). `protocol`: a protocol name or a Protocol (`get_protocol(name, **overrides)`); default
    `unlearncanvas`. `reference`: real images for FD and KID (a `{style}/{object}/{k}.jpg` folder or a
    build): images `reference_indices` of the cells the answer set covers, except the forgotten
    concept's cells, compared with the answers of those same retained cells. Features: the style
    judge's penultimate layer, or Inception v3 pool features when `inception` names its weights file.
    Writes report.json and report.md into `out` when given; `progress` shows a bar while judging."""
    proto = get_protocol(protocol)
    if inception is not None:
        require_weights_file(inception)  # fail before any judging
    style_j, object_j = judge_for(judges, "style"), judge_for(judges, "object")
    styles, objects = list(style_j.class_names["style"]), list(object_j.class_names["object"])
    generation = _generation(answers)
    if isinstance(answers, (str, Path)):
        answers = read_answers(answers, sorted(set(UC60) | set(styles)), sorted(set(OBJECTS) | set(objects)), split)
    answers = list(answers)
    domain, target = parse_forget(forget, styles, objects)
    ts, to = _class_ids(answers, styles, objects)
    own_space = styles if domain == "style" else objects
    other_space = objects if domain == "style" else styles
    tid = own_space.index(target)
    use_judge_features = reference is not None and inception is None
    preds, feats = run_judges(list(dict.fromkeys([style_j, object_j])), answers, batch_size, workers,
                              features_of=style_j if use_judge_features else None, resize=proto.judge_resize,
                              progress=progress)
    s = request_scores(ts, to, preds["style"], preds["object"], domain, tid,
                       seed_style=styles.index(SEED_STYLE) if SEED_STYLE in styles else None,
                       seed_images_in_style_metrics=proto.seed_images_in_style_metrics,
                       cra_includes_forgotten=proto.cra_includes_forgotten)
    own_true, own_pred = (ts, preds["style"]) if domain == "style" else (to, preds["object"])
    report = Report(
        forget={"domain": domain, "target": target}, protocol=proto,
        judges={"style": judge_name(style_j), "object": judge_name(object_j)}, num_images=len(answers),
        ua=s.ua, ira=s.ira, cra=s.cra, residual_rate=s.residual_rate, n_forget_images=s.n_forget,
        n_cra_images=s.n_cra, ira_per_class={own_space[c]: v for c, v in s.per_class_accuracy.items()},
        cra_per_class={other_space[c]: v for c, v in s.cra_per_class.items()},
        forgotten_predicted_as=dict(Counter(own_space[p] for p in own_pred[own_true == tid]).most_common()),
        generation=generation)
    if reference is not None:
        _add_distances(report, answers, feats, reference, reference_indices, inception, style_j, proto, batch_size,
                       workers, kid_subsets, kid_subset_size)
    if out is not None:
        report.write(out)
    return report


def _add_distances(report: Report, answers: list[Answer], feats: np.ndarray | None, reference: Path | str,
                   indices: Sequence[int], inception: Path | str | None, style_j: Any, proto: Protocol,
                   batch_size: int, workers: int, kid_subsets: int, kid_subset_size: int) -> None:
    """FD and KID between the answers of the retained cells and the matching real images."""
    domain, target = report.forget["domain"], report.forget["target"]
    retained = lambda s, o: (s if domain == "style" else o) != target  # noqa: E731
    cells = {(a.style, a.object) for a in answers if retained(a.style, a.object)}
    keep_idx = set(indices)
    real = read_reference(reference, lambda s, o, k: (s, o) in cells and k in keep_idx)
    sel = np.array([retained(a.style, a.object) for a in answers])
    fake = [a for a, k in zip(answers, sel, strict=True) if k]
    if inception is not None:
        net = load_inception(inception, _device(style_j), proto.inception_pipeline)
        fa, fr = (inception_features(x, net, batch_size, workers) for x in (fake, real))
        report.feature_extractor = net.description
    else:
        fa = feats[sel]
        fr = run_judges([style_j], real, batch_size, workers, features_of=style_j, resize=proto.judge_resize)[1]
        report.feature_extractor = f"style judge penultimate layer ({judge_name(style_j)}, {fa.shape[1]}-d)"
    report.frechet_distance = frechet_distance(fa, fr)
    report.kid, report.kid_std = kid(fa, fr, subsets=kid_subsets, subset_size=kid_subset_size)
    report.num_fd_images, report.num_reference_images = len(fake), len(real)
