"""Erased Stable Diffusion (ESD; Gandikota et al., "Erasing Concepts from Diffusion Models", ICCV 2023),
the reference unlearning method, on any StableDiffusionPipeline folder (SD 1.x on a GPU, a tiny model on
a CPU).

Two UNets: a frozen copy θ* of the source and the one trained, θ. Each iteration draws a DDIM step t,
samples x_t with θ (no grad) from seeded noise, conditioned on the concept prompt c with classifier-free
guidance `start_guidance`, then regresses θ(x_t, c, t) onto θ*(x_t, ∅, t) − η·(θ*(x_t, c, t) − θ*(x_t, ∅, t))
(MSE, Adam, batch 1) on the chosen parameter set. The output is a full pipeline folder whose UNet alone
differs, with `unlearn.json` (settings, cost, changed parameters, history) and a model card. Two named
variants, off by default and recorded in the request: anchors (the reference of the target is an anchor
text's prediction instead of the empty prompt's) and retain texts (a second term holds their predictions
to θ*'s).

Resumable and exact: a checkpoint (trainable tensors, Adam state, losses) is written atomically every
`checkpoint_every` iterations; every draw of iteration i comes from `derive_seed(seed, "esd", i)`, so an
interrupted run that is rerun ends bit-identical (on the CPU) to one never interrupted.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import resource
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import diffusers
import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
import transformers
from diffusers import DDIMScheduler, StableDiffusionPipeline
from tqdm.auto import tqdm

import canvasdata
from canvasdata.devices import resolve_device
from canvasdata.errors import UsageError
from canvasdata.evaluate.score import COMBINATION, combination_spec, split_combination
from canvasdata.evaluate.score import parse_forget as parse_forget_request
from canvasdata.extras import library_bars
from canvasdata.folders import listing, temp_of
from canvasdata.formats.common import atomic_path, write_json, write_text
from canvasdata.locks import folder_lock
from canvasdata.models.vocab import unknown_words
from canvasdata.seeds import derive_seed
from canvasdata.sources.diffusers import check_sd_folder
from canvasdata.taxonomy import SEED_STYLE
from canvasdata.taxonomy import prompt as caption
from canvasdata.unlearn import METHODS, RETAIN_LATENTS, ESDConfig

log = logging.getLogger(__name__)

RECORD = "unlearn.json"                  # written last: the output is finished
MARKER = ".canvasdata-unlearn"           # written first: the request this folder is being written for
LOCK = ".lock"
CHECKPOINT = ".esd-checkpoint.safetensors"
CHECKPOINT_FORMAT = "canvasdata-esd-checkpoint/1"
CARD = "README.md"
OWN_WRITES = (MARKER, CHECKPOINT, RECORD, CARD)   # the files this module writes atomically
NOXATTN_EXCLUDED = ("conv_norm_out.", "conv_out.")   # the authors' `out.` (output layer), in diffusers' names
DEFAULTS = ESDConfig()
SETS = tuple(m for m in METHODS if m != "auto")   # the parameter sets `trainable_names` knows

__all__ = ["ESDConfig", "ESDResult", "check_vocabulary", "default_prompt", "erase", "parse_forget",
           "trainable_names"]


@dataclass(frozen=True)
class ESDResult:
    """What `erase` did: the output folder, the parameter set trained (`method`), the request and prompt,
    training seconds (summed over resumed runs), peak memory (bytes: RSS on the CPU, CUDA allocated),
    the changed UNet parameters (scalars and bytes) and the losses of every iteration."""

    out: Path
    method: str
    forget: str
    prompt: str
    seconds: float
    peak_memory_bytes: int
    changed_parameters: int
    changed_bytes: int
    final_loss: float
    losses: tuple[float, ...] = field(repr=False)

    @classmethod
    def from_record(cls, out: Path, record: dict) -> ESDResult:
        """The result recorded in an output's unlearn.json."""
        return cls(out, record["parameters"], record["forget"], record["prompt"], record["seconds"],
                   record["peak_memory_bytes"], record["changed_parameters"], record["changed_bytes"],
                   record["final_loss"], tuple(record["losses"]))


# --- the request -----------------------------------------------------------------------------------------

