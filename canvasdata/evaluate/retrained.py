"""Compare models with the gold standard of unlearning: a model retrained without the target
(`canvasdata model train ... --exclude T`). For the reference's answer set and each compared answer set
(the original model's, an unlearned model's; the same cells and seeds), under one request T:

1. UA / IRA / CRA (FU / FR for a combination) of each set, the reference's own beside them
   (`score.score_answers`);
2. FD and KID between each set and the reference's, on the prompts naming T and on the others, in the
   request domain's judge features (`run_judges(..., features_of=judge)`, `metrics.frechet_distance`, `kid`);
3. the distribution score (FADE's bidirectional idea, arXiv 2510.12981, for diffusion models): each model's
   denoising loss on its own images and on the other's, and the Jeffreys-divergence proxy J
   (`canvasdata.evaluate.jeffreys`). L_M(x) is the mean over a fixed timestep grid of M's training schedule
   and fixed noise draws of mean((eps - eps_M(sqrt(abar_t) z + sqrt(1 - abar_t) eps, t, c))^2) over the
   latent elements, with z = M's VAE encoding of x (latent_dist.mean * scaling_factor), c = M's text
   encoding of x's prompt, the noise drawn from the seed and the image's identity (style, object, seed):
   common random numbers, the same noise for every model on the answers of one cell and seed; the target
   is `get_velocity` for a v-prediction model.

Every check on the inputs (the reference was retrained without T, on the build the compared models came
from; the same cells, seeds and sampling settings; the model folders exist) runs before any model is loaded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDPMScheduler
from tqdm.auto import tqdm

from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, resolve_device
from canvasdata.encode import decode_image, image_tensor
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer, read_answer_folder
from canvasdata.evaluate.generate import recorded_setting
from canvasdata.evaluate.jeffreys import LOSS_BATCH, LOSS_TIMESTEPS, NOISE_SEED, jeffreys, timestep_grid
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import (
    COMBINATION,
    Forget,
    judge_for,
    judge_name,
    parse_forget,
    run_judges,
    score_answers,
)
from canvasdata.formats.common import read_json, write_json, write_text
from canvasdata.metrics import frechet_distance, kid
from canvasdata.models.output import MODEL_JSON, check_model, read_record
from canvasdata.seeds import derive_seed
from canvasdata.sources.diffusers import PipelineOptions, check_sd_folder, load_text2image
from canvasdata.taxonomy import OBJECTS, PROMPT_TEMPLATE, SEED_STYLE, UC60, prompt

GENERATION_JSON = "generation.json"
UNLEARN_JSON = "unlearn.json"
RETRAINED_JSON = "retrained.json"
RETRAINED_MD = "retrained.md"
NOISE_STREAM = "denoising-loss"   # the name mixed into every noise seed
# generation.json settings that change what an answer set's images are; compared sets must match the reference's
SAMPLING_SETTINGS = ("size", "steps", "guidance", "scheduler", "eta", "template", "seed_images_words")
PARTS = ("forgotten", "rest")     # the prompts naming the target, and all the others


@dataclass
class AnswerSet:
    """One answer folder, its generation.json, the model that generated it and its answers (sorted by
    style, object, seed)."""

    folder: Path
    generation: dict[str, Any]
    model: Path
    answers: list[Answer]

    def prompts(self) -> list[str]:
        """Each answer's prompt as the set was generated with (template, Seed_Images' words)."""
        template = recorded_setting(self.generation, "template") or PROMPT_TEMPLATE
        words = recorded_setting(self.generation, "seed_images_words")
        return [prompt(a.style, a.object, str(template), str(words)) for a in self.answers]

    @property
    def size(self) -> int | None:
        """The recorded image size (None: each image's own)."""
        size = self.generation.get("size")
        return int(size) if size else None


# --- the inputs, checked before any heavy work -------------------------------------------------------------


def read_generation(folder: Path, flag: str) -> dict[str, Any]:
    """An answer folder's generation.json; a missing folder or file is one line naming it."""
    if not folder.is_dir():
        raise UsageError(f"{flag} {folder}: no such answer folder")
    gen = read_json(folder / GENERATION_JSON, UsageError,
                    f"{flag} {folder}: no {GENERATION_JSON} (the settings and model of an answer set written by "
                    "`canvasdata evaluate generate`)")
    if not isinstance(gen, dict):
        raise UsageError(f"{folder / GENERATION_JSON}: expected a JSON object")
    return gen


def model_folder(folder: Path, gen: dict[str, Any], override: str | Path | None, flag: str) -> Path:
    """The pipeline folder of an answer set: `override`, else generation.json's `model`; a missing folder or
    one that is no StableDiffusionPipeline is one line naming where the path came from."""
    where = f"{flag}" if override is not None else f"{folder / GENERATION_JSON} field `model`"
    path = override if override is not None else gen.get("model")
    if not path:
        raise UsageError(f"{where}: no model recorded; pass the pipeline folder with --models / --reference-model")
    path = Path(path)
    if not path.is_dir():
        hint = "" if override is not None else " (moved? pass it with --models / --reference-model)"
        raise UsageError(f"{where}: {path}: no such model folder{hint}")
    check_sd_folder(path, where, "the denoising-loss comparison")
    return path


def canonical(spec: str, styles: Sequence[str], objects: Sequence[str], where: str) -> Forget:
    """A request or exclusion spec as a Forget (a combination in either order is one request)."""
    try:
        return parse_forget(spec, styles, objects)
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None


def original_record(model: Path) -> tuple[dict[str, Any], Path]:
    """The model.json record of the model a folder descends from, and that folder: its own record, or for an
    unlearned model (unlearn.json) that of the first source of its history (chained unlearning included)."""
    unlearn = model / UNLEARN_JSON
    if unlearn.is_file():
        data = read_json(unlearn, UsageError, "")
        history = data.get("history") or [data]
        source = history[0].get("source") if isinstance(history[0], dict) else None
        if not source:
            raise UsageError(f"{unlearn}: no history[0].source (the model it was unlearned from)")
        src = Path(source)
        if not (src / MODEL_JSON).is_file():
            raise UsageError(f"{unlearn}: history[0].source {src}: no {MODEL_JSON} (not a finished `model train` "
                             "folder), so the build it was trained on cannot be checked")
        return read_record(src), src
    if not (model / MODEL_JSON).is_file():
        raise UsageError(f"{model}: neither {MODEL_JSON} nor {UNLEARN_JSON}: the build it was trained on cannot be "
                         "checked against the reference's")
    return read_record(model), model


def check_reference(model: Path, request: Forget, styles: Sequence[str], objects: Sequence[str]) -> dict[str, Any]:
    """The reference's model.json (its weights checked by sha256), refused unless it was retrained without
    exactly the request."""
    if not (model / MODEL_JSON).is_file():
        raise UsageError(f"{model}: no {MODEL_JSON}: not a `model train` folder, so not a model retrained without "
                         f"{request.spec} (train one with `canvasdata model train ... --exclude {request.spec}`)")
    record = check_model(model)
    identity = record.get("identity") or {}
    exclude = identity.get("exclude") or ""
    where = f"{model / MODEL_JSON} identity.exclude"
    if not exclude:
        raise UsageError(f"{where} is empty: the reference was not retrained without {request.spec} (train it with "
                         f"`canvasdata model train ... --exclude {request.spec}`)")
    if canonical(exclude, styles, objects, where) != request:
        raise UsageError(f"{where} is {exclude!r}: the reference was retrained without another concept than "
                         f"{request.spec}")
    return record


def check_lineage(reference: dict[str, Any], ref_model: Path, model: Path) -> dict[str, Any]:
    """The record of the model `model` descends from, refused when its build (data_hash) or split differs from
    the reference's."""
    record, origin = original_record(model)
    ref_id, own = reference.get("identity") or {}, record.get("identity") or {}
    for key in ("data_hash", "split"):
        if own.get(key) != ref_id.get(key):
            via = "" if origin == model else f" (the source of {model / UNLEARN_JSON})"
            raise UsageError(f"{origin / MODEL_JSON}{via} identity.{key} is {own.get(key)!r}, the reference's "
                             f"({ref_model / MODEL_JSON}) {ref_id.get(key)!r}: trained on another build "
                             f"({own.get('data_recipe')!r} vs {ref_id.get('data_recipe')!r}); the reference must be "
                             "retrained on the same data")
    return record


def check_same_answers(ref: AnswerSet, other: AnswerSet) -> None:
    """The same (style, object, seed) answers and the same sampling settings as the reference's, else one
    line naming the folder and what differs."""
    mine, theirs = {a.key for a in other.answers}, {a.key for a in ref.answers}
    if mine != theirs:
        missing, extra = sorted(theirs - mine), sorted(mine - theirs)
        show = lambda keys: ", ".join(f"{s}_{o}_seed{n}" for s, o, n in keys[:3])  # noqa: E731
        raise UsageError(f"--answers {other.folder}: not the reference's cells and seeds ({len(missing)} of the "
                         f"reference's answers missing{': ' + show(missing) if missing else ''}; {len(extra)} the "
                         f"reference lacks{': ' + show(extra) if extra else ''})")
    seed_prompted = any(a.style == SEED_STYLE for a in ref.answers)
    for key in SAMPLING_SETTINGS:
        if key == "seed_images_words" and not seed_prompted:
            continue
        a, b = recorded_setting(other.generation, key), recorded_setting(ref.generation, key)
        if a != b:
            raise UsageError(f"{other.folder / GENERATION_JSON} field `{key}` is {a!r}, the reference's {b!r}: "
                             "answer sets sampled differently are not comparable")


def load_answer_set(folder: Path, gen: dict[str, Any], model: Path, styles: Sequence[str],
                    objects: Sequence[str]) -> AnswerSet:
    """The answers of a folder (every image's header read), sorted by (style, object, seed)."""
    answers = sorted(read_answer_folder(folder, styles, objects), key=lambda a: a.key)
    return AnswerSet(folder, gen, model, answers)


# --- the denoising loss ------------------------------------------------------------------------------------


def answer_noise(answer: Answer, shape: Sequence[int], timesteps: int, seed: int) -> torch.Tensor:
    """The fixed noise of one answer, [timesteps, *shape]: drawn from `seed` and the answer's identity alone,
    so every model sees the same noise on the answers of one cell and seed."""
    g = torch.Generator().manual_seed(derive_seed(seed, NOISE_STREAM, answer.style, answer.object, answer.seed))
    return torch.randn((timesteps, *shape), generator=g)


def answer_pixels(answer: Answer, size: int | None) -> torch.Tensor:
    """An answer image as uint8 [3, H, W] (resized to `size` when given, exactly, full decode)."""
    source = answer.data if answer.data is not None else answer.path
    return image_tensor(decode_image(source, size, draft=False, resize=size is not None, name=answer.name))


class DenoisingLoss:
    """One model's per-image denoising loss L_M (see the module docstring) on the timestep grid of its own
    training schedule, in float32."""

    def __init__(self, model: Path, device: torch.device, timesteps: int = LOSS_TIMESTEPS,
                 noise_seed: int = NOISE_SEED, batch_size: int = LOSS_BATCH) -> None:
        pipe = load_text2image(model, device, PipelineOptions(dtype="float32"))
        self.device, self.noise_seed, self.batch_size = device, noise_seed, max(1, batch_size)
        self.vae, self.text_encoder, self.unet = pipe.vae.eval(), pipe.text_encoder.eval(), pipe.unet.eval()
        self.tokenizer = pipe.tokenizer
        self.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.prediction_type = self.scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise UsageError(f"{model}: prediction_type {self.prediction_type!r}; the denoising loss takes epsilon "
                             "or v_prediction models")
        self.timesteps = timestep_grid(self.scheduler.config.num_train_timesteps, timesteps)

    @torch.inference_mode()
    def encode_prompts(self, prompts: Sequence[str]) -> tuple[torch.Tensor, dict[str, int]]:
        """The text encoding of each distinct prompt (padded to the tokenizer's length, as in training)."""
        unique = list(dict.fromkeys(prompts))
        ids = self.tokenizer(unique, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.device)
        return self.text_encoder(ids)[0], {p: i for i, p in enumerate(unique)}

    @torch.inference_mode()
    def __call__(self, answer_set: AnswerSet) -> np.ndarray:
        """L_M of every answer of the set at every grid timestep, [images, timesteps] (float64)."""
        prompts = answer_set.prompts()
        context, index = self.encode_prompts(prompts)
        grid = torch.tensor(self.timesteps, dtype=torch.long, device=self.device)
        nt, out = len(self.timesteps), []
        for i in range(0, len(answer_set.answers), self.batch_size):
            chunk = answer_set.answers[i:i + self.batch_size]
            x = torch.stack([answer_pixels(a, answer_set.size) for a in chunk]).to(self.device)
            z = self.vae.encode(x.float().div_(127.5).sub_(1.0)).latent_dist.mean * self.vae.config.scaling_factor
            eps = torch.stack([answer_noise(a, z.shape[1:], nt, self.noise_seed) for a in chunk])
            eps = eps.flatten(0, 1).to(self.device)
            zz, t = z.repeat_interleave(nt, 0), grid.repeat(len(chunk))
            noisy = self.scheduler.add_noise(zz, eps, t)
            target = eps if self.prediction_type == "epsilon" else self.scheduler.get_velocity(zz, eps, t)
            rows = [index[p] for p in prompts[i:i + self.batch_size]]
            ctx = context[torch.tensor(rows, device=self.device)].repeat_interleave(nt, 0)
            pred = self.unet(noisy, t, encoder_hidden_states=ctx).sample
            err = (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3)).view(len(chunk), nt)
            out.append(err.double().cpu().numpy())
        return np.concatenate(out)


