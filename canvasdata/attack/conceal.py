"""The concealment probe: partial diffusion over a ψ grid (`partial.PartialDiffusion`), each ψ written as
an answer set `psi_{ψ}/` ({style}_{object}_seed{N}.jpg, scored like any answer set), read three ways:

- UA(ψ): the forgotten concept's detection by the style/object judge (`score_answers`, under the
  protocol), so one curve shows where the concept comes back; "UA under concealment" is its worst
  (lowest) value over the grid's ψ < 1 (ψ = 1 is the original model alone);
- CRS(ψ) and CCS(ψ) (`crs`): read by a discriminator telling original-model images from unlearned-model
  images, a logistic-regression probe on the forgotten domain's judge's penultimate features, trained on
  images of both models made with seeds of its own (`probe/original`, `probe/unlearned`); its held-out
  accuracy is measured on the ψ = 1 and ψ = 0 sets (the protocol's seeds).

ψ = 0 (the unlearned model alone) and ψ = 1 (the original alone) are always generated: they are the
references of CRS. Writes report.json, report.md and conceal.png (UA, CRS and CCS over ψ)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tqdm.auto import tqdm

from canvasdata.attack.common import (
    AttackReport,
    Request,
    Sampling,
    forget_request,
    judges_record,
    percent,
    read_set,
    score,
)
from canvasdata.attack.crs import LinearProbe, confidence_score, mean_over_psi, retrieval_score
from canvasdata.attack.io import save_image
from canvasdata.attack.partial import PartialDiffusion, check_compatible, check_psi, original_steps
from canvasdata.chart import line_chart
from canvasdata.devices import DECODE_WORKERS, JUDGE_BATCH, Session
from canvasdata.errors import UsageError
from canvasdata.evaluate.answers import Answer
from canvasdata.evaluate.generate import model_name
from canvasdata.evaluate.protocol import Protocol, get_protocol
from canvasdata.evaluate.score import judge_for, judge_name, run_judges, score_answers

log = logging.getLogger(__name__)

DEFAULT_PSI = (0.1, 0.2, 0.3, 0.4, 0.5, 0.55)   # the paper's grid reaches about 0.55
DEFAULT_PROBE_SEEDS = (0, 1, 2, 3, 4)           # the discriminator's training images: seeds apart from the protocol's
PLOT = "conceal.png"


def psi_dir(psi: float) -> str:
    """The answer folder of one ψ: `psi_0`, `psi_0.1`, `psi_0.55`, `psi_1`."""
    return f"psi_{psi:g}"


@dataclass(kw_only=True)
class ConcealReport(AttackReport):
    """What the concealment probe measured and every setting it used (fractions in [0, 1])."""

    kind: ClassVar[str] = "conceal"
    models: dict[str, str]
    grid: list[float]
    per_psi: list[dict]
    crs: float | None
    ccs: float | None
    ua_plain: float
    ua_worst: float | None
    psi_worst: float | None
    discriminator: dict

    def to_markdown(self) -> str:
        """Headline numbers, the per-ψ table, then how they were obtained."""
        d, t, s = self.forget["domain"], self.forget["target"], self.sampling
        lines = [f"# Concealment probe: forget {d} `{t}`", "",
                 "| ψ | original steps | UA | CRS(ψ) | CCS(ψ) | images |", "|---|---|---|---|---|---|"]
        for r in self.per_psi:
            note = "" if r["in_grid"] else " (reference)"
            lines.append(f"| {r['psi']:g}{note} | {r['original_steps']} of {s['steps']} | {percent(r['ua'])} | "
                         f"{score(r['crs'])} | {score(r['ccs'])} | {r['images']} |")
        grid = ", ".join(f"{p:g}" for p in self.grid)
        lines += ["", f"- **UA under concealment (worst ψ)**: {percent(self.ua_worst)}% at ψ = "
                  f"{'—' if self.psi_worst is None else f'{self.psi_worst:g}'}; plain UA (ψ = 0): "
                  f"{percent(self.ua_plain)}%.",
                  f"- **CRS** = {score(self.crs)}, **CCS** = {score(self.ccs)}: means over the ψ grid ({grid}), ψ = 1 "
                  "left out (the original model alone). High values: the concept was concealed, not removed.",
                  "- Partial diffusion: the original model takes the first round(ψ·T) denoising steps from the seed's "
                  "noise, the unlearned model (its denoiser, text conditioning and VAE) the rest, one scheduler "
                  "throughout.",
                  f"- Discriminator: {self.discriminator['kind']} of the {self.discriminator['judge']} judge "
                  f"({self.discriminator['features']}-d), trained on {self.discriminator['train_images']} images "
                  f"(seeds {self.discriminator['seeds']}); accuracy "
                  f"{percent(self.discriminator['train_accuracy'])}% on them, "
                  f"{percent(self.discriminator['heldout_accuracy'])}% held out (ψ = 0 and ψ = 1 sets).",
                  f"- Models: original `{self.models['original']}`, unlearned `{self.models['unlearned']}`.",
                  f"- Sampling: {s['scheduler']} {s['steps']} steps (eta {s['eta']}), guidance {s['guidance']}, "
                  f"{s['size']} px, {s['dtype']}, seeds {s['seeds']}, {s['generator']}.",
                  f"- Prompts: {len(self.request['styles'])} style(s) × {len(self.request['objects'])} object(s).",
                  *self.protocol.markdown_lines(),
                  "- Judges: " + ", ".join(f"{k}: `{v}`" for k, v in self.judges.items()) + ".",
                  "", f"![UA, CRS and CCS over ψ]({PLOT})"]
        return "\n".join(lines) + "\n"

    def plot(self) -> Any:
        """UA(ψ), CRS(ψ) and CCS(ψ) as a PIL image, the worst ψ circled."""
        series = {k.upper(): [(r["psi"], r[k]) for r in self.per_psi] for k in ("ua", "crs", "ccs")}
        marks = [] if self.psi_worst is None else [(self.psi_worst, self.ua_worst, "worst UA")]
        return line_chart(series, f"forget {self.forget['domain']} {self.forget['target']}: UA, CRS, CCS over psi",
                          "psi (share of steps by the original model)", marks)

    def write(self, out: Path | str) -> dict[str, str]:
        """report.json, report.md and conceal.png into `out`, atomically; returns their paths."""
        save_image(Path(out) / PLOT, self.plot())
        return self.write_reports(Path(out), plot=PLOT)


def _generate_sets(original: Any, unlearned: Any, names: tuple[str, str], request: Request, psis: list[float],
                   out: Path, sampling: Sampling, proto: Protocol, probe_seeds: Sequence[int], progress: bool,
                   session: Session | None = None) -> dict:
    """Every ψ's answer set and the discriminator's two training sets (resumable); {key: folder}."""
    jobs = [(p, PartialDiffusion(original, unlearned, p, f"partial diffusion: {names[0]} for round({p:g}·T) steps, "
                                                         f"then {names[1]}"), out / psi_dir(p), sampling.seeds)
            for p in psis]
    jobs += [("probe original", original, out / "probe" / "original", probe_seeds),
             ("probe unlearned", unlearned, out / "probe" / "unlearned", probe_seeds)]
    folders = {}
    for key, pipe, folder, seeds in tqdm(jobs, desc="conceal", unit="set", disable=not progress):
        log.info("generating %s -> %s", key, folder)
        folders[key] = sampling.generate(pipe, folder, request, proto, seeds=seeds, progress=progress, session=session)
    return folders


def _features(judge: Any, sets: dict[Any, list[Answer]], proto: Protocol, batch_size: int, workers: int,
              progress: bool, session: Session | None = None) -> dict[Any, np.ndarray]:
    """The judge's penultimate features of every set's images, judged in one pass."""
    keys = list(sets)
    everything = [a for k in keys for a in sets[k]]
    _, feats = run_judges([judge], everything, batch_size, workers, features_of=judge, resize=proto.judge_resize,
                          progress=progress, session=session)
    bounds = np.cumsum([0] + [len(sets[k]) for k in keys])
    return {k: feats[bounds[i]:bounds[i + 1]] for i, k in enumerate(keys)}


def _read_psi(psis: list[float], grid: list[float], sets: dict, feats: dict, probe: LinearProbe, forget: str,
              judges: Sequence[Any], proto: Protocol, folders: dict, steps: int, batch_size: int,
              workers: int, session: Session | None = None) -> list[dict]:
    """UA, CRS and CCS of every ψ (each ψ's scoring report written beside its images)."""
    rows = []
    for p in psis:
        r = score_answers(sets[p], forget, judges, protocol=proto, batch_size=batch_size, workers=workers,
                          out=folders[p] / "report", session=session)
        rows.append({"psi": p, "in_grid": p in grid, "original_steps": original_steps(p, steps),
                     "ua": r.ua, "residual_rate": r.residual_rate, "images": len(sets[p]),
                     "crs": retrieval_score(feats[p], feats[1.0], feats[0.0]),
                     "ccs": confidence_score(probe.prob_original(feats[p])), "folder": str(folders[p]),
                     "forgotten_predicted_as": r.forgotten_predicted_as})
    return rows


def run_conceal(original: str | Path | Any, unlearned: str | Path | Any, forget: str, judges: Sequence[Any],
                out: Path | str, *, psi: Sequence[float] = DEFAULT_PSI, styles: Sequence[str] | None = None,
                objects: Sequence[str] | None = None, probe_seeds: Sequence[int] = DEFAULT_PROBE_SEEDS,
                sampling: Sampling | None = None, protocol: str | Protocol | None = None,
                judge_batch_size: int = JUDGE_BATCH, workers: int = DECODE_WORKERS,
                progress: bool = True, session: Session | None = None) -> ConcealReport:
    """Run the concealment probe of `forget` ('style:NAME' or 'object:NAME') on two pipelines (directories,
    Hub ids or loaded pipelines) over the ψ grid `psi`, score it with `judges` under `protocol` (default
    `unlearncanvas`) and write everything into `out` (resumable); returns the report. Under torchrun
    (`session`) the ranks share every set's generation and judging; rank 0 alone writes the report."""
    proto, grid, out = get_protocol(protocol), check_psi(list(psi)), Path(out)
    if not probe_seeds:
        raise UsageError("probe_seeds: give at least one seed for the discriminator's training images")
    request = forget_request(forget, styles, objects, judges)
    sampling = sampling or Sampling()
    orig_pipe, unl_pipe = sampling.load(original), sampling.load(unlearned)
    check_compatible(orig_pipe, unl_pipe)
    psis = sorted({0.0, 1.0, *grid})
    names = model_name(original), model_name(unlearned)
    folders = _generate_sets(orig_pipe, unl_pipe, names, request, psis, out, sampling, proto, probe_seeds, progress,
                             session)
    sets: dict[Any, list[Answer]] = {p: read_set(folders[p], request, sampling.seeds) for p in psis}
    for key in ("probe original", "probe unlearned"):
        sets[key] = read_set(folders[key], request, probe_seeds)
    judge = judge_for(judges, request.domain)
    feats = _features(judge, sets, proto, judge_batch_size, workers, progress, session)
    probe = LinearProbe().fit(feats["probe original"], feats["probe unlearned"])
    rows = _read_psi(psis, grid, sets, feats, probe, forget, judges, proto, folders, sampling.steps,
                     judge_batch_size, workers, session)
    attack = [r for r in rows if r["in_grid"] and r["psi"] < 1]
    worst = min(attack, key=lambda r: (r["ua"], r["psi"])) if attack else None
    discriminator = {**probe.describe(), "judge": request.domain, "judge_model": judge_name(judge),
                     "seeds": [int(s) for s in probe_seeds],
                     "train_images": len(sets["probe original"]) + len(sets["probe unlearned"]),
                     "train_accuracy": probe.accuracy(feats["probe original"], feats["probe unlearned"]),
                     "heldout_accuracy": probe.accuracy(feats[1.0], feats[0.0])}
    report = ConcealReport(
        forget={"domain": request.domain, "target": request.target},
        models={"original": names[0], "unlearned": names[1]}, grid=grid, per_psi=rows,
        crs=mean_over_psi({r["psi"]: r["crs"] for r in attack}),
        ccs=mean_over_psi({r["psi"]: r["ccs"] for r in attack}),
        ua_plain=next(r["ua"] for r in rows if r["psi"] == 0.0), ua_worst=worst["ua"] if worst else None,
        psi_worst=worst["psi"] if worst else None, discriminator=discriminator, protocol=proto,
        sampling={**sampling.to_dict(unl_pipe), "psi_grid": grid, "references": [0.0, 1.0],
                  "probe_seeds": [int(s) for s in probe_seeds]},
        request=request.to_dict(), judges=judges_record(judges))
    if session is None or session.main:
        report.write(out)
    return report
