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
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, Session
from canvasdata.errors import CanvasdataError, UsageError
from canvasdata.evaluate.answers import Answer, read_answers, read_reference
from canvasdata.evaluate.generate import recorded_setting
from canvasdata.evaluate.inception import load_inception, require_weights_file
from canvasdata.evaluate.preprocess import InceptionInputs, JudgeInputs
from canvasdata.evaluate.protocol import UNLEARNCANVAS, Protocol, get_protocol
from canvasdata.formats.common import write_json, write_text
from canvasdata.metrics import combination_scores, frechet_distance, kid, nearest, request_scores, split_retention
from canvasdata.taxonomy import DOMAINS, OBJECTS, SEED_STYLE, UC60, split_target, unknown_message

REFERENCE_INDICES = range(1, 6)
NEIGHBOURS_K = 3   # retained classes nearest the target in IRA near


COMBINATION = "combination"   # the domain of a style x object request
FORGET_FORMS = "style:NAME, object:NAME or style:NAME+object:NAME"


class Forget(NamedTuple):
    """A parsed request: `domain` ('style', 'object' or 'combination') and `target` (a class name, or
    'STYLE+OBJECT' for a combination); unpacks as (domain, target)."""

    domain: str
    target: str

    @property
    def parts(self) -> tuple[str, str]:
        """(style, object) of a combination."""
        if self.domain != COMBINATION:
            raise ValueError(f"{self.domain}:{self.target} is not a combination")
        style, _, obj = self.target.partition("+")
        return style, obj

    @property
    def spec(self) -> str:
        """The request as `--forget` takes it; a combination as style:S+object:O."""
        if self.domain == COMBINATION:
            return combination_spec(*self.parts)
        return f"{self.domain}:{self.target}"


def combination_spec(style: str, obj: str) -> str:
    """'style:STYLE+object:OBJECT', the canonical form of a combination request."""
    return f"style:{style}+object:{obj}"


def split_combination(spec: str, flag: str = "forget") -> tuple[str, str] | None:
    """(style, object) of 'style:S+object:O' (either order), None for a spec without '+'; a malformed
    combination (not two parts, a part not DOMAIN:NAME, a domain named twice) is a UsageError. The
    names are not checked here."""
    if "+" not in spec:
        return None
    parts = spec.split("+")
    named: dict[str, str] = {}
    for part in parts:
        target = split_target(part)
        if target is None or len(parts) != 2:
            raise UsageError(f"{flag} {spec!r}: a combination is style:NAME+object:NAME")
        domain, name = target
        if domain in named:
            raise UsageError(f"{flag} {spec!r}: a combination names one style and one object, not two {domain}s")
        named[domain] = name
    return named["style"], named["object"]