def denoising_losses(reference: AnswerSet, compared: Sequence[AnswerSet], device: torch.device,
                     timesteps: int = LOSS_TIMESTEPS, noise_seed: int = NOISE_SEED, batch_size: int = LOSS_BATCH,
                     progress: bool = False) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray],
                                                      list[dict[str, Any]]]:
    """Per compared set i: {'a_on_a', 'b_on_a', 'a_on_b', 'b_on_b'} per-image losses (A = its model, B = the
    reference's), the reference's own {'b_on_b'}, and per model (reference first) its prediction type and
    timestep grid. Each model is loaded once (a bar over the models)."""
    rows: list[dict[str, np.ndarray]] = [{} for _ in compared]
    ref_row: dict[str, np.ndarray] = {}
    about: list[dict[str, Any]] = []
    jobs = [(reference, None), *((s, i) for i, s in enumerate(compared))]
    for answer_set, i in tqdm(jobs, desc="denoising loss", unit="model", disable=not progress):
        loss = DenoisingLoss(answer_set.model, device, timesteps, noise_seed, batch_size)
        about.append({"model": str(answer_set.model), "prediction_type": loss.prediction_type,
                      "timesteps": loss.timesteps})
        if i is None:   # the reference B: on its own images and on every compared set's
            ref_row["b_on_b"] = loss(reference).mean(1)
            for row, other in zip(rows, compared, strict=True):
                row["b_on_b"] = ref_row["b_on_b"]
                row["b_on_a"] = loss(other).mean(1)
        else:           # a compared model A: on its own images and on the reference's
            rows[i]["a_on_a"] = loss(answer_set).mean(1)
            rows[i]["a_on_b"] = loss(reference).mean(1)
        del loss
    return rows, ref_row, about


