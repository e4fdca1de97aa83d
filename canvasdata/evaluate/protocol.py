"""Evaluation protocols: one named set of the choices that move UnlearnCanvas numbers (as clean-fid
names its modes), so that a report says exactly how it was scored.

- `unlearncanvas` (the default) makes the choices of the original benchmark code
  (OPTML-Group/UnlearnCanvas, `machine_unlearning/evaluation`): CRA over every image of the other
  domain, those prompted with the forgotten concept included (`accuracy.py` averages each class's
  accuracy over the whole grid); judges see the decoded image through torchvision
  `Resize((S, S))` (bilinear); Inception features as `fid.py` takes them (`inception_v3` with
  `transform_input=True`, images resized to 512 then 299, scaled to [-1, 1], pooled `Mixed_7c`);
  answer sets prompt `Seed_Images` as "Seed Images" (the unlearned models' sampling scripts replace
  underscores by spaces). The original code does not aggregate its per-class accuracies into IRA and
  CRA, so whether `Seed_Images` counts in the style denominators is not determined by it: both
  protocols leave it out, as the paper's "other 49 styles".
- `canvasdata` keeps canvasdata's own choices: CRA over the retained images only, JPEG draft
  decoding and PIL bicubic for judges, torchvision Inception with `transform_input=False` and a PIL
  bicubic resize, and "Photo" for `Seed_Images` as in the dataset's captions.

Every option can be overridden on its own (`Protocol.override`); a report records the protocol's
name, each option's value, the overridden options, and whether the whole reproduces the original.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from canvasdata.errors import UsageError
from canvasdata.taxonomy import SEED_WORDS_CAPTION, SEED_WORDS_SAMPLER

JUDGE_RESIZES = ("torchvision-bilinear", "pil-bicubic-draft")
INCEPTION_PIPELINES = ("original", "canvasdata")
SEED_IMAGES_WORDS = (SEED_WORDS_SAMPLER, SEED_WORDS_CAPTION)
# How answer sets are sampled, by default: the original's samplers for unlearned models (512 px, DDIM 100 steps,
# guidance 9, these five seeds), and concept sets' generation (the DataIGM shape: 50 steps, guidance 7.5).
PROTOCOL_SEEDS = (188, 288, 588, 688, 888)
PROTOCOL_SCHEDULER = "DDIMScheduler"
PROTOCOL_SIZE = 512
PROTOCOL_STEPS = 100
PROTOCOL_GUIDANCE = 9.0
CONCEPT_STEPS = 50
CONCEPT_GUIDANCE = 7.5
DEFAULT_PROTOCOL = "unlearncanvas"

# what each option means, for reports and the CLI help
OPTION_HELP = {
    "cra_includes_forgotten": "CRA counts the images prompted with the forgotten concept",
    "judge_resize": "how answer images are resized for the judges",
    "inception_pipeline": "how images become Inception inputs (FD/KID with --inception)",
    "seed_images_words": "how answer-set prompts name Seed_Images",
    "seed_images_in_style_metrics": "Seed_Images counts in the style denominators (IRA of style requests, "
                                    "CRA of object requests)",
}


@dataclass(frozen=True)
class Protocol:
    """The choices of one evaluation protocol (see the module docstring for what each means)."""

    name: str
    cra_includes_forgotten: bool
    judge_resize: str
    inception_pipeline: str
    seed_images_words: str
    seed_images_in_style_metrics: bool

    def __post_init__(self) -> None:
        for field, allowed in (("judge_resize", JUDGE_RESIZES), ("inception_pipeline", INCEPTION_PIPELINES),
                               ("seed_images_words", SEED_IMAGES_WORDS)):
            if getattr(self, field) not in allowed:
                raise UsageError(f"protocol option {field}={getattr(self, field)!r}: allowed {', '.join(allowed)}")

    def options(self) -> dict[str, Any]:
        """Every option's value, by field name (the name left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}

    def override(self, **options: Any) -> Protocol:
        """This protocol with the given options changed; None values leave an option as it is."""
        changes = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(changes) - set(self.options()))
        if unknown:
            raise UsageError(f"unknown protocol options {unknown}; allowed: {', '.join(self.options())}")
        return dataclasses.replace(self, **changes)

    @property
    def overridden(self) -> dict[str, Any]:
        """The options that differ from the named protocol's, with their values here (all of them
        for a protocol whose name is not registered)."""
        if self.name not in PROTOCOLS:
            return self.options()
        base = PROTOCOLS[self.name].options()
        return {k: v for k, v in self.options().items() if base[k] != v}

    @property
    def reproduces_original(self) -> bool:
        """True when every option is the original benchmark code's choice."""
        return self.options() == UNLEARNCANVAS.options()

    def to_dict(self) -> dict[str, Any]:
        """Name, options, overridden options and `reproduces_original`, for report.json."""
        return {"name": self.name, **self.options(), "overridden": sorted(self.overridden),
                "reproduces_original": self.reproduces_original}

    def describe(self) -> str:
        """One Markdown sentence naming the protocol, its overrides and whether it is the original's."""
        head = f"`{self.name}`"
        if self.overridden:
            head += " with " + ", ".join(f"{k}={v}" for k, v in self.overridden.items())
        if self.reproduces_original:
            return f"{head}: the original UnlearnCanvas code's choices"
        differ = [k for k, v in self.options().items() if UNLEARNCANVAS.options()[k] != v]
        return f"{head}: differs from the original UnlearnCanvas code in {', '.join(differ)}"

    def markdown_lines(self) -> list[str]:
        """The protocol sentence and one bullet per option, for report.md and suite.md."""
        return [f"- Protocol: {self.describe()}."] + [f"  - {k} = {v} ({OPTION_HELP[k]})"
                                                     for k, v in self.options().items()]


UNLEARNCANVAS = Protocol("unlearncanvas", cra_includes_forgotten=True, judge_resize="torchvision-bilinear",
                         inception_pipeline="original", seed_images_words=SEED_WORDS_SAMPLER,
                         seed_images_in_style_metrics=False)
CANVASDATA = Protocol("canvasdata", cra_includes_forgotten=False, judge_resize="pil-bicubic-draft",
                      inception_pipeline="canvasdata", seed_images_words=SEED_WORDS_CAPTION,
                      seed_images_in_style_metrics=False)
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (UNLEARNCANVAS, CANVASDATA)}


def get_protocol(protocol: str | Protocol | None = None, **overrides: Any) -> Protocol:
    """A named protocol (default `unlearncanvas`) or a Protocol, with `overrides` applied (None
    values are ignored, so CLI flags that were not given change nothing)."""
    if isinstance(protocol, Protocol):
        return protocol.override(**overrides)
    name = protocol or DEFAULT_PROTOCOL
    if name not in PROTOCOLS:
        raise UsageError(f"unknown protocol {name!r}; allowed: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name].override(**overrides)