def parse_forget(forget: str) -> tuple[str, str]:
    """'style:NAME' (a UC60 style) or 'object:NAME' (an object) -> (domain, name); Seed_Images, the photo
    domain, is refused as a style on its own. A combination 'style:NAME+object:NAME' (either order; its
    style may be Seed_Images: photos of that object) -> ('combination', 'STYLE+OBJECT')."""
    domain, name = parse_forget_request(forget, flag="--forget")
    if domain == "style" and name == SEED_STYLE:
        raise UsageError(f"--forget {forget}: {SEED_STYLE} is the photo domain, not a style to forget")
    return domain, name


def canonical_forget(domain: str, name: str) -> str:
    """The request as recorded: 'style:NAME', 'object:NAME', a combination as 'style:STYLE+object:OBJECT'."""
    return combination_spec(*name.split("+", 1)) if domain == COMBINATION else f"{domain}:{name}"


def default_prompt(domain: str, name: str) -> str:
    """The concept text of a request, in the training captions' words: 'Van Gogh style', 'Dogs'; a
    combination 'STYLE+OBJECT' as the build's caption of that cell ('A Dogs image in Van Gogh style.',
    Seed_Images as 'Photo')."""
    if domain == COMBINATION:
        style, obj = name.split("+", 1)
        return caption(style, obj)
    return f"{name.replace('_', ' ')} style" if domain == "style" else name


def parameter_set(domain: str, method: str) -> str:
    """The parameter set trained: `auto` is xattn (ESD-x) for a style or a combination (a prompt-specific
    concept, as the authors' choice for styles), noxattn (ESD-u) for an object."""
    if method != "auto":
        return method
    return "noxattn" if domain == "object" else "xattn"


def trainable_names(names: Sequence[str], parameters: str) -> list[str]:
    """The UNet parameter names a set trains, as the authors' code selects them: xattn the cross-attention
    (`attn2`); xattn-strict its key and value projections (`attn2.to_k`, `attn2.to_v`: their later
    `esd-x-strict`); noxattn all but cross-attention, the timestep embedding and the output layer; full
    everything."""
    if parameters == "xattn":
        return [n for n in names if "attn2" in n]
    if parameters == "xattn-strict":
        return [n for n in names if "attn2.to_k." in n or "attn2.to_v." in n]
    if parameters == "noxattn":
        return [n for n in names if "attn2" not in n and "time_embed" not in n and not n.startswith(NOXATTN_EXCLUDED)]
    if parameters == "full":
        return list(names)
    raise UsageError(f"ESD parameter set {parameters!r}: allowed {', '.join(SETS)}")