# --- the report --------------------------------------------------------------------------------------------


@dataclass
class RetrainedReport:
    """The comparison with the retrained reference: the request, the reference (answers, model, what it
    was trained without and on), the settings, and one row per answer set (the reference first)."""

    forget: dict[str, str]
    reference: dict[str, Any]
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    paths: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as retrained.json holds it."""
        return asdict(self)

    def row(self, role: str) -> dict[str, Any] | None:
        """The first row of a role ('reference', 'original', 'unlearned', 'retrained')."""
        return next((r for r in self.rows if r["role"] == role), None)

    def to_markdown(self) -> str:
        """Scores, distances and losses side by side, what each means, and the settings."""
        combo = self.forget["domain"] == COMBINATION
        spec = self.forget["spec"]
        heads = ["FU", "FR"] if combo else ["UA", "IRA", "CRA"]
        keys = ["ua", "fr"] if combo else ["ua", "ira", "cra"]
        ref = self.reference
        lines = [f"# Against the retrained model: forget `{spec}`", "",
                 f"Reference: `{ref['answers']}`, generated by `{ref['model']}`, trained without `{ref['exclude']}` "
                 f"on build `{ref['data_recipe']}` (recipe hash `{str(ref['data_hash'])[:12]}`).", "",
                 "| answer set | role | " + " | ".join(heads) + " | FD forgotten | KID forgotten | FD rest | KID rest "
                 "| J forgotten | J rest |", "|" + "---|" * (len(heads) + 8)]
        for r in self.rows:
            cells = [_pct(r["scores"].get(k)) for k in keys]
            for part in PARTS:
                p = r[part]
                cells += [_num(p["fd"], ".2f"), _kid(p)]
            cells += [_j(r[part]["loss"]) for part in PARTS]
            lines.append(f"| {r['label']} | {r['role']} | " + " | ".join(cells) + " |")
        lines += ["", "## Denoising losses (means over the images)", "",
                  "| answer set | prompts | images | E_XA[L_A] | E_XA[L_R] | E_XR[L_A] | E_XR[L_R] | J ± s.e. |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            for part in PARTS:
                loss = r[part]["loss"]
                vals = [_num(loss.get(k), ".5f") for k in ("a_on_a", "b_on_a", "a_on_b", "b_on_b")]
                lines.append(f"| {r['label']} | {part} | {r[part]['images']} | " + " | ".join(vals)
                             + f" | {_j(loss)} |")
        lines += ["", *self._reading(), *self._definitions()]
        return "\n".join(lines) + "\n"

    def _reading(self) -> list[str]:
        """Whether unlearning moved each unlearned model closer to the retrained one than the original was."""
        orig = self.row("original")
        if orig is None:
            return []
        out = []
        j0 = orig["forgotten"]["loss"]["j"]
        for r in self.rows:
            if r["role"] != "unlearned":
                continue
            j1 = r["forgotten"]["loss"]["j"]
            noise = max(orig["forgotten"]["loss"]["stderr"] or 0.0, r["forgotten"]["loss"]["stderr"] or 0.0)
            way = "closer to" if j1 < j0 else "further from"
            verdict = (f"unlearning moved the model {way} the retrained model" if abs(j1 - j0) > noise else
                       "no clear move (the change is within one standard error)")
            out.append(f"- On the prompts naming `{self.forget['spec']}`: J(original, reference) = "
                       f"{_j(orig['forgotten']['loss'])}, J({r['label']}, reference) = "
                       f"{_j(r['forgotten']['loss'])}: {verdict} (FADE's question: near-perfect classic scores can "
                       f"sit further away). On the other prompts: {_j(orig['rest']['loss'])} -> "
                       f"{_j(r['rest']['loss'])}.")
        return out + [""] if out else []

    def _definitions(self) -> list[str]:
        s = self.settings
        distinct = {tuple(m["timesteps"]) for m in s["models"]}
        grids = (f"the grid {list(next(iter(distinct)))}" if len(distinct) == 1 else "per model: " + "; ".join(
            f"`{m['model']}` {m['timesteps']}" for m in s["models"]))
        return [
            "## What is computed", "",
            f"- Scores: `evaluate score` on every answer set for the one request `{self.forget['spec']}` (protocol "
            f"`{s['protocol']['name']}`); the reference's row is the retrained model's own.",
            f"- FD / KID: each answer set against the reference's, in {s['features']}; `forgotten` = the answers whose "
            "prompt names the target, `rest` = all others. The reference's own row is 0 by construction (—).",
            "- L_M(x): mean over the timestep grid of mean((ε − ε_M(√ᾱ_t·z + √(1−ᾱ_t)·ε, t, c))²) over the latent "
            "elements; z = M's VAE latent_dist.mean × scaling_factor of x, c = M's text encoding of x's prompt, "
            "ε from the noise seed and the answer's (style, object, seed) (the same for every model); v-prediction "
            "models use get_velocity as the target. A = the row's model, R = the retrained reference.",
            "- J(A, R) = (E_XA[L_R] − E_XA[L_A]) + (E_XR[L_A] − E_XR[L_R]): a Jeffreys-divergence proxy (the "
            "denoising loss stands in for −log-likelihood as an ELBO term; FADE, arXiv 2510.12981); 0 for the same "
            "model, symmetric; s.e. from the paired per-image differences.",
            f"- Timesteps: {s['timesteps']} a model, {grids}; noise seed {s['noise_seed']}; float32 on "
            f"{s['device']}.",
            "- Protocol: " + s["protocol"]["name"] + f"; judges: {s['judges']}.",
        ]

    def write(self, out: Path | str) -> dict[str, str]:
        """Write retrained.json and retrained.md into `out` (atomically); returns their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.paths = {"json": str(out / RETRAINED_JSON), "markdown": str(out / RETRAINED_MD)}
        write_json(out / RETRAINED_JSON, self.to_dict())
        write_text(out / RETRAINED_MD, self.to_markdown())
        return self.paths


