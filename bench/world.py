"""The tiny world against its targets: run (or resume, or read) `canvasdata world run` at its default size
and report every stage's time and each quality target with its measured number.

    python bench/world.py [--out DIR] [--size tiny] [--device cpu] [--retrained style:Pop_Art]

Targets (issue: a world small enough to unlearn on a laptop): the whole world <= 90 min on 2 cores; the
original model's answers judged style >= 90 %, object >= 75 %; the judges on the autoencoder's
reconstructions of held-out images style >= 95 %, object >= 90 %; ESD on a style UA >= 90 %, IRA >= the
original's - 15 pp, CRA >= the original's - 10 pp; on an object UA >= 80 %; FD(original, unlearned) on the
forgotten concept's prompts clearly above FD between two seed sets of the original.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _report import table, write_section
from diffusers import AutoencoderKL

from canvasdata.data import load_split
from canvasdata.encode import decode_image, image_tensor
from canvasdata.judges import load_judge
from canvasdata.world.recipe import load_world_recipe
from canvasdata.world.run import RETRAINED_STAGE, STAGES, run_world


@torch.no_grad()
def reconstruction_accuracy(world: Path) -> dict[str, float]:
    """The judge's top-1 on the held-out split as stored and as the model's autoencoder reconstructs it."""
    judge = load_judge(world / "judges", "cpu").eval()
    vae = AutoencoderKL.from_pretrained(str(world / "model" / "vae")).eval()
    data = load_split(world / "data", "test", ["style", "object"])
    x = torch.stack([image_tensor(decode_image(b)) for b in data.images]).float().div(255)
    recon = torch.cat([vae.decode(vae.encode(x[i:i + 64] * 2 - 1).latent_dist.mean).sample.clamp(-1, 1).add(1).div(2)
                       for i in range(0, len(x), 64)])
    out = {}
    for name, images in (("stored", x), ("reconstructed", recon)):
        size = judge.image_size
        xs = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True)
        logits = {t: torch.cat([judge.logits(xs[i:i + 128])[t] for i in range(0, len(xs), 128)]) for t in judge.tasks}
        for t, lg in logits.items():
            out[f"{t} {name}"] = float((lg.argmax(1).numpy() == data.labels[t]).mean())
    return out


def targets(world: Path, state: dict, recon: dict[str, float]) -> list[tuple[str, str, str, str]]:
    """(target, goal, measured, met) rows."""
    minutes = sum(state["stages"][name]["seconds"] for name, _, _ in STAGES) / 60   # not the opt-in retrained ones
    q = state["stages"]["original"]["info"]["judged"]
    suite = json.loads((world / "suite" / "suite.json").read_text())
    rows = {r["method"]: r for r in suite["rows"]}
    o, e = rows["original"], rows["esd"]
    fds = state["stages"]["suite"]["info"]["concept_fd"]
    fd_ok = all(v["fd_unlearned"] > 2 * v["fd_floor"] for v in fds.values())
    fd_text = "; ".join(f"{k}: {v['fd_unlearned']:.1f} vs {v['fd_floor']:.1f}" for k, v in fds.items())

    def row(name: str, goal: str, value: float | None, ok: bool, unit: str = " %") -> tuple[str, str, str, str]:
        return name, goal, "—" if value is None else f"{value:.1f}{unit}", "yes" if ok else "**no**"

    return [
        row("world run, wall (stages summed)", "<= 90 min", minutes, minutes <= 90, " min"),
        row("original answers: style judged", ">= 90 %", 100 * q["style"], q["style"] >= 0.90),
        row("original answers: object judged", ">= 75 %", 100 * q["object"], q["object"] >= 0.75),
        row("judges on reconstructions: style", ">= 95 %", 100 * recon["style reconstructed"],
            recon["style reconstructed"] >= 0.95),
        row("judges on reconstructions: object", ">= 90 %", 100 * recon["object reconstructed"],
            recon["object reconstructed"] >= 0.90),
        row("ESD style: UA", ">= 90 %", e["style UA"], (e["style UA"] or 0) >= 90),
        row("ESD style: IRA", f">= original - 15 pp ({o['style IRA'] - 15:.1f})", e["style IRA"],
            (e["style IRA"] or 0) >= o["style IRA"] - 15),
        row("ESD style: CRA", f">= original - 10 pp ({o['style CRA'] - 10:.1f})", e["style CRA"],
            (e["style CRA"] or 0) >= o["style CRA"] - 10),
        row("ESD object: UA", ">= 80 %", e["object UA"], (e["object UA"] or 0) >= 80),
        ("FD on the forgotten prompts: unlearned vs floor", "clearly above (> 2x)", fd_text,
         "yes" if fd_ok else "**no**"),
    ]


def gold(state: dict, retrained: list[str]) -> list[str]:
    """The retrained references' rows (`--retrained`): not part of the 90-minute target (opt-in stages)."""
    parts = []
    for t in retrained:
        e = state["stages"][RETRAINED_STAGE.format(t)]
        rows = [[r["label"], *(round(r["scores"][k] * 100, 1) if r["scores"][k] is not None else "—"
                                for k in ("ua", "ira", "cra")),
                 "—" if r["fd_forgotten"] is None else round(r["fd_forgotten"], 1),
                 round(r["j_forgotten"], 4), round(r["j_rest"], 4)] for r in e["info"]["rows"]]
        parts += [f"Against the model retrained without `{t}` (an extra stage, {e['seconds'] / 60:.1f} min, not in "
                  "the total above): UA / IRA / CRA under the request, FD to the retrained model's answers on the "
                  "prompts naming it, J (denoising-loss Jeffreys proxy) on those prompts and on the rest.",
                  table(["answer set", "UA", "IRA", "CRA", "FD forgotten", "J forgotten", "J rest"], rows)]
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the BENCHMARKS.md section's earlier runs below "
                   "this one (default: this run replaces the section)")
    p.add_argument("--out", default="/tmp/canvasdata-world", help="the world's folder (resumed if there)")
    p.add_argument("--size", default="tiny", help="world recipe")
    p.add_argument("--device", default="cpu")
    p.add_argument("--conditions", default="one process on an otherwise idle machine",
                   help="how the world ran (ranks, other load): printed with the figures")
    p.add_argument("--retrained", nargs="*", default=[], metavar="REQUEST",
                   help="also the gold standard of these requests (`world run --retrained`): reported apart")
    a = p.parse_args(argv)
    out = Path(a.out)
    t0 = time.perf_counter()
    state = run_world(load_world_recipe(a.size), out, device=a.device, retrained=a.retrained)
    print(f"world ready after {time.perf_counter() - t0:.0f} s in this call", file=sys.stderr)
    recon = reconstruction_accuracy(out)
    seconds = {name: state["stages"][name]["seconds"] for name, _, _ in STAGES}
    trained = sum(json.loads((out / "model" / "model.json").read_text())["seconds"].values())
    seconds["model"] = max(seconds["model"], trained)  # a model trained (in part) before this world's first call
    stage_rows = [(name, what, round(seconds[name] / 60, 1)) for name, what, _ in STAGES]
    total = sum(r[2] for r in stage_rows)
    state["stages"]["model"]["seconds"] = seconds["model"]
    body = "\n\n".join([
        f"`canvasdata world run --size {a.size}` (resumable; figures from `world.json` and the reports of one "
        f"world in `{out}`). Stage times are summed over resumed calls; the model's is at least its training "
        "time in `model.json` (autoencoder + denoiser), also when part of it ran before the world's first call. "
        f"Conditions: {a.conditions}",
        table(["stage", "what", "minutes"], [*stage_rows, ("total", "", round(total, 1))]),
        "Targets (each measured number, never a lowered goal):",
        table(["target", "goal", "measured", "met"], targets(out, state, recon)),
        "Judges on the held-out split as stored and as the model's autoencoder reconstructs it (top-1 %):",
        table(list(recon), [[round(100 * v, 1) for v in recon.values()]]),
        *gold(state, a.retrained),
        "Scorecard: `" + str(out / "REPORT.md") + "` (copied into docs/world.md).",
    ])
    write_section("world", body, keep=a.keep)
    print(body)
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