def default_size(model: Path) -> tuple[int, int]:
    """(the UNet's native image size in px, the VAE's scale factor), from the component configs."""
    try:
        unet = json.loads((model / "unet" / "config.json").read_text())
        vae = json.loads((model / "vae" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"--model {model}: unreadable unet or vae config ({e})") from None
    scale = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
    sample = unet.get("sample_size", 64)
    return (sample[0] if isinstance(sample, list) else sample) * scale, scale


def check_vocabulary(tokenizer: Any, prompt: str, model: str | Path, flag: str = "--prompt") -> None:
    """Every word of `prompt` must be known to the tokenizer (`models.vocab.unknown_words`: a word-level
    vocabulary must hold each word whole; any other must not need the unknown token); otherwise a
    one-line UsageError naming the word and the model folder."""
    if getattr(tokenizer, "unk_token_id", None) is None:
        return
    bad = unknown_words(tokenizer, prompt)
    if bad:
        raise UsageError(f"{flag} {prompt!r}: the word {bad[0]!r} is not in the vocabulary of {model}'s "
                         "tokenizer; name the concept in the words the model was trained on (--prompt)")


def parse_targets(forget: str) -> list[tuple[str, str]]:
    """`--forget` as a list of (domain, name): one request, or several separated by commas (simultaneous
    unlearning: one run forgets them all); a request named twice is refused."""
    parts = [f.strip() for f in forget.split(",")]
    if len(parts) > 1 and not all(parts):
        raise UsageError(f"--forget {forget!r}: an empty request between commas")
    targets = [parse_forget(f) for f in parts]
    specs = [canonical_forget(*t) for t in targets]
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise UsageError(f"--forget {forget!r}: names {', '.join(twice)} twice")
    return targets


def _parameters(targets: list[tuple[str, str]], method: str) -> str:
    """The parameter set of the run; `auto` over requests whose sets differ (a style and an object) is refused."""
    sets = {parameter_set(d, method) for d, _ in targets}
    if len(sets) > 1:
        raise UsageError("--forget mixes requests that ESD trains on different parameters (a style or a "
                         f"combination: xattn; an object: noxattn): choose one with --method ({', '.join(SETS)})")
    return sets.pop()


def _anchors(anchor: str | Sequence[str] | None, texts: list[str], targets: list) -> list[str]:
    """The anchor texts, one per erased text, checked (none: ESD's empty prompt)."""
    anchors = [anchor] if isinstance(anchor, str) else list(anchor or ())
    if not anchors:
        return []
    if len(targets) > 1:
        raise UsageError("--anchor names one concept's anchors; several --forget requests take ESD's empty prompt")
    if len(anchors) != max(len(texts), 1):
        raise UsageError(f"--anchor: {len(anchors)} texts for {max(len(texts), 1)} erased texts; give one anchor "
                         "per --prompt text")
    if any(not a.strip() for a in anchors) or any(a == t for a, t in zip(anchors, texts, strict=True)):
        raise UsageError(f"--anchor {anchors!r}: every anchor must be non-empty and differ from its erased text")
    return anchors


def check_retain(retain: Sequence[str] | None, weight: float, erased: list[str], latents: str = "erased") -> dict:
    """The request's retain entries (none: {}), checked: distinct texts ("" is the empty prompt: the
    unconditional prediction that classifier-free guidance subtracts from every prompt's), none of them
    erased, a positive finite weight, where the term is taken (RETAIN_LATENTS; "erased", the default, is
    not recorded)."""
    if latents not in RETAIN_LATENTS:
        raise UsageError(f"--retain-latents {latents!r}: allowed {', '.join(RETAIN_LATENTS)}")
    texts = list(retain or ())
    if not texts and latents != RETAIN_LATENTS[0]:
        raise UsageError(f"--retain-latents {latents}: places the retain term, and no --retain texts were given")
    if not texts:
        return {}
    if any(t != t.strip() for t in texts) or len(set(texts)) != len(texts):
        raise UsageError(f"--retain {texts!r}: every text must be given once, without surrounding spaces")
    both = sorted(set(texts) & set(erased))
    if both:
        raise UsageError(f"--retain {both[0]!r}: is also an erased text; a text cannot be both erased and kept")
    if not (math.isfinite(weight) and weight > 0):
        raise UsageError(f"--retain-weight {weight}: must be a positive number")
    own = {"retain_latents": latents} if latents != RETAIN_LATENTS[0] else {}
    return {"retain": texts, "retain_weight": float(weight), **own}


def make_request(model: Path, forget: str, prompt: str | Sequence[str] | None, config: ESDConfig,
                 anchor: str | Sequence[str] | None = None, retain: Sequence[str] | None = None,
                 retain_weight: float = 1.0, retain_latents: str = "erased") -> dict:
    """The request this output is written for (its identity, compared on resume and rerun, and the entry
    in the history of chained unlearning): every setting that changes the result. Several requests
    (simultaneous) record `forget` as their specs joined by commas and one prompt each in `prompts`; so
    does one request erased on several texts (`prompt` a sequence). Anchors, when given, are recorded as
    `anchors` (one per text); retain texts as `retain` and `retain_weight` (and `retain_latents` when the
    term is taken on the retain texts' own x_t); without either the request is the paper's ESD, recorded as
    before."""
    targets = parse_targets(forget)
    texts = [prompt] if isinstance(prompt, str) else list(prompt or ())
    if texts and len(targets) > 1:
        raise UsageError("--prompt names one concept; with several --forget requests each takes its default prompt")
    if any(not t.strip() for t in texts) or len(set(texts)) != len(texts):
        raise UsageError(f"--prompt {texts!r}: every text must be non-empty and given once")
    anchors = _anchors(anchor, texts or [default_prompt(*targets[0])], targets)
    check_sd_folder(model, "--model", "ESD")
    native, scale = default_size(model)
    size = config.size or native
    if size % scale:
        raise UsageError(f"--size {size}: must be a multiple of the VAE's scale factor {scale}")
    resolved = replace(config, method=_parameters(targets, config.method), size=size)
    settings = {k: v for k, v in asdict(resolved).items() if k not in ("method", "checkpoint_every")}
    prompts = [default_prompt(d, n) for d, n in targets]
    if len(targets) == 1:   # one concept: its default text, the one given, or several given (taken in turn)
        texts = texts or prompts[:1]
        concept = {"forget": canonical_forget(*targets[0]), "prompt": " | ".join(texts),
                   **({"prompts": texts} if len(texts) > 1 else {})}
    else:
        concept = {"forget": ",".join(canonical_forget(*t) for t in targets), "prompt": " | ".join(prompts),
                   "prompts": prompts}
    kept = check_retain(retain, retain_weight, request_prompts(concept), retain_latents)
    return {"method": "esd", **concept, **({"anchors": anchors} if anchors else {}), **kept,
            "parameters": resolved.method, **settings, "optimizer": "Adam", "source": str(model.resolve())}


def request_prompts(request: dict) -> list[str]:
    """The texts a request trains on, one per forgotten concept or several of one (iteration i uses i mod
    their number)."""
    return list(request.get("prompts") or [request["prompt"]])


def request_retain(request: dict) -> list[str]:
    """The texts whose predictions the run holds to the source's (none: the paper's ESD)."""
    return list(request.get("retain") or [])


def request_anchors(request: dict) -> list[str] | None:
    """The anchor text of each erased text (their order), or None: ESD's empty prompt."""
    return list(request["anchors"]) if request.get("anchors") else None


# --- the output folder -----------------------------------------------------------------------------------

def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: unreadable ({e}); choose another --out") from None
    return data if isinstance(data, dict) else {}


def _differences(found: dict, request: dict) -> str:
    keys = [k for k in request if found.get(k) != request[k]] or ["method"]
    return ", ".join(f"{k} {found.get(k)!r} (this run: {request.get(k)!r})" for k in keys[:4])


def own_temp(name: str) -> bool:
    """Whether `name` is the temporary file of an interrupted write of this module (`folders.temp_of`)."""
    temp = temp_of(name)
    return temp is not None and temp[0] in OWN_WRITES


def plan_out(out: Path, request: dict) -> dict | None:
    """The finished record when `out` holds this request's finished output (a rerun is a no-op); None to
    start (no folder, an empty one) or resume (this request's unfinished output). Anything else is a
    one-line UsageError, and nothing is touched."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file, not a folder; choose another --out")
    names = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if RECORD in names:
        found = _read(out / RECORD).get("request") or {}
        if found == request:
            return _read(out / RECORD)
        raise UsageError(f"--out {out}: holds the output of another unlearning request ({_differences(found, request)})"
                         "; choose another --out")
    if MARKER in names:
        found = _read(out / MARKER).get("request") or {}
        if found == request:
            return None
        raise UsageError(f"--out {out}: holds the unfinished output of another unlearning request "
                         f"({_differences(found, request)}); rerun that request, or choose another --out")
    foreign = [n for n in names if n != LOCK and not own_temp(n)]
    if foreign:
        shown = listing(foreign, 5)
        raise UsageError(f"--out {out}: not empty ({shown}) and holds no output of canvasdata unlearn; "
                         "choose an empty or new folder")
    return None


def history(model: Path, request: dict) -> list[dict]:
    """The requests that made the source (its unlearn.json's history, for chained unlearning), then this one."""
    if not (model / RECORD).is_file():
        return [request]
    previous = _read(model / RECORD)
    before = previous.get("history") or ([previous["request"]] if "request" in previous else [])
    return [*before, request]


def cleanup(out: Path) -> None:
    """Remove what only a run needs (checkpoint, marker, leftovers of killed writes): files of this module only."""
    for path in out.iterdir():
        if path.name in (CHECKPOINT, MARKER) or own_temp(path.name):
            path.unlink(missing_ok=True)


# --- training --------------------------------------------------------------------------------------------

@dataclass
class Progress:
    """Where training stands: iterations done, their losses, training seconds and peak memory so far."""

    iteration: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_bytes: int = 0


class ESDTrainer:
    """θ (the pipeline's own UNet, trained in place), θ* (a frozen copy), the DDIM sampler, the two prompt
    embeddings and Adam over the chosen parameters."""

    def __init__(self, pipe: StableDiffusionPipeline, request: dict, device: torch.device) -> None:
        self.request, self.device = request, device
        self.eta, self.guidance = request["negative_guidance"], request["start_guidance"]
        embedded = [pipe.encode_prompt(p, torch.device("cpu"), 1, True, "") for p in request_prompts(request)]
        self.conds = [c.detach().to(device, torch.float32) for c, _ in embedded]
        self.uncond = embedded[0][1].detach().to(device, torch.float32)
        anchors = request_anchors(request)   # the reference of each text's target: an anchor, or the empty prompt
        self.anchors = ([pipe.encode_prompt(a, torch.device("cpu"), 1, False)[0].detach().to(device, torch.float32)
                         for a in anchors] if anchors else [self.uncond] * len(self.conds))
        self.retain = [pipe.encode_prompt(r, torch.device("cpu"), 1, False)[0].detach().to(device, torch.float32)
                       for r in request_retain(request)]
        self.retain_weight = float(request.get("retain_weight", 0.0))
        self.retain_own = request.get("retain_latents") == "own"
        self.unet = pipe.unet.to(device, torch.float32).train()   # trained in float32 whatever the source's dtype
        self.frozen = copy.deepcopy(self.unet).eval().requires_grad_(False)
        names = trainable_names([n for n, _ in self.unet.named_parameters()], request["parameters"])
        chosen = set(names)
        for n, p in self.unet.named_parameters():
            p.requires_grad_(n in chosen)
        self.params = dict((n, p) for n, p in self.unet.named_parameters() if n in chosen)
        self.opt = torch.optim.Adam(list(self.params.values()), lr=request["lr"])
        self.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        if request["sample_steps"] > self.scheduler.config.num_train_timesteps:
            raise UsageError(f"--sample-steps {request['sample_steps']}: at most the model's "
                             f"{self.scheduler.config.num_train_timesteps} training timesteps")
        self.scheduler.set_timesteps(request["sample_steps"], device=device)
        side = request["size"] // pipe.vae_scale_factor
        self.shape = (1, self.unet.config.in_channels, side, side)

    def draw(self, i: int) -> tuple[int, torch.Tensor, int]:
        """Iteration i's DDIM step index (uniform over the schedule), starting noise and retain text (uniform;
        drawn after the others, so a run without retain texts draws as the paper's ESD), from its own seed."""
        gen = torch.Generator("cpu").manual_seed(derive_seed(self.request["seed"], "esd", i))
        index = int(torch.randint(0, len(self.scheduler.timesteps), (1,), generator=gen))
        noise = torch.randn(self.shape, generator=gen)
        kept = int(torch.randint(0, len(self.retain), (1,), generator=gen)) if self.retain else -1
        return index, noise, kept

    def retain_noise(self, i: int) -> torch.Tensor:
        """Iteration i's starting noise of the retain text's own trajectory (`retain_latents = "own"`), from a
        seed of its own: the other draws stay those of a run without it."""
        gen = torch.Generator("cpu").manual_seed(derive_seed(self.request["seed"], "esd-retain", i))
        return torch.randn(self.shape, generator=gen)

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, index: int, cond: torch.Tensor) -> torch.Tensor:
        """x_t: DDIM sampling with θ, guided towards the concept `cond`, from `noise` down to step `index`."""
        x = noise.to(self.device) * self.scheduler.init_noise_sigma
        both = torch.cat([self.uncond, cond])
        for t in self.scheduler.timesteps[:index]:
            inp = self.scheduler.scale_model_input(torch.cat([x, x]), t)
            e_u, e_c = self.unet(inp, t, encoder_hidden_states=both).sample.chunk(2)
            x = self.scheduler.step(e_u + self.guidance * (e_c - e_u), t, x).prev_sample
        return x

    def step(self, i: int) -> float:
        """One ESD iteration; its loss (with retain texts: ESD's term + retain_weight × the retain term, the
        drawn retain text's prediction held to the frozen source's on the same x_t, or with `retain_latents =
        "own"` on an x_t sampled the same way along the retain text's own trajectory, to the same step)."""
        index, noise, kept = self.draw(i)
        k = i % len(self.conds)                     # several concepts (simultaneous) or texts: one after another
        cond = self.conds[k]
        x = self.sample(noise, index, cond)
        t = self.scheduler.timesteps[index]
        x = self.scheduler.scale_model_input(x, t)
        xr = x
        if self.retain and self.retain_own:
            xr = self.scheduler.scale_model_input(self.sample(self.retain_noise(i), index, self.retain[kept]), t)
        texts = [self.anchors[k], cond] + ([self.retain[kept]] if self.retain else [])
        with torch.no_grad():
            latents = torch.cat([x, x] + ([xr] if self.retain else []))
            ref = self.frozen(latents, t, encoder_hidden_states=torch.cat(texts)).sample
        e0, ep = ref[0:1], ref[1:2]
        target = e0 - self.eta * (ep - e0)
        if self.retain:
            pred = self.unet(torch.cat([x, xr]), t, encoder_hidden_states=torch.cat([cond, self.retain[kept]])).sample
            loss = F.mse_loss(pred[0:1], target) + self.retain_weight * F.mse_loss(pred[1:2], ref[2:3])
        else:
            loss = F.mse_loss(self.unet(x, t, encoder_hidden_states=cond).sample, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise UsageError(f"ESD loss became {value} at iteration {i + 1}; lower the learning rate (--lr)")
        return value

    def save(self, path: Path, progress: Progress) -> None:
        """The trainable tensors, Adam's state and `progress` in one safetensors file, written atomically."""
        tensors = {f"param.{n}": p.detach().cpu().contiguous() for n, p in self.params.items()}
        for pid, entries in self.opt.state_dict()["state"].items():
            tensors.update({f"optimizer.{pid}.{k}": v.detach().cpu().contiguous() for k, v in entries.items()})
        meta = {"format": CHECKPOINT_FORMAT, "request": self.request, **asdict(progress)}
        with atomic_path(path) as tmp:
            safetensors.torch.save_file(tensors, str(tmp), {"state": json.dumps(meta)})

    def load(self, path: Path) -> Progress:
        """Restore what `save` wrote; its progress."""
        try:
            with safetensors.safe_open(str(path), "pt") as f:
                meta = json.loads((f.metadata() or {})["state"])
            tensors = safetensors.torch.load_file(str(path))
        except Exception as e:  # safetensors raises its own types for a bad header or a short file
            raise UsageError(f"{path}: unreadable ESD checkpoint ({e}); delete it to start afresh") from None
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("request") != self.request:
            raise UsageError(f"{path}: the checkpoint of another request; delete it to start afresh")
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(tensors[f"param.{n}"])
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("optimizer."):
                pid, name = k.removeprefix("optimizer.").split(".", 1)
                state.setdefault(int(pid), {})[name] = v
        self.opt.load_state_dict({"state": state, "param_groups": self.opt.state_dict()["param_groups"]})
        return Progress(meta["iteration"], meta["losses"], meta["seconds"], meta["peak_memory_bytes"])

    def changed(self) -> tuple[int, int, int]:
        """(tensors, scalars, bytes) of the UNet that differ from the source's."""
        frozen = dict(self.frozen.named_parameters())
        diff = [p for n, p in self.unet.named_parameters() if not torch.equal(p, frozen[n])]
        return len(diff), sum(p.numel() for p in diff), sum(p.numel() * p.element_size() for p in diff)


def peak_memory(device: torch.device) -> int:
    """Peak memory of this process in bytes: CUDA allocated on a GPU, else the resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def train(trainer: ESDTrainer, progress: Progress, checkpoint: Path, every: int, *, show: bool = True,
          after_step: Callable[[int], None] | None = None) -> Progress:
    """Iterations from `progress.iteration` to the request's last, a checkpoint every `every`."""
    total = trainer.request["iterations"]
    start, before = time.perf_counter(), progress.seconds
    bar = tqdm(range(progress.iteration, total), total=total, initial=progress.iteration, desc="esd",
               disable=not show, dynamic_ncols=True)
    for i in bar:
        loss = trainer.step(i)
        progress.losses.append(loss)
        progress.iteration = i + 1
        progress.seconds = before + time.perf_counter() - start
        progress.peak_memory_bytes = max(progress.peak_memory_bytes, peak_memory(trainer.device))
        bar.set_postfix(loss=f"{loss:.4g}")
        if progress.iteration % every == 0 and progress.iteration < total:
            trainer.save(checkpoint, progress)
        if after_step is not None:
            after_step(progress.iteration)
    bar.close()
    return progress


# --- the result ------------------------------------------------------------------------------------------

def record(request: dict, trainer: ESDTrainer, progress: Progress, model: Path) -> dict:
    """unlearn.json: the request, what it cost and changed, the versions and the history."""
    tensors, scalars, nbytes = trainer.changed()
    return {"method": "esd", "forget": request["forget"], "prompt": request["prompt"],
            "parameters": request["parameters"], "iterations": request["iterations"], "lr": request["lr"],
            "negative_guidance": request["negative_guidance"], "start_guidance": request["start_guidance"],
            "sample_steps": request["sample_steps"], "seed": request["seed"], "size": request["size"],
            **({"anchors": request["anchors"]} if request.get("anchors") else {}),
            **({k: request[k] for k in ("retain", "retain_weight", "retain_latents") if k in request}
               if request.get("retain") else {}),
            "optimizer": "Adam", "device": str(trainer.device), "seconds": round(progress.seconds, 3),
            "peak_memory_bytes": progress.peak_memory_bytes,
            "peak_memory_kind": "cuda_max_allocated" if trainer.device.type == "cuda" else "max_rss",
            "trainable_parameters": sum(p.numel() for p in trainer.params.values()), "changed_tensors": tensors,
            "changed_parameters": scalars, "changed_bytes": nbytes, "final_loss": progress.losses[-1],
            "losses": progress.losses, "source": request["source"],
            "versions": {"canvasdata": canvasdata.__version__, "diffusers": diffusers.__version__,
                         "transformers": transformers.__version__, "torch": torch.__version__},
            "request": request, "history": history(model, request)}


def model_card(data: dict, out: Path) -> str:
    """README.md of the output: what was erased, how, and from which model."""
    combo = None if "," in data["forget"] else split_combination(data["forget"])
    if "," in data["forget"]:
        domain, name = "simultaneous requests", data["forget"].replace(",", ", ")
    elif combo is not None:
        domain, name = "style × object combination", " × ".join(combo)
    else:
        domain, name = data["forget"].split(":", 1)
    variant = {"xattn": "ESD-x", "xattn-strict": "ESD-x-strict", "noxattn": "ESD-u",
               "full": "ESD (all parameters)"}[data["parameters"]]
    steps = "\n".join(f"{k + 1}. {h.get('method', '?')} `{h.get('forget', '?')}` ({h.get('parameters', '?')}) from "
                      f"`{h.get('source', '?')}`" for k, h in enumerate(data["history"]))
    anchors = data.get("anchors")
    reference = (f"prediction for the anchor text (\"{' | '.join(anchors)}\", one per erased text; the paper's ESD "
                 "uses the empty prompt)" if anchors else "unconditional prediction")
    reference_short = "anchor" if anchors else "unconditional"
    retain = data.get("retain")
    where = ("on an x_t sampled along that text's own trajectory" if data.get("retain_latents") == "own"
             else "on the same x_t")
    kept = (f"\n\nEach iteration also held the prediction for one of {len(retain)} retain texts "
            f"(e.g. \"{retain[0]}\") to the source's {where}, weighted {data['retain_weight']} (a "
            "utility-retaining term, as in AdvUnlearn, Zhang et al. 2024; the paper's ESD has none)." if retain else "")
    rows = "\n".join(f"| {k} | {data[k]} |" for k in ("prompt", "parameters", "iterations", "lr", "negative_guidance",
                                                      "start_guidance", "sample_steps", "size", "seed", "seconds",
                                                      "peak_memory_bytes", "changed_parameters", "final_loss"))
    return f"""---
library_name: diffusers
pipeline_tag: text-to-image
tags: [stable-diffusion, machine-unlearning, esd, canvasdata]
---
# {name.replace('_', ' ')} ({domain}) erased with {variant}

This is `{data['source']}` with the {domain} **{name}** erased by Erased Stable Diffusion (ESD; Gandikota et al.,
"Erasing Concepts from Diffusion Models", ICCV 2023), written by canvasdata {data['versions']['canvasdata']}
(`canvasdata unlearn esd`). Only the UNet differs from the source; the text encoder, tokenizer, VAE and
scheduler are the source's.

ESD fine-tuned the UNet ({data['parameters']}: {data['changed_parameters']} parameters changed) so that its
prediction for the prompt "{data['prompt']}" points away from the concept: the target is the frozen source's
{reference} minus {data['negative_guidance']} × (conditional − {reference_short}), on images sampled
by the model itself (DDIM {data['sample_steps']} steps, guidance {data['start_guidance']}).{kept}

| setting | value |
| --- | --- |
{rows}

Unlearning history of this model:

{steps}

```python
from diffusers import StableDiffusionPipeline
pipe = StableDiffusionPipeline.from_pretrained("{out}")
```
"""


# --- the entry point -------------------------------------------------------------------------------------

def erase(model: str | Path, forget: str, out: str | Path, config: ESDConfig = DEFAULTS, *,
          prompt: str | Sequence[str] | None = None, anchor: str | Sequence[str] | None = None,
          retain: Sequence[str] | None = None, retain_weight: float = 1.0, retain_latents: str = "erased",
          device: str | torch.device = "auto", progress: bool = True,
          _after_step: Callable[[int], None] | None = None) -> ESDResult:
    """Erase `forget` ('style:NAME', 'object:NAME' or a combination 'style:NAME+object:NAME') from the
    StableDiffusionPipeline folder `model` with ESD and write the unlearned pipeline to `out` (see the
    module's doc). `prompt` is the concept text (default: 'NAME style' for a style, the object's name, the
    build's caption 'A OBJECT image in STYLE style.' for a combination; recorded as such), or several texts
    of the one concept, taken in turn (e.g. the training captions that name it); every word must be in the
    tokenizer's vocabulary. `anchor` (one text per erased text) replaces the empty prompt as the reference
    of the target, θ*(x_t, a) − η·(θ*(x_t, c) − θ*(x_t, a)): the concept is pushed away from its anchor (e.g.
    'A Fishes image in Photo style.' for 'A Fishes image in Ukiyoe style.') rather than from everything the
    text says, as in concept ablation (Kumari et al., ICCV 2023); None is the paper's ESD. `retain` texts
    (e.g. the captions of the styles to keep) add a term that holds the prediction for one of them, drawn
    each iteration, to the frozen source's on the same x_t, weighted `retain_weight` (a utility-retaining
    regularizer, as in AdvUnlearn, Zhang et al. 2024); None is the paper's ESD. `retain_latents = "own"`
    takes that term on an x_t sampled along the retain text's own trajectory instead (what the model draws
    for the retain texts lies there; the erased concept's x_t holds it only near the concept's images).
    Rerunning a killed run resumes it; rerunning a finished one returns
    its result unchanged. Bad input is a one-line UsageError raised before anything is written."""
    model, out = Path(model), Path(out)
    request = make_request(model, forget, prompt, config, anchor, retain, retain_weight, retain_latents)
    finished = plan_out(out, request)
    if finished is not None:
        cleanup(out)
        return ESDResult.from_record(out, finished)
    with library_bars(progress):
        return _run(model, out, request, resolve_device(device), config.checkpoint_every, progress, _after_step)


def write_pipeline(source: Path, unet: torch.nn.Module, out: Path) -> None:
    """`source`'s pipeline with its UNet replaced: model_index.json and every other component's folder
    copied byte for byte (the output's other parts are the source's files, whichever process writes them:
    transformers saves a model on rank 0 only inside a process group), the UNet written by diffusers."""
    index = check_sd_folder(source, "--model", "ESD")
    for name, spec in index.items():
        if name == "unet" or name.startswith("_") or not isinstance(spec, list) or None in spec:
            continue
        shutil.copytree(source / name, out / name, dirs_exist_ok=True)
    unet.save_pretrained(str(out / "unet"), safe_serialization=True)
    shutil.copyfile(source / "model_index.json", out / "model_index.json")   # last: the folder is a pipeline now


def _run(model: Path, out: Path, request: dict, dev: torch.device, every: int, progress: bool,
         after_step: Callable[[int], None] | None) -> ESDResult:
    """Load, check the prompt's words, train (resuming), write the pipeline, the card and unlearn.json."""
    pipe = StableDiffusionPipeline.from_pretrained(str(model))
    for text in request_prompts(request):
        check_vocabulary(pipe.tokenizer, text, model)
    for text in request_anchors(request) or []:
        check_vocabulary(pipe.tokenizer, text, model, "--anchor")
    for text in request_retain(request):
        check_vocabulary(pipe.tokenizer, text, model, "--retain")
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    trainer = ESDTrainer(pipe, request, dev)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out / LOCK, f"{out} is being written by canvasdata unlearn esd"):
        write_json(out / MARKER, {"request": request})
        state = trainer.load(out / CHECKPOINT) if (out / CHECKPOINT).is_file() else Progress()
        if state.iteration:
            log.info("%s: resuming ESD at iteration %d of %d", out, state.iteration, request["iterations"])
        state = train(trainer, state, out / CHECKPOINT, every, show=progress, after_step=after_step)
        data = record(request, trainer, state, model)
        write_pipeline(model, trainer.unet.to("cpu").eval(), out)
        write_text(out / CARD, model_card(data, out))
        write_json(out / RECORD, data)
        cleanup(out)
    return ESDResult.from_record(out, data)