def parse_forget(spec: str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS, *,
                 combinations: bool = True, flag: str = "forget") -> Forget:
    """'style:Van_Gogh' or 'object:Cats' -> (domain, name), the name checked against the label space;
    with `combinations`, 'style:Van_Gogh+object:Dogs' (either order) -> ('combination', 'Van_Gogh+Dogs'),
    both names checked (the style may be Seed_Images). An unknown name is a UsageError naming it, with
    the closest names. `flag`: how errors name the request."""
    combo = split_combination(spec, flag) if combinations else None
    named = tuple(zip(DOMAINS, combo, strict=True)) if combo is not None else (split_target(spec),)
    if named == (None,):
        forms = FORGET_FORMS if combinations else "style:NAME or object:NAME (no combination here)"
        raise UsageError(f"{flag} {spec!r}: expected {forms}")
    for domain, name in named:
        space = styles if domain == "style" else objects
        if name not in space:
            raise UsageError(f"{flag} {spec!r}: " + unknown_message(name, space, f"{domain} names"))
    return Forget(COMBINATION, "+".join(combo)) if combo is not None else Forget(*named[0])


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
               resize: str = UNLEARNCANVAS.judge_resize, progress: bool = False, session: Session | None = None
               ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Predicted class ids per task of every judge (and `features_of`'s penultimate features) for all
    answer images. Each image is decoded once, in `workers` processes, and resized to every judge
    input size as `resize` (a protocol's `judge_resize`) says; `progress` shows a bar of images.

    The images go in fixed batches of `batch_size` in answer order; under torchrun (`session`) the ranks deal
    the batches round-robin and every rank gets every result, so each batch is the one a single process
    judges (a batch's shape changes the last bits of the features) and the numbers match one process's."""
    check_answers_exist(answers)
    session = session or Session.alone()
    for j in judges:
        if hasattr(j, "eval"):
            j.eval()
    devices = {j: _device(j) for j in judges}
    pin = any(d.type == "cuda" for d in devices.values())
    data = JudgeInputs(answers, [j.image_size for j in judges], resize)
    mine, part = _dealt(data, batch_size, session)   # this rank's batches (their first indices)
    results: list[tuple[dict[str, np.ndarray], np.ndarray | None]] = []
    bar = tqdm(total=len(part), unit="img", desc="judge", disable=not progress, leave=False)
    for batch in DataLoader(part, batch_size=batch_size, num_workers=workers, pin_memory=pin):
        bar.update(len(next(iter(batch.values()))))
        on: dict[tuple[torch.device, int], torch.Tensor] = {}  # uint8 travels once per device, then becomes float
        preds: dict[str, np.ndarray] = {}
        feats = None
        for j in judges:
            key = (devices[j], int(j.image_size))
            xj = on.setdefault(key, batch[key[1]].to(key[0], non_blocking=True).float().div_(255))
            for t, logits in j.logits(xj).items():
                preds[t] = logits.argmax(1).cpu().numpy()
            if j is features_of:
                feats = j.features(xj).float().cpu().numpy()
        results.append((preds, feats))
    bar.close()
    by_start = session.merge(dict(zip(mine, results, strict=True)))
    ordered = [by_start[b] for b in sorted(by_start)]
    preds_all = {t: np.concatenate([p[t] for p, _ in ordered]) for t in (ordered[0][0] if ordered else {})}
    features = np.concatenate([f for _, f in ordered]) if features_of is not None and ordered else None
    return preds_all, features


def run_judge(judge: Any, answers: Sequence[Answer], batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS,
              features: bool = False, resize: str = UNLEARNCANVAS.judge_resize
              ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """`run_judges` for one judge."""
    return run_judges([judge], answers, batch_size, workers, features_of=judge if features else None, resize=resize)


def _dealt(data: Any, batch_size: int, session: Session) -> tuple[list[int], Subset]:
    """This rank's fixed batches of `data` (their first indices) and the subset they make."""
    mine = session.deal(range(0, len(data), batch_size))
    return mine, Subset(data, [i for b in mine for i in range(b, min(b + batch_size, len(data)))])


@torch.no_grad()
def inception_features(answers: Sequence[Answer], net: Any, batch_size: int = 32,
                       workers: int = DECODE_WORKERS, session: Session | None = None) -> np.ndarray:
    """Pool features of an Inception network from `canvasdata.evaluate.inception.load_inception`,
    its inputs prepared by the pipeline it was loaded for (`net.pipeline`); under torchrun (`session`) the
    fixed batches are dealt over the ranks and the features gathered on every rank, as `run_judges` does."""
    check_answers_exist(answers)
    session = session or Session.alone()
    dev = _device(net)
    mine, part = _dealt(InceptionInputs(answers, net.pipeline), batch_size, session)
    feats = [net(x.to(dev)).cpu().numpy() for x in DataLoader(part, batch_size=batch_size, num_workers=workers)]
    by_start = session.merge(dict(zip(mine, feats, strict=True)))
    return np.concatenate([by_start[b] for b in sorted(by_start)])


@dataclass
class Report:
    """The scores of one unlearning request (fractions in [0, 1]) and how they were obtained.

    A combination request (`forget["domain"] == "combination"`, with `forget["style"]` and
    `forget["object"]`): `ua` = `fu` (FU, `canvasdata.metrics.finer`), `residual_rate` its complement,
    `n_forget_images` the combination's images, `forgotten_predicted_as` keyed 'STYLE+OBJECT'; IRA and
    CRA are None (and their per-class tables empty): FR's parts `fr_same_style`, `fr_same_object`,
    `fr_rest` (image counts in `fr_images`) take their place, `fr` their mean.
    A single request: `ira_near` / `ira_rest` split IRA's per-class accuracies into the `neighbours_k`
    retained classes nearest the target (`neighbours`, under the similarity `neighbourhood`) and the
    others (`canvasdata.metrics.neighbours`); None when the judge exposes no class embeddings."""

    forget: dict[str, str]
    protocol: Protocol
    judges: dict[str, str]
    num_images: int
    ua: float
    ira: float | None
    cra: float | None
    residual_rate: float
    n_forget_images: int
    n_cra_images: int | None
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
    # a combination request (domain 'combination'): FU (= ua) and FR's parts (None for an empty part)
    fu: float | None = None
    fr: float | None = None
    fr_same_style: float | None = None
    fr_same_object: float | None = None
    fr_rest: float | None = None
    fr_images: dict[str, int] | None = None
    fr_excluded_style: str | None = None
    # a single request: IRA over the k retained classes nearest the target, and over the others
    neighbours_k: int | None = None
    neighbours: dict[str, float] | None = None   # class -> similarity to the target, nearest first
    neighbourhood: str | None = None             # the similarity used (or why there is none)
    ira_near: float | None = None
    ira_rest: float | None = None

    def to_dict(self) -> dict:
        """Every field; the protocol as its name, options, overrides and `reproduces_original`."""
        return {**asdict(self), "protocol": self.protocol.to_dict()}

    def to_markdown(self) -> str:
        """The report as Markdown: headline table, the protocol and every choice it made, the
        forgotten class's confusion and per-class accuracies (a combination: FU and FR's parts)."""
        if self.forget["domain"] == COMBINATION:
            return self._combination_markdown()
        d, t = self.forget["domain"], self.forget["target"]
        other = "object" if d == "style" else "style"
        head = ["UA", "IRA", "CRA", "residual rate", "images"]
        vals = [_pct(self.ua), _pct(self.ira), _pct(self.cra), _pct(self.residual_rate), str(self.num_images)]
        if self.frechet_distance is not None:
            head += ["FD", "KID"]
            vals += [f"{self.frechet_distance:.2f}", f"{self.kid:.4f} ± {self.kid_std:.4f}"]
        lines = [f"# Unlearning report: forget {d} `{t}`", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(vals) + " |", "",
                 f"- UA = 1 − residual rate: the {d} judge still saw `{t}` in {_pct(self.residual_rate)}% of the "
                 f"{self.n_forget_images} images whose prompt names it.",
                 f"- IRA: mean over {len(self.ira_per_class)} retained {d} classes of the {d} judge's "
                 "per-class accuracy.",
                 f"- CRA: the {other} judge's accuracy over {self.n_cra_images} images"
                 + (f", those prompted with `{t}` included." if self.protocol.cra_includes_forgotten
                    else f" whose {d} is not `{t}`."),
                 *self._neighbour_lines(),
                 *self.protocol.markdown_lines(),
                 "- Judges: " + ", ".join(f"{k}: `{v}`" for k, v in self.judges.items()) + "."]
        lines += self._notes()
        lines += ["", f"## What the {d} judge saw instead of `{t}`", "", "| predicted | images |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.forgotten_predicted_as.items()]
        for title, table in ((f"Retained {d} classes (IRA)", self.ira_per_class),
                             (f"{other.capitalize()} classes (CRA)", self.cra_per_class)):
            lines += ["", f"## {title}: per-class accuracy", "", "| class | accuracy |", "|---|---|"]
            lines += [f"| {k} | {_pct(v)} |" for k, v in table.items()]
        if self.neighbours:
            lines += ["", f"## The {d} classes nearest `{t}` (IRA near)", "", "| class | similarity | accuracy |",
                      "|---|---|---|"]
            lines += [f"| {k} | {v:.4f} | {_pct(self.ira_per_class.get(k))} |" for k, v in self.neighbours.items()]
        return "\n".join(lines) + "\n"

    def _neighbour_lines(self) -> list[str]:
        """The IRA near / rest line (nothing for a report without a neighbourhood, e.g. an old one)."""
        if self.neighbourhood is None:
            return []
        if self.neighbours is None:
            return [f"- IRA near / rest: not computed ({self.neighbourhood})."]
        d, t = self.forget["domain"], self.forget["target"]
        names = ", ".join(f"`{k}`" for k in self.neighbours) or "none"
        rest = len(self.ira_per_class) - len(self.neighbours)
        return [f"- IRA near {_pct(self.ira_near)}%, IRA rest {_pct(self.ira_rest)}%: IRA's per-class mean over the "
                f"{len(self.neighbours)} retained {d} classes nearest `{t}` (k = {self.neighbours_k}: {names}) and "
                f"over the other {rest}; nearness: {self.neighbourhood}; ties broken by class id."]

    def _notes(self) -> list[str]:
        """Notes shared by every report: Seed_Images' prompt words, FD / KID."""
        lines = []
        gen = self.generation or {}
        words = recorded_setting(gen, "seed_images_words") if SEED_STYLE in gen.get("styles", []) else None
        if words is not None and words != self.protocol.seed_images_words:
            lines.append(f"- Note: this answer set's prompts name Seed_Images \"{words}\" (generation.json), "
                         f"not \"{self.protocol.seed_images_words}\" as the protocol does.")
        if self.frechet_distance is not None:
            lines.append(f"- FD / KID: {self.num_fd_images} answers of the retained cells against "
                         f"{self.num_reference_images} real images; features: {self.feature_extractor}.")
        return lines

    def _combination_markdown(self) -> str:
        s, o = self.forget["style"], self.forget["object"]
        n = self.fr_images or {}
        head = ["FU", "FR", "FR same style", "FR same object", "FR rest", "residual rate", "images"]
        vals = [_pct(self.fu), _pct(self.fr), _pct(self.fr_same_style), _pct(self.fr_same_object), _pct(self.fr_rest),
                _pct(self.residual_rate), str(self.num_images)]
        if self.frechet_distance is not None:
            head += ["FD", "KID"]
            vals += [f"{self.frechet_distance:.2f}", f"{self.kid:.4f} ± {self.kid_std:.4f}"]
        excluded = (f" The {n.get('excluded', 0)} images of `{self.fr_excluded_style}` outside the combination's style "
                    "are left out of FR (the protocol's seed_images_in_style_metrics=False)."
                    if self.fr_excluded_style else "")
        lines = [f"# Unlearning report: forget combination `{s}` × `{o}`", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head), "| " + " | ".join(vals) + " |", "",
                 f"- FU = 1 − residual rate: the style and object judges together still saw `{s}` × `{o}` in "
                 f"{_pct(self.residual_rate)}% of the {self.n_forget_images} images whose prompt names the "
                 "combination.",
                 "- FR's parts: the share of images judged correctly on both style and object, among the "
                 f"{n.get('same_style', 0)} images of `{s}` with another object (same style), the "
                 f"{n.get('same_object', 0)} images of `{o}` in another style (same object) and the "
                 f"{n.get('rest', 0)} others (rest); FR is the mean of the non-empty parts." + excluded,
                 "- IRA and CRA are not computed for a combination request: FR's parts take their place.",
                 *self.protocol.markdown_lines(),
                 "- Judges: " + ", ".join(f"{k}: `{v}`" for k, v in self.judges.items()) + "."]
        lines += self._notes()
        lines += ["", f"## What the judges saw instead of `{s}` × `{o}`", "", "| predicted (style+object) | images |",
                  "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.forgotten_predicted_as.items()]
        return "\n".join(lines) + "\n"

    def write(self, out: Path | str) -> dict[str, str]:
        """Write report.json and report.md into `out`; returns their paths (also kept in `paths`)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.paths = {"json": str(out / "report.json"), "markdown": str(out / "report.md")}
        write_json(out / "report.json", self.to_dict())
        write_text(out / "report.md", self.to_markdown())
        return self.paths


def _pct(v: float | None) -> str:
    return "—" if v is None or v != v else f"{v * 100:.2f}"


def _num(v: float) -> float | None:
    """A fraction for a report field: None for NaN (an empty part)."""
    return None if v != v else float(v)


def _generation(answers: Sequence[Answer] | Path | str) -> dict | None:
    if isinstance(answers, (str, Path)) and (Path(answers) / "generation.json").exists():
        return json.loads((Path(answers) / "generation.json").read_text())
    return None


def class_ids(answers: list[Answer], styles: list[str], objects: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each answer's style and object class ids in the judges' label spaces; an answer outside them is
    an error naming it."""
    for a in answers:
        if a.style not in styles or a.object not in objects:
            bad, space = (a.style, styles) if a.style not in styles else (a.object, objects)
            raise UsageError(f"{a.name}: {bad!r} is not in the judge's label space: "
                             + unknown_message(bad, space, "classes"))
    return np.array([styles.index(a.style) for a in answers]), np.array([objects.index(a.object) for a in answers])


def file_identity(answer: Answer) -> tuple[str, int, int] | None:
    """What makes an answer's image file the same file again (resolved path, size, modification time), so
    that a folder linked under several requests is one set of images; None for an image held in memory or
    a file that cannot be read (judging it names it)."""
    if answer.path is None:
        return None
    try:
        st = answer.path.stat()
    except OSError:
        return None
    return str(answer.path.resolve()), st.st_size, st.st_mtime_ns


class JudgeCache:
    """What the judges said of images, kept and shared by the requests one suite scores, so that each image
    is judged once, not once a request: the reference images (every request compares its retained cells with
    the real images of those cells, most of them the same from one request to the next) and answer files
    (a world links the original model's one answer folder under every request). Reading images again is
    cheap; a request still reads and compares its own cells. Under torchrun every rank holds its own cache
    and misses the same images, so the ranks stay in step."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, Hashable], Any] = {}

    def rows(self, extractor: str, items: Sequence[Answer], identity: Callable[[Answer], Hashable | None],
             compute: Callable[[list[Answer]], Sequence[Any]]) -> list[Any]:
        """One row per item under `extractor` (a name for one way of judging, with whatever else its rows
        depend on), computing only the items not seen before; an item whose `identity` is None is never kept."""
        ids = [identity(a) for a in items]
        missing = [i for i, k in enumerate(ids) if k is None or (extractor, k) not in self._rows]
        fresh = dict(zip(missing, compute([items[i] for i in missing]), strict=True)) if missing else {}
        for i, row in fresh.items():
            if ids[i] is not None:
                self._rows[(extractor, ids[i])] = row
        return [fresh[i] if i in fresh else self._rows[(extractor, ids[i])] for i in range(len(items))]

    def features(self, extractor: str, items: Sequence[Answer],
                 compute: Callable[[list[Answer]], np.ndarray]) -> np.ndarray:
        """The feature rows of reference images under `extractor` (which names their source), each image
        known by its (style, object, index)."""
        return np.stack(self.rows(extractor, items, lambda a: a.key, lambda todo: list(compute(todo))))

    def judged(self, extractor: str, answers: Sequence[Answer],
               compute: Callable[[list[Answer]], tuple[dict[str, np.ndarray], np.ndarray | None]]
               ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """`run_judges`' outputs (class ids per task, features or None) for answer images, each file known
        by `file_identity`; `compute` is `run_judges` over the images not seen before."""
        if not answers:
            return compute([])

        def split(todo: list[Answer]) -> list[tuple[dict[str, Any], np.ndarray | None]]:
            preds, feats = compute(todo)
            return [({t: p[i] for t, p in preds.items()}, None if feats is None else feats[i])
                    for i in range(len(todo))]

        rows = self.rows(extractor, answers, file_identity, split)
        preds = {t: np.array([r[0][t] for r in rows]) for t in rows[0][0]}
        feats = None if rows[0][1] is None else np.stack([r[1] for r in rows])
        return preds, feats


def score_answers(answers: Sequence[Answer] | Path | str, forget: str, judges: Sequence[Any], *,
                  protocol: str | Protocol | None = None, reference: Path | str | None = None,
                  reference_indices: Sequence[int] = REFERENCE_INDICES, inception: Path | str | None = None,
                  batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS, kid_subsets: int = 100,
                  kid_subset_size: int = 1000, out: Path | str | None = None, progress: bool = False,
                  split: str | None = None, neighbours_k: int = NEIGHBOURS_K,
                  session: Session | None = None, cache: JudgeCache | None = None) -> Report:
    """Score one unlearning request (`forget` = 'style:NAME', 'object:NAME' or a combination
    'style:NAME+object:NAME', scored by FU and FR's parts: see `Report`).

    `answers`: a folder of `{style}_{object}_seed{N}.jpg`, a build directory (`split`: one of its splits),
    or a list of Answers.
    `judges`: objects with the judge contract; one must judge styles and one objects (may be the
    same). `protocol`: a protocol name or a Protocol (`get_protocol(name, **overrides)`); default
    `unlearncanvas`. `reference`: real images for FD and KID (a `{style}/{object}/{k}.jpg` folder or a
    build): images `reference_indices` of the cells the answer set covers, except the forgotten
    concept's cells, compared with the answers of those same retained cells. Features: the style
    judge's penultimate layer, or Inception v3 pool features when `inception` names its weights file.
    `neighbours_k`: how many retained classes nearest the target form IRA near (a single request; the
    nearness: cosine similarity of the target-domain judge's class embeddings, its head's weight rows).
    Writes report.json and report.md into `out` when given; `progress` shows a bar while judging. Under
    torchrun (`session`) the ranks share the judging (`run_judges`); every rank returns the report, rank 0
    alone writes it. `cache`: what the judges said of images in earlier requests (a suite's `JudgeCache`)."""
    proto = get_protocol(protocol)
    if inception is not None:
        require_weights_file(inception)  # fail before any judging
    style_j, object_j = judge_for(judges, "style"), judge_for(judges, "object")
    styles, objects = list(style_j.class_names["style"]), list(object_j.class_names["object"])
    generation = _generation(answers)
    if isinstance(answers, (str, Path)):
        answers = read_answers(answers, sorted(set(UC60) | set(styles)), sorted(set(OBJECTS) | set(objects)), split)
    answers = list(answers)
    request = parse_forget(forget, styles, objects)
    domain, target = request
    if neighbours_k < 0:
        raise UsageError(f"neighbours k {neighbours_k}: expected a number >= 0")
    ts, to = class_ids(answers, styles, objects)
    if domain == COMBINATION:
        style_id, object_id = styles.index(request.parts[0]), objects.index(request.parts[1])
        if not ((ts == style_id) & (to == object_id)).any():
            raise UsageError(f"forget {forget!r}: no answer image is prompted as {request.parts[0]} × "
                             f"{request.parts[1]}")
    cache = cache or JudgeCache()
    judging = list(dict.fromkeys([style_j, object_j]))
    features_of = style_j if reference is not None and inception is None else None
    preds, feats = cache.judged(
        f"answers {[id(j) for j in judging]} features {id(features_of)} {proto.judge_resize}", answers,
        lambda todo: run_judges(judging, todo, batch_size, workers, features_of=features_of,
                                resize=proto.judge_resize, progress=progress, session=session))
    seed = styles.index(SEED_STYLE) if SEED_STYLE in styles else None
    names = {"style": judge_name(style_j), "object": judge_name(object_j)}
    if domain == COMBINATION:
        report = _combination_report(request, proto, names, styles, objects, ts, to, preds, seed, generation)
    else:
        own_space = styles if domain == "style" else objects
        other_space = objects if domain == "style" else styles
        tid = own_space.index(target)
        s = request_scores(ts, to, preds["style"], preds["object"], domain, tid, seed_style=seed,
                           seed_images_in_style_metrics=proto.seed_images_in_style_metrics,
                           cra_includes_forgotten=proto.cra_includes_forgotten)
        own_true, own_pred = (ts, preds["style"]) if domain == "style" else (to, preds["object"])
        report = Report(
            forget={"domain": domain, "target": target}, protocol=proto, judges=names, num_images=len(answers),
            ua=s.ua, ira=s.ira, cra=s.cra, residual_rate=s.residual_rate, n_forget_images=s.n_forget,
            n_cra_images=s.n_cra, ira_per_class={own_space[c]: v for c, v in s.per_class_accuracy.items()},
            cra_per_class={other_space[c]: v for c, v in s.cra_per_class.items()},
            forgotten_predicted_as=dict(Counter(own_space[p] for p in own_pred[own_true == tid]).most_common()),
            generation=generation)
        own_judge = style_j if domain == "style" else object_j
        _add_neighbours(report, own_judge, domain, own_space, tid, s.per_class_accuracy, neighbours_k)
    if reference is not None:
        _add_distances(report, answers, feats, reference, reference_indices, inception, style_j, proto, batch_size,
                       workers, kid_subsets, kid_subset_size, session, cache)
    if out is not None and (session is None or session.main):
        report.write(out)
    return report


def class_embeddings(judge: Any, task: str) -> np.ndarray | None:
    """The judge's class embeddings for `task` (its head's weight rows, [classes, features]), or None
    for a judge that exposes none (no `class_embeddings`, or a head without a weight row per class)."""
    get = getattr(judge, "class_embeddings", None)
    if get is None:
        return None
    try:
        emb = get(task)
    except (CanvasdataError, KeyError, AttributeError, ValueError):
        return None
    emb = emb.detach().float().cpu().numpy() if isinstance(emb, torch.Tensor) else np.asarray(emb, np.float64)
    return emb if emb.ndim == 2 and len(emb) == len(judge.class_names[task]) else None


def _add_neighbours(report: Report, judge: Any, domain: str, space: Sequence[str], target: int,
                    per_class: dict[int, float], k: int) -> None:
    """IRA near / rest: the k retained classes (those in IRA, so present in the answer set) nearest the
    target by cosine similarity of the judge's class embeddings, and the others."""
    report.neighbours_k = k
    emb = class_embeddings(judge, domain)
    if emb is None:
        report.neighbourhood = f"the {domain} judge ({judge_name(judge)}) exposes no class embeddings"
        return
    near = nearest(emb, target, k, among=per_class)
    report.neighbourhood = (f"cosine similarity of the {domain} judge's class embeddings (the weight rows of its "
                            f"{domain} head, {judge_name(judge)})")
    report.neighbours = {space[c]: v for c, v in zip(near.classes, near.similarities, strict=True)}
    report.ira_near, report.ira_rest = map(_num, split_retention(per_class, near.classes))


def _combination_report(request: Forget, proto: Protocol, judges: dict[str, str], styles: list[str],
                        objects: list[str], ts: np.ndarray, to: np.ndarray, preds: dict[str, np.ndarray],
                        seed: int | None, generation: dict | None) -> Report:
    """The Report of a combination request: FU and FR's parts (`canvasdata.metrics.finer`); Seed_Images
    is left out of FR as the protocol's seed_images_in_style_metrics says."""
    style, obj = request.parts
    sid, oid = styles.index(style), objects.index(obj)
    exclude = None if proto.seed_images_in_style_metrics else seed
    c = combination_scores(ts, to, preds["style"], preds["object"], sid, oid, exclude_style=exclude)
    sel = (ts == sid) & (to == oid)
    seen = Counter(f"{styles[a]}+{objects[b]}" for a, b in zip(preds["style"][sel], preds["object"][sel], strict=True))
    counts = {"same_style": c.n_same_style, "same_object": c.n_same_object, "rest": c.n_rest}
    if c.excluded_style is not None:
        counts["excluded"] = int((ts == c.excluded_style).sum())
    return Report(
        forget={"domain": COMBINATION, "target": request.target, "style": style, "object": obj}, protocol=proto,
        judges=judges, num_images=len(ts), ua=c.fu, ira=None, cra=None, residual_rate=c.residual_rate,
        n_forget_images=c.n_combination, n_cra_images=None, ira_per_class={}, cra_per_class={},
        forgotten_predicted_as=dict(seen.most_common()), generation=generation, fu=c.fu, fr=_num(c.fr),
        fr_same_style=_num(c.same_style), fr_same_object=_num(c.same_object), fr_rest=_num(c.rest),
        fr_images=counts, fr_excluded_style=None if c.excluded_style is None else styles[c.excluded_style])


def _add_distances(report: Report, answers: list[Answer], feats: np.ndarray | None, reference: Path | str,
                   indices: Sequence[int], inception: Path | str | None, style_j: Any, proto: Protocol,
                   batch_size: int, workers: int, kid_subsets: int, kid_subset_size: int,
                   session: Session | None, cache: JudgeCache) -> None:
    """FD and KID between the answers of the retained cells and the matching real images (the real images'
    features, judge's or Inception's, shared over `session`'s ranks, and kept in `cache`)."""
    domain, target = report.forget["domain"], report.forget["target"]
    if domain == COMBINATION:
        cell = (report.forget["style"], report.forget["object"])
        retained = lambda s, o: (s, o) != cell  # noqa: E731
    else:
        retained = lambda s, o: (s if domain == "style" else o) != target  # noqa: E731
    cells = {(a.style, a.object) for a in answers if retained(a.style, a.object)}
    keep_idx = set(indices)
    real = read_reference(reference, lambda s, o, k: (s, o) in cells and k in keep_idx)
    source = Path(reference).resolve()   # with the feature function, what a cached feature row is of
    sel = np.array([retained(a.style, a.object) for a in answers])
    fake = [a for a, k in zip(answers, sel, strict=True) if k]
    if inception is not None:
        net = load_inception(inception, _device(style_j), proto.inception_pipeline)
        fa = inception_features(fake, net, batch_size, workers, session)
        fr = cache.features(f"{source} inception {Path(inception).resolve()} {proto.inception_pipeline}", real,
                            lambda items: inception_features(items, net, batch_size, workers, session))
        report.feature_extractor = net.description
    else:
        fa = feats[sel]
        fr = cache.features(f"{source} judge {id(style_j)} {proto.judge_resize}", real,
                            lambda items: run_judges([style_j], items, batch_size, workers, features_of=style_j,
                                                     resize=proto.judge_resize, session=session)[1])
        report.feature_extractor = f"style judge penultimate layer ({judge_name(style_j)}, {fa.shape[1]}-d)"
    report.frechet_distance = frechet_distance(fa, fr)
    report.kid, report.kid_std = kid(fa, fr, subsets=kid_subsets, subset_size=kid_subset_size)
    report.num_fd_images, report.num_reference_images = len(fake), len(real)
