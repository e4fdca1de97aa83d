"""The rest of the published scorecard on a finished tiny world (issue 21): finer-scale unlearning (ESD on a
style x object combination: FU and FR's parts), sequential unlearning (three style requests one after
another, each step scored: per-target UA, SU, SR, rebound; the simultaneous run beside it) and the
neighbour split of IRA from the world's own suite. Every model and answer set uses the world's ESD and
sampling settings; ESD step 1 of the sequence is the world's own ESD model of its first request (the same
request, so `unlearn sequence` finds it done).

    python bench/continual.py --world DIR [--combination style:Pop_Art+object:Jellyfish] [--third style:NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from _report import table, write_section

from canvasdata.evaluate.score import score_answers
from canvasdata.evaluate.sequence import score_sequence
from canvasdata.evaluate.suite import request_dir
from canvasdata.judges import load_judge
from canvasdata.unlearn import ESDConfig
from canvasdata.unlearn.esd import erase
from canvasdata.unlearn.sequence import erase_sequence, step_dirs
from canvasdata.world.recipe import load_world_recipe
from canvasdata.world.stages import METHOD, ORIGINAL, World


def _pct(v: float | None) -> str:
    return "—" if v is None or v != v else f"{100 * v:.1f}"


def _third_style(w: World, taken: list[str]) -> str:
    """The style the original model draws best (its judged fidelity) among those not taken (not Seed_Images)."""
    per = json.loads(w.path("world.json").read_text())["stages"]["original"]["info"]["judged"]["per_class"]
    styles = [(v, k.split(":", 1)[1]) for k, v in per.items() if k.startswith("style:")]
    return max((v, s) for v, s in styles if s not in taken and s != "Seed_Images")[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", required=True, help="a finished world folder")
    p.add_argument("--size", default="tiny", help="its world recipe")
    p.add_argument("--combination", default="style:Pop_Art+object:Jellyfish")
    p.add_argument("--third", help="the sequence's third style (default: the best-drawn other style)")
    p.add_argument("--out", default="/tmp/canvasdata-continual")
    a = p.parse_args(argv)
    w = World(load_world_recipe(a.size), Path(a.world).resolve(), "cpu", False)
    judges = [load_judge(w.path("judges"), "cpu")]
    e = w.recipe.esd
    config = ESDConfig(iterations=e.iterations, lr=e.lr, negative_guidance=e.negative_guidance,
                       start_guidance=e.start_guidance, sample_steps=e.sample_steps)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    sections = []

    # finer-scale: one combination
    t0 = time.perf_counter()
    combo = erase(w.path("model"), a.combination, out / "combination" / "model", config, device="cpu", progress=False)
    esd_s = time.perf_counter() - t0
    ans = w.generate(combo.out, out / "combination" / "answers")
    r = score_answers(ans, a.combination, judges, protocol=w.protocol)
    orig = score_answers(w.path("answers", ORIGINAL), a.combination, judges, protocol=w.protocol)
    rows = [(m, _pct(x.fu), _pct(x.fr_same_style), _pct(x.fr_same_object), _pct(x.fr_rest), _pct(x.fr))
            for m, x in (("original", orig), (f"ESD-x, {combo.prompt!r}", r))]
    sections.append(f"**Finer-scale** (`{a.combination}`; ESD {combo.method}, lr {config.lr:g}, {config.iterations} "
                    f"iterations, {esd_s:.0f} s; target FU >= 80 %). FR's parts: judged correctly on both style and "
                    "object, %.\n\n" + table(["model", "FU", "FR same style", "FR same object", "FR rest", "FR"], rows))

    # sequential: three styles, and the same three at once
    first = [t for t in w.recipe.targets if t.startswith("style:")][:2]
    third = a.third or "style:" + _third_style(w, [t.split(":", 1)[1] for t in first])
    targets = [*first, third]
    seq = out / "sequence"
    steps = step_dirs(seq, targets)
    seq.mkdir(parents=True, exist_ok=True)
    if not steps[0].exists():
        os.symlink(w.unlearned(targets[0]), steps[0], target_is_directory=True)   # the world's own ESD model
    t0 = time.perf_counter()
    erase_sequence(w.path("model"), targets, seq, config, device="cpu", progress=False)
    seq_s = time.perf_counter() - t0
    answers = [w.path("runs", METHOD, request_dir(targets[0]))]
    answers += [w.generate(s, out / "sequence-answers" / s.name) for s in steps[1:]]
    t0 = time.perf_counter()
    sim = erase(w.path("model"), ",".join(targets), out / "simultaneous" / "model",
                replace(config, iterations=config.iterations * len(targets)), device="cpu", progress=False)
    sim_s = time.perf_counter() - t0
    sim_answers = w.generate(sim.out, out / "simultaneous" / "answers")
    rep = score_sequence(answers, targets, judges, original=w.path("answers", ORIGINAL), simultaneous=sim_answers,
                         protocol=w.protocol, out=out / "sequence-report")
    rows = [(row.label, *(_pct(row.ua[t]) if t in row.forgotten else f"({_pct(row.ua[t])})" for t in targets),
             _pct(row.su), _pct(row.sr_style), _pct(row.sr_object), _pct(row.sr)) for row in rep.rows]
    sections.append(f"**Sequential** ({' -> '.join(targets)}; each step ESD {config.iterations} iterations at lr "
                    f"{config.lr:g} from the previous step's model, the steps after the first took {seq_s:.0f} s; "
                    f"step 1 is the world's own ESD model) and **simultaneous** (one run over all {len(targets)}, "
                    f"{config.iterations * len(targets)} iterations: each concept as many updates as in the sequence, "
                    f"{sim_s:.0f} s). UA in % (parentheses: not forgotten yet); SR over the cells no request touches. "
                    "Rebound: " + ", ".join(f"{t} {_pct(v)} pp" for t, v in rep.rebound.items()) + ".\n\n"
                    + table(["row", *(f"UA {t.split(':', 1)[1]}" for t in targets), "SU", "SR style", "SR object",
                             "SR"], rows)
                    + f"\n\nPlot: `{rep.paths['plot']}` (copied to docs/figures/sequence.png).")

    # the neighbour split of the world's own ESD requests
    rows = []
    for t in w.recipe.targets:
        rr = json.loads(w.path("suite", METHOD, request_dir(t), "report.json").read_text())
        ro = json.loads(w.path("suite", ORIGINAL, request_dir(t), "report.json").read_text())
        rows.append((t, ", ".join(rr.get("neighbours") or []), _pct(ro.get("ira_near")), _pct(rr.get("ira_near")),
                     _pct(ro.get("ira_rest")), _pct(rr.get("ira_rest"))))
    sections.append("**Neighbour split** of IRA (the world's suite; the 3 retained classes nearest the target by "
                    "the judge's class embeddings): does ESD's in-domain cost concentrate near the target? "
                    "Original -> ESD, %.\n\n"
                    + table(["request", "nearest", "IRA near, original", "IRA near, ESD", "IRA rest, original",
                             "IRA rest, ESD"], rows))
    body = f"On the world `{a.world}` (its model, judges, protocol and ESD settings).\n\n" + "\n\n".join(sections)
    write_section("continual", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