def _pct(v: float | None) -> str:
    return "—" if v is None or v != v else f"{v * 100:.2f}"


def _num(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _kid(part: dict[str, Any]) -> str:
    return "—" if part["kid"] is None else f"{part['kid']:.4f} ± {part['kid_std']:.4f}"


def _j(loss: dict[str, Any]) -> str:
    if loss.get("j") is None:
        return "—"
    se = loss.get("stderr")
    return f"{loss['j']:.5f}" + ("" if se is None else f" ± {se:.5f}")


def _role(model: Path) -> tuple[str, str]:
    """(role, label) of a compared model: unlearned (its unlearn.json's method and request), original (a
    model trained on the whole build), or retrained (trained without something)."""
    if (model / UNLEARN_JSON).is_file():
        data = read_json(model / UNLEARN_JSON, UsageError, "")
        return "unlearned", f"{data.get('method', 'unlearned')} {data.get('forget', '')}".strip()
    exclude = (read_record(model).get("identity") or {}).get("exclude") or ""
    return ("retrained", f"retrained without {exclude}") if exclude else ("original", "original")


def _scores(report: Any) -> dict[str, Any]:
    keys = ("ua", "ira", "cra", "residual_rate", "fu", "fr", "fr_same_style", "fr_same_object", "fr_rest",
            "num_images")
    return {k: getattr(report, k) for k in keys}


def _distance(a: np.ndarray, b: np.ndarray, subsets: int, subset_size: int) -> dict[str, Any]:
    """FD and KID of two feature sets (None with fewer than two images in either)."""
    if len(a) < 2 or len(b) < 2:
        return {"fd": None, "kid": None, "kid_std": None}
    k, k_std = kid(a, b, subsets=subsets, subset_size=subset_size)
    return {"fd": frechet_distance(a, b), "kid": k, "kid_std": k_std}


def _names_target(request: Forget, a: Answer) -> bool:
    """Whether an answer's prompt names the request's concept."""
    if request.domain == COMBINATION:
        return (a.style, a.object) == request.parts
    return (a.style if request.domain == "style" else a.object) == request.target


def compare_retrained(reference: Path | str, answers: Sequence[Path | str], forget: str, judges: Sequence[Any], *,
                      models: Sequence[Path | str] | None = None, reference_model: Path | str | None = None,
                      protocol: str | Protocol | None = None, timesteps: int = LOSS_TIMESTEPS,
                      noise_seed: int = NOISE_SEED, loss_batch: int = LOSS_BATCH, device: str = "auto",
                      batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS, kid_subsets: int = 100,
                      kid_subset_size: int = 1000, out: Path | str | None = None,
                      progress: bool = False) -> RetrainedReport:
    """Compare the answer sets `answers` (and their models: each generation.json's `model`, or `models` in the
    same order) with the reference's answer set `reference`, whose model (or `reference_model`) was retrained
    without `forget` (see the module docstring for what is computed). `judges` score the sets (a style and
    an object judge); the request domain's judge gives the FD/KID features (the style judge for a
    combination). Every input is checked first, each problem one UsageError line. Writes retrained.json and
    retrained.md into `out` when given."""
    proto = get_protocol(protocol)
    if models is not None and len(models) != len(answers):
        raise UsageError(f"--models: {len(models)} pipeline(s) for {len(answers)} answer set(s); give one per "
                         "--answers, in the same order")
    if not answers:
        raise UsageError("--answers: give at least one answer set to compare with the reference")
    if timesteps < 1:
        raise UsageError(f"--timesteps {timesteps}: expected a positive number")
    style_j, object_j = judge_for(judges, "style"), judge_for(judges, "object")
    styles = sorted(set(UC60) | set(style_j.class_names["style"]))
    objects = sorted(set(OBJECTS) | set(object_j.class_names["object"]))
    request = parse_forget(forget, list(style_j.class_names["style"]), list(object_j.class_names["object"]))
    feature_judge = object_j if request.domain == "object" else style_j

    ref_folder = Path(reference)
    ref_gen = read_generation(ref_folder, "--reference")
    gens = [read_generation(Path(f), "--answers") for f in answers]
    ref_model = model_folder(ref_folder, ref_gen, reference_model, "--reference-model")
    own = [model_folder(Path(f), g, None if models is None else models[i], "--models")
           for i, (f, g) in enumerate(zip(answers, gens, strict=True))]
    ref_record = check_reference(ref_model, request, styles, objects)
    for m in own:
        check_lineage(ref_record, ref_model, m)
    ref_set = load_answer_set(ref_folder, ref_gen, ref_model, styles, objects)
    sets = [load_answer_set(Path(f), g, m, styles, objects) for f, g, m in zip(answers, gens, own, strict=True)]
    for s in sets:
        check_same_answers(ref_set, s)
    if not any(_names_target(request, a) for a in ref_set.answers):
        raise UsageError(f"--reference {ref_folder}: no answer is prompted with {request.spec}")

    everything = [ref_set, *sets]
    scores = [score_answers(s.folder, forget, judges, protocol=proto, batch_size=batch_size, workers=workers)
              for s in everything]
    masks = np.array([_names_target(request, a) for a in ref_set.answers])
    feats = [run_judges([feature_judge], s.answers, batch_size, workers, features_of=feature_judge,
                        resize=proto.judge_resize)[1] for s in everything]
    dev = resolve_device(device)
    losses, ref_losses, about = denoising_losses(ref_set, sets, dev, timesteps, noise_seed, loss_batch, progress)

    rows = []
    for i, s in enumerate(everything):
        role, label = ("reference", "reference (retrained)") if i == 0 else _role(s.model)
        row: dict[str, Any] = {"label": label, "role": role, "answers": str(s.folder), "model": str(s.model),
                               "scores": _scores(scores[i])}
        for part, sel in zip(PARTS, (masks, ~masks), strict=True):
            if i == 0:
                dist = {"fd": None, "kid": None, "kid_std": None}
                loss = {"b_on_b": float(ref_losses["b_on_b"][sel].mean()), "j": 0.0, "stderr": None}
            else:
                dist = _distance(feats[i][sel], feats[0][sel], kid_subsets, kid_subset_size)
                ls = losses[i - 1]
                loss = jeffreys(ls["a_on_a"][sel], ls["b_on_a"][sel], ls["a_on_b"][sel], ls["b_on_b"][sel]).to_dict()
            row[part] = {"images": int(sel.sum()), **dist, "loss": loss}
        rows.append(row)
    labels, seen = [r["label"] for r in rows], Counter()
    for r, label in zip(rows, labels, strict=True):   # two sets of one kind get a number each
        if labels.count(label) > 1:
            seen[label] += 1
            r["label"] = f"{label} #{seen[label]}"

    identity = ref_record.get("identity") or {}
    report = RetrainedReport(
        forget={"domain": request.domain, "target": request.target, "spec": request.spec},
        reference={"answers": str(ref_folder), "model": str(ref_model), "exclude": identity.get("exclude"),
                   "data_recipe": identity.get("data_recipe"), "data_hash": identity.get("data_hash"),
                   "split": identity.get("split"), "styles": ref_record.get("styles"),
                   "objects": ref_record.get("objects")},
        settings={"timesteps": timesteps, "noise_seed": noise_seed, "noise_stream": NOISE_STREAM,
                  "noise": "torch.randn([timesteps, *latent shape]) from torch.Generator().manual_seed(derive_seed("
                           "noise_seed, noise_stream, style, object, seed)): the same for every model",
                  "timestep_grid": "floor((2k+1) T / 2n), k = 0..n-1, T = the model's num_train_timesteps",
                  "loss": "mean over the grid of mean((target - unet(add_noise(z, noise, t), t, c))^2) over latent "
                          "elements; z = vae latent_dist.mean * scaling_factor; target = noise (epsilon) or "
                          "get_velocity(z, noise, t) (v_prediction)",
                  "loss_batch": loss_batch, "dtype": "float32", "device": str(dev), "models": about,
                  "protocol": proto.to_dict(),
                  "features": f"the {'object' if request.domain == 'object' else 'style'} judge's penultimate "
                              f"layer ({judge_name(feature_judge)}, {feats[0].shape[1]}-d)",
                  "judges": ", ".join(dict.fromkeys(judge_name(j) for j in (style_j, object_j))),
                  "kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "images": len(ref_set.answers),
                  "sampling": {k: recorded_setting(ref_gen, k) for k in SAMPLING_SETTINGS}},
        rows=rows)
    if out is not None:
        report.write(out)
    return report
