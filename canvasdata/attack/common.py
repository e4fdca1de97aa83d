"""What both attacks share: the prompts of a forget request, how images are sampled (the protocol's
defaults, recorded in every report), loading pipelines, and reading an answer set back in a fixed order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from canvasdata.devices import Session
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer, read_answer_folder
from canvasdata.evaluate.generate import GENERATE_BATCH, answer_name, generate_answers, load_pipeline
from canvasdata.evaluate.protocol import (
    PROTOCOL_GUIDANCE,
    PROTOCOL_SCHEDULER,
    PROTOCOL_SEEDS,
    PROTOCOL_SIZE,
    PROTOCOL_STEPS,
    Protocol,
)
from canvasdata.evaluate.score import judge_for, judge_name, parse_forget
from canvasdata.evaluate.suite import ATTACK_REPORT
from canvasdata.formats.common import write_json, write_text
from canvasdata.sources.diffusers import PipelineOptions, diffusers_version
from canvasdata.taxonomy import OBJECTS, UC50, UC60, unknown_message


@dataclass(frozen=True)
class Request:
    """One forget request and the prompts an attack uses: its target crossed with the other domain's classes."""

    domain: str
    target: str
    styles: tuple[str, ...]
    objects: tuple[str, ...]

    @property
    def cells(self) -> list[tuple[str, str]]:
        """(style, object) of every prompt, in the order of the answer files."""
        return [(s, o) for s in self.styles for o in self.objects]

    def to_dict(self) -> dict:
        """Domain, target, styles and objects, for report.json."""
        return {"domain": self.domain, "target": self.target, "styles": list(self.styles),
                "objects": list(self.objects)}


def forget_request(forget: str, styles: Sequence[str] | None = None, objects: Sequence[str] | None = None,
                   judges: Sequence[Any] = ()) -> Request:
    """The prompts of 'style:NAME' (NAME × `objects`, default all 20) or 'object:NAME' (`styles`, default
    uc50's, × NAME); the names are checked against the label spaces and the judges' classes."""
    domain, target = parse_forget(forget, combinations=False)
    if judges:
        parse_forget(forget, judge_for(judges, "style").class_names["style"],
                     judge_for(judges, "object").class_names["object"], combinations=False)
    if domain == "style" and styles or domain == "object" and objects:
        other = "objects" if domain == "style" else "styles"
        raise UsageError(f"--{domain}s: a {domain} request prompts only its target {domain}; choose the {other}")
    styles = [target] if domain == "style" else list(styles or UC50)
    objects = [target] if domain == "object" else list(objects or OBJECTS)
    for names, allowed, what in ((styles, UC60, "style names"), (objects, OBJECTS, "object names")):
        for name in names:
            if name not in allowed:
                raise UsageError(unknown_message(name, allowed, what))
    return Request(domain, target, tuple(dict.fromkeys(styles)), tuple(dict.fromkeys(objects)))


@dataclass(frozen=True)
class Sampling:
    """How images are generated: the protocol's defaults (seeds 188/288/588/688/888, 512 px, 100 DDIM
    steps, guidance 9.0, a CPU generator per image); `options` say how pipelines are loaded."""

    seeds: tuple[int, ...] = PROTOCOL_SEEDS
    size: int = PROTOCOL_SIZE
    steps: int = PROTOCOL_STEPS
    guidance: float = PROTOCOL_GUIDANCE
    batch_size: int = GENERATE_BATCH
    device: str = "auto"
    generator_device: str = "cpu"
    options: PipelineOptions = field(default_factory=lambda: PipelineOptions(scheduler=PROTOCOL_SCHEDULER))

    def load(self, model: str | Path | Any) -> Any:
        """A pipeline from a directory or Hub id (loaded as `options` say), or a loaded pipeline as it is."""
        return load_pipeline(model, self.device, self.options) if isinstance(model, (str, Path)) else model

    def generate(self, pipe: Any, out: Path, request: Request, protocol: Protocol,
                 seeds: Sequence[int] | None = None, progress: bool = True, session: Session | None = None) -> Path:
        """The request's answer set from `pipe` (resumable: images already there are kept; shared by the
        torchrun ranks of `session`)."""
        return generate_answers(pipe, out, styles=request.styles, objects=request.objects,
                                seeds=self.seeds if seeds is None else seeds, size=self.size, steps=self.steps,
                                guidance=self.guidance, batch_size=self.batch_size, device=self.device,
                                options=self.options, generator_device=self.generator_device, protocol=protocol,
                                progress=progress, session=session)

    def to_dict(self, pipe: Any) -> dict:
        """Every setting, with the scheduler and dtype `pipe` actually uses, for report.json."""
        return {**{k: v for k, v in asdict(self).items() if k != "options"}, "seeds": [int(s) for s in self.seeds],
                "scheduler": type(pipe.scheduler).__name__, "eta": 0.0,
                "dtype": str(pipe.dtype).removeprefix("torch."), "attention_slicing": self.options.attention_slicing,
                "cpu_offload": self.options.cpu_offload,
                "generator": f"one torch.Generator('{self.generator_device}') per image, seeded with the seed",
                "versions": {"torch": torch.__version__, "diffusers": diffusers_version()}}


def read_set(folder: Path, request: Request, seeds: Sequence[int]) -> list[Answer]:
    """The request's images of `seeds` in `folder`, ordered by (seed, style, object), so that sets made
    with the same seeds pair image by image; a missing image is an error naming it."""
    found = {(a.style, a.object, a.seed): a for a in read_answer_folder(folder, UC60, OBJECTS, strict=False)}
    keys = [(s, o, int(seed)) for seed in seeds for s, o in request.cells]
    missing = [k for k in keys if k not in found]
    if missing:
        raise UsageError(f"{folder / answer_name(*missing[0])}: missing answer image")
    return [found[k] for k in keys]


def judges_record(judges: Sequence[Any]) -> dict[str, str]:
    """{task: judge model name} of the style and object judges."""
    return {t: judge_name(judge_for(judges, t)) for t in ("style", "object")}


def percent(value: float | None) -> str:
    """A fraction as a percentage with two decimals, or a dash for none (reports and the command line)."""
    return "—" if value is None else f"{value * 100:.2f}"


def score(value: float | None) -> str:
    """A score with four decimals, or a dash for none."""
    return "—" if value is None else f"{value:.4f}"


@dataclass(kw_only=True)
class AttackReport:
    """What every attack's report holds besides its findings: the request, the protocol, how images were
    sampled, the judges and where the report went; report.json and report.md are written together."""

    kind: ClassVar[str] = ""
    forget: dict[str, str]
    protocol: Protocol
    sampling: dict
    request: dict
    judges: dict[str, str]
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every field; the protocol as its name and options."""
        return {"attack": self.kind, **asdict(self), "protocol": self.protocol.to_dict()}

    def to_markdown(self) -> str:
        """The report for people; each attack writes its own."""
        raise NotImplementedError

    def write_reports(self, out: Path, **more: str) -> dict[str, str]:
        """report.json and report.md into `out`, atomically; `more` names the attack's other files there.
        Returns the paths (also kept in `paths`)."""
        self.paths = {"json": str(out / ATTACK_REPORT), "markdown": str(out / "report.md"),
                      **{k: str(out / v) for k, v in more.items()}}
        write_text(out / "report.md", self.to_markdown())
        write_json(out / ATTACK_REPORT, self.to_dict())
        return self.paths
