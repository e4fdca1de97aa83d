"""The world's report: `REPORT.md` (the Table-2-shaped table with the original model as a row and the
published ESD row beside it, per-request scores with the forgotten concept's FD against its noise
floor, the attacks, the judges' and the model's own quality, every setting, and how long each stage
took) and `grid.png` (prompts x the original and each unlearned model)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from canvasdata.encode import decode_image, image_tensor
from canvasdata.evaluate.generate import answer_name
from canvasdata.evaluate.suite import request_dir
from canvasdata.formats.common import atomic_path, write_text
from canvasdata.sheet import contact_sheet
from canvasdata.taxonomy import SEED_STYLE
from canvasdata.world.recipe import WorldESD
from canvasdata.world.stages import METHOD, ORIGINAL, World

# UnlearnCanvas Table 2, ESD (reference/unlearncanvas.md): style UA, IRA, CRA; object UA, IRA, CRA (%)
PUBLISHED_ESD = {"style UA": 98.58, "style IRA": 80.97, "style CRA": 93.96,
                 "object UA": 92.15, "object IRA": 55.78, "object CRA": 44.23}
COLUMNS = ("style UA", "style IRA", "style CRA", "object UA", "object IRA", "object CRA", "FD")
TILE = 128


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.1f}" if isinstance(v, float) and v <= 1.0 else f"{v}"


def _num(v: Any, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(_num(r.get(c)) for c in COLUMNS) + " |")
    lines.append("| ESD, published (UnlearnCanvas Table 2, SD 1.5) | "
                 + " | ".join(_num(PUBLISHED_ESD.get(c)) for c in COLUMNS) + " |")
    return lines


def _requests(world: World, state: dict[str, Any]) -> list[str]:
    fds = state["stages"]["suite"]["info"]["concept_fd"]
    esd = state["stages"]["unlearn"]["info"]
    lines = ["| request | UA | IRA | CRA | FD on its prompts: original vs unlearned | floor: two seed sets of the "
             "original | ESD set | time (s) | peak memory (MiB) | parameters changed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for target in world.recipe.targets:
        r = json.loads(world.path("suite", METHOD, request_dir(target), "report.json").read_text())
        fd, e = fds[target], esd[target]
        lines.append(f"| `{target}` | {_pct(r.get('ua'))} | {_pct(r.get('ira'))} | {_pct(r.get('cra'))} | "
                     f"{fd['fd_unlearned']:.2f} | {fd['fd_floor']:.2f} | {e['method']} | {e['seconds']:.0f} | "
                     f"{e['peak_memory_bytes'] / 2**20:.0f} | {e['changed_parameters']:,} |")
    return lines


def _attacks(state: dict[str, Any]) -> list[str]:
    a = state["stages"]["attacks"]["info"]
    req = request_dir(a["target"])
    return [f"On `{a['target']}` (ESD): UA {_pct(a['ua_plain'])} % on plain generation; under concealment "
            f"(the original model takes the first ψ of the steps) the worst UA is {_pct(a['ua_worst'])} % at "
            f"ψ = {a['psi_worst']}; CRS {_num(a['crs'], 3)}, CCS {_num(a['ccs'], 3)}. Adversarial prompts bring the "
            f"concept back in {_pct(a['asr'])} % of generations (plain prompts: {_pct(a['asr_plain'])} %). Details: "
            f"[conceal](runs/{METHOD}/{req}/conceal/report.md), [prompts](runs/{METHOD}/{req}/prompts/report.md).", ""]


def _quality(state: dict[str, Any]) -> list[str]:
    j, m, o = (state["stages"][k]["info"] for k in ("judges", "model", "original"))
    held, deg, worst = j["held_out"], j["degraded"], j.get("worst_style_object") or {}
    q = o["judged"]
    lines = [f"- Judges (held-out test split): style {_pct(held.get('style'))} %, object {_pct(held.get('object'))} %; "
             f"lowest per-style object accuracy {_pct(worst.get('object_accuracy'))} % ({worst.get('style')}); "
             "degraded inputs: " + "; ".join(f"{t} " + ", ".join(f"{k} {_pct(v)} %" for k, v in d.items())
                                             for t, d in deg.items()) + ".",
             f"- Model: {', '.join(f'{k} {v / 1e6:.2f} M' for k, v in m['parameters'].items())} parameters; "
             f"autoencoder PSNR {_num(m.get('vae_psnr'), 1)} dB; training {m['seconds']['vae']:.0f} s + "
             f"{m['seconds']['unet']:.0f} s.",
             f"- The original model's answers ({q['images']} images), judged: style {_pct(q['style'])} %, "
             f"object {_pct(q['object'])} %. Per class: "
             + ", ".join(f"{k.split(':')[1]} {_pct(v)}" for k, v in q["per_class"].items()) + "."]
    if m.get("curve"):
        lines.append("- Learning curve (one seed of every cell at checkpoints, judged; style / object %): "
                     + ", ".join(f"step {c['step']} {_pct(c['style'])} / {_pct(c['object'])}" for c in m["curve"])
                     + ".")
    return lines


def _gold(state: dict[str, Any]) -> list[str]:
    """The retrained references (`world run --retrained T`): each model against the model never trained on T."""
    done = {n.removeprefix("retrained "): e["info"] for n, e in state["stages"].items()
            if n.startswith("retrained ") and e.get("done")}
    if not done:
        return []
    lines = ["## Against the retrained model (the gold standard)", "",
             "A model of the same recipe trained on the build without the concept is what unlearning should "
             "reach. UA / IRA / CRA of each answer set under the request (the retrained model's own first), FD "
             "between each set and the retrained model's on the prompts naming the concept, and J, the "
             "denoising-loss Jeffreys proxy (FADE's bidirectional idea; 0 for the same model) on those prompts "
             "and on the rest. Lower FD and J: closer to never having learned it.", "",
             "| request | answer set | UA | IRA | CRA | FD forgotten | J forgotten | J rest |",
             "|---|---|---|---|---|---|---|---|"]
    for target, info in done.items():
        for r in info["rows"]:
            sc = r["scores"]
            lines.append(f"| `{target}` | {r['label']} | {_pct(sc.get('ua'))} | {_pct(sc.get('ira'))} | "
                         f"{_pct(sc.get('cra'))} | {_num(r['fd_forgotten'])} | {_num(r['j_forgotten'], 4)} | "
                         f"{_num(r['j_rest'], 4)} |")
    lines += ["", "Details: " + ", ".join(f"[{t}](gold/{request_dir(t)}/retrained.md)" for t in done) + ".", ""]
    return lines


def _times(state: dict[str, Any], stages: Sequence[tuple[str, str]]) -> list[str]:
    lines = ["| stage | what | minutes |", "|---|---|---|"]
    total, lent = 0.0, set()
    for name, what in stages:
        entry = state["stages"].get(name, {})
        s = entry.get("seconds", 0.0)
        total += s
        if "from" in entry:
            lent.add(entry["from"])
            what += f" (taken from `{entry['from']}`: its time)"
        lines.append(f"| {name} | {what} | {s / 60:.1f} |")
    lines.append(f"| **total** | | **{total / 60:.1f}** |")
    if lent:
        lines += ["", "Stages taken from another world (`world run --from`) count at the time they took there."]
    return lines


def write_grid(world: World, path: Path) -> Path:
    """Prompts (rows: one cell of each request's concept, then two cells of none) x models (columns: the
    original, then each request's ESD model), seed = the first protocol seed."""
    seed = world.recipe.sampling.seeds[0]
    cells = []
    for target in world.recipe.targets:
        domain, _, name = target.partition(":")
        cells.append((name, world.objects[0]) if domain == "style" else (SEED_STYLE, name))
    forgotten = {t.partition(":")[2] for t in world.recipe.targets}
    cells += [(s, o) for s in world.styles for o in world.objects if s not in forgotten and o not in forgotten][:2]
    folders = [world.path("answers", ORIGINAL)] + [world.path("runs", METHOD, request_dir(t))
                                                   for t in world.recipe.targets]
    tiles = []
    for s, o in cells:
        for folder in folders:
            img = image_tensor(decode_image(folder / answer_name(s, o, seed))).float().div(255)
            tiles.append(F.interpolate(img[None], size=(TILE, TILE), mode="nearest")[0])
    sheet = contact_sheet(torch.stack(tiles), ncol=len(folders), row_labels=[f"{s}/{o}" for s, o in cells],
                          col_labels=["original"] + [f"-{t.partition(':')[2]}" for t in world.recipe.targets])
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def _retain_words(e: WorldESD) -> str:
    """The settings line's retain sentence: what ESD held while it erased (nothing: the paper's ESD)."""
    objects = {"others": "an object request every other object's name",
               "captions": "an object request every training caption of every other object"}
    held = (["a style request every other style's texts"] if e.style_retain == "others" else []) \
        + ([objects[e.object_retain]] if e.object_retain in objects else [])
    if not held:
        return " Nothing is held while erasing (the paper's ESD)."
    empty = ", with the empty prompt" if e.retain_empty else ""
    where = " on an x_t sampled along that text's own trajectory" if e.retain_latents == "own" else ""
    return (f" Each iteration also holds the prediction for one text drawn from the retain set ({'; '.join(held)}"
            f"{empty}) "
            f"to the original's{where}, weighted {e.retain_weight} (a utility-retaining term; the paper's ESD has "
            "none).")


def write_report(world: World, state: dict[str, Any], path: Path, stages: Sequence[tuple[str, str]]) -> Path:
    """REPORT.md and grid.png of a finished world (`stages`: each stage's name and what it does, in order)."""
    r = world.recipe
    suite = json.loads(world.path("suite", "suite.json").read_text())
    write_grid(world, world.path("grid.png"))
    s, e = r.sampling, r.esd
    lines = [f"# canvasdata world `{r.name}`", "", r.description, "",
             "## The scorecard (Table-2 shape)", "",
             "UA, IRA, CRA in %, means over the requests of each domain; FD between each request's retained-cell "
             "answers and the build's held-out images (judge features). The original model's UA is the share of "
             "its own answers the judges do not recognise: the floor every method starts from.", "",
             *_table(suite["rows"]), "",
             "## Per request", "", *_requests(world, state), "",
             "## Attacks", "", *_attacks(state), *_gold(state),
             "## Prompts x models", "", "![prompts x models](grid.png)", "",
             "Rows: one prompt of each forgotten concept, then two prompts of none; columns: the original model, "
             f"then each ESD model (seed {s.seeds[0]}).", "",
             "## How good the parts are", "", *_quality(state), "",
             "## Settings", "",
             f"- Build `{r.build}`, judge `{r.judge}`, model `{r.model}`; requests "
             + ", ".join(f"`{t}`" for t in r.targets) + ".",
             f"- Sampling: seeds {list(s.seeds)}, {s.steps} DDIM steps, guidance {s.guidance}, {world.resolution} px, "
             f"pipelines in {s.dtype}; "
             f"FD floor seeds {list(s.floor_seeds)}.",
             f"- ESD: {e.iterations} iterations, lr {e.lr}"
             + (f" (object requests: {e.object_lr})" if e.object_lr is not None else "")
             + f", negative guidance {e.negative_guidance}"
             + (f" (style requests: {e.style_negative_guidance})" if e.style_negative_guidance is not None else "")
             + f", start guidance {e.start_guidance}, "
             f"{e.sample_steps} sampling steps; parameter set `{e.style_method}` for styles (xattn: ESD-x, the "
             "cross-attention; xattn-strict: its key and value projections), `noxattn` (ESD-u) for objects. "
             + ("A style is erased on 'NAME style'" if e.style_texts == "concept" else
                "A style is erased on every training caption that names it, in turn")
             + (f", each anchored on the same text in {e.style_anchor} (the target's reference instead of the empty "
                "prompt)." if e.style_anchor else ", against the empty prompt (the paper's ESD).")
             + _retain_words(e),
             "- Judge trained " + ("in one process (rank 0, every core)." if r.judge_alone else "on every rank (DDP)."),
             f"- Prompts say \"{r.seed_images_words}\" for Seed_Images: the words the model's captions used.",
             *world.protocol.markdown_lines(), "",
             "## Time", "", *_times(state, stages), ""]
    write_text(path, "\n".join(lines))
    return path
