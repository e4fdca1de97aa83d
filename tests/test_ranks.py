"""The evaluators under torchrun with 2 CPU ranks (gloo), against one process at the same torch threads per
process: `evaluate generate` / `generate-concept` write byte-identical folders, a run whose rank 1 is killed
mid-way is completed by a rerun to the same bytes (redoing only unfinished batches), `evaluate score` and
`suite` write the same report numbers, a sweep does all of it, both attacks report what one process does, and
the mini world runs end to end under the 2 ranks `world run --ranks 2` starts itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from helpers.files import sha256
from helpers.sweeps import two_model_sweep
from helpers.tiny_diffusers import tiny_pipeline
from helpers.tiny_judges import tiny_judge
from PIL import Image
from safetensors.torch import load_file

from canvasdata.cli import main

pytest.importorskip("diffusers")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available in this torch build",
                allow_module_level=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # torchrun gives each rank one thread: the same here

TIMEOUT = 180
GRID = ["--styles", "Van_Gogh", "Pop_Art", "Seed_Images", "--objects", "Cats", "Dogs", "--seeds", "188", "288",
        "--size", "32", "--batch-size", "3", "--device", "cpu", "-q"]   # 12 images in 4 batches


def generate_args(model: Path, out: Path, steps: int) -> list[str]:
    return ["evaluate", "generate", "--model", str(model), "--out", str(out), "--steps", str(steps), *GRID]


def torchrun(model: Path, out: Path, steps: int, argv: list[str] | None = None) -> subprocess.Popen:
    """`canvasdata evaluate generate` (or `argv`) under torchrun with 2 ranks, one thread each, in its own
    process group."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "canvasdata.cli", *(argv or generate_args(model, out, steps))]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def canvasdata(argv: list[str]) -> subprocess.Popen:
    """`canvasdata ARGV` in a process (and process group) of its own, outside any torchrun."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT", "OMP_NUM_THREADS")}
    return subprocess.Popen([sys.executable, "-m", "canvasdata.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, out + err


def images(folder: Path) -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(folder.glob("*.jpg"))}


def rank_process(torchrun_pid: int, rank: int) -> int | None:
    """The pid of the worker of `rank` among torchrun's descendants (its environment names the rank)."""
    parents = {}
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    family, grew = {torchrun_pid}, True
    while grew:
        kids = {pid for pid, ppid in parents.items() if ppid in family} - family
        family |= kids
        grew = bool(kids)
    for pid in sorted(family - {torchrun_pid}):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and f"LOCAL_RANK={rank}".encode() in env:
            return pid
    return None


def test_two_ranks_write_the_one_process_answer_folder(tiny_sd_pipeline: Path, tmp_path: Path):
    assert main(generate_args(tiny_sd_pipeline, tmp_path / "one", 2)) == 0
    rc, log = finish(torchrun(tiny_sd_pipeline, tmp_path / "two", 2))
    assert rc == 0, log
    one, two = images(tmp_path / "one"), images(tmp_path / "two")
    assert len(one) == 12 and two == one
    settings = [json.loads((tmp_path / d / "generation.json").read_text()) for d in ("one", "two")]
    assert settings[1]["ranks"] == 2 and settings[0]["ranks"] == 1
    same = {k for k in settings[0] if k not in ("ranks", "model")}
    assert {k: settings[1][k] for k in same} == {k: settings[0][k] for k in same}
    assert log.count("answer set in") == 1   # rank 0 alone prints


def test_a_rank_killed_mid_run_and_the_rerun_ends_with_the_same_files(tiny_sd_pipeline: Path, tmp_path: Path):
    steps = 40   # slow enough to kill rank 1 with work left
    assert main(generate_args(tiny_sd_pipeline, tmp_path / "whole", steps)) == 0
    out = tmp_path / "killed"
    proc = torchrun(tiny_sd_pipeline, out, steps)
    deadline = time.monotonic() + TIMEOUT
    while not list(out.glob("*.jpg")) and time.monotonic() < deadline:   # both ranks under way
        time.sleep(0.05)
    victim = rank_process(proc.pid, 1)
    assert victim is not None, "rank 1's process was not found"
    os.kill(victim, signal.SIGKILL)
    rc, _ = finish(proc)
    assert rc != 0
    part = images(out)
    assert 0 < len(part) < 12, "the kill left work to redo"
    written = {n: (out / n).stat().st_mtime_ns for n in part}
    rc, log = finish(torchrun(tiny_sd_pipeline, out, steps))
    assert rc == 0, log
    whole = images(tmp_path / "whole")
    assert images(out) == whole
    assert all(whole[n] == h for n, h in part.items())   # what the killed run wrote was already right
    assert all((out / n).stat().st_mtime_ns == t for n, t in written.items())   # and was not written again
    assert not list(out.glob(".*.tmp"))


def test_a_sweep_under_two_ranks_writes_and_scores_what_one_process_does(tiny_sd_pipeline: Path, tmp_path: Path):
    judge = tiny_judge(tmp_path / "judge", {"style": "uc50", "object": "objects"})
    models = two_model_sweep(tmp_path, tiny_sd_pipeline)

    def sweep(out: Path) -> list[str]:
        return ["evaluate", "sweep", str(models), "--out", str(out), "--judges", str(judge), "--steps", "2",
                "--workers", "0", *GRID]

    assert main(sweep(tmp_path / "one")) == 0
    rc, log = finish(torchrun(tiny_sd_pipeline, tmp_path / "two", 2, sweep(tmp_path / "two")))
    assert rc == 0, log
    for run in ("esd/style_Van_Gogh", "original/style_Van_Gogh", "original/object_Dogs"):
        one, two = images(tmp_path / "one" / run), images(tmp_path / "two" / run)
        assert len(one) == 12 and two == one, run
    assert (tmp_path / "two" / "original" / "object_Dogs").is_symlink()
    rows = [json.loads((tmp_path / d / "suite" / "suite.json").read_text())["rows"] for d in ("one", "two")]
    assert rows[1] == rows[0] and len(rows[0]) == 2
    assert log.count("-> ") == 1   # rank 0 alone scores and prints


def test_concept_prompts_under_two_ranks_are_the_one_process_images(tiny_sd_pipeline: Path, tmp_path: Path):
    prompts = tmp_path / "forget_prompts.json"
    prompts.write_text(json.dumps([{"id": i, "prompt": f"A {w} in Van Gogh style.", "seeds": [1, 2]}
                                   for i, w in enumerate(["cat", "dog", "tower", "fish", "horse"])]))

    def concept(out: Path) -> list[str]:
        return ["evaluate", "generate-concept", "--model", str(tiny_sd_pipeline), "--prompts", str(prompts),
                "--out", str(out), "--size", "32", "--steps", "2", "--batch-size", "3", "--device", "cpu", "-q"]

    assert main(concept(tmp_path / "one")) == 0
    rc, log = finish(torchrun(tiny_sd_pipeline, tmp_path / "two", 2, concept(tmp_path / "two")))
    assert rc == 0, log
    one = images(tmp_path / "one")
    assert len(one) == 10 and images(tmp_path / "two") == one
    assert log.count("images in") == 1


def test_scores_and_suites_under_two_ranks_are_the_one_process_numbers(tiny_sd_pipeline: Path, tmp_path: Path):
    answers = tmp_path / "runs" / "esd" / "style_Van_Gogh"
    assert main(generate_args(tiny_sd_pipeline, answers, 2)) == 0
    (tmp_path / "runs" / "esd" / "object_Dogs").symlink_to(answers, target_is_directory=True)
    reference = tmp_path / "real"   # stands in for real images: {style}/{object}/{k}.jpg
    files = sorted(answers.glob("*.jpg"))
    for k, img in enumerate(files):   # each cell's "real" image: another cell's answer
        style, obj = img.name.split("_seed")[0].rsplit("_", 1)
        (reference / style / obj).mkdir(parents=True, exist_ok=True)
        shutil.copy(files[(k + 5) % len(files)], reference / style / obj / f"{k % 5 + 1}.jpg")
    judge = tiny_judge(tmp_path / "judge", {"style": "uc50", "object": "objects"})

    def score(out: Path) -> list[str]:
        return ["evaluate", "score", "--answers", str(answers), "--forget", "style:Van_Gogh", "--judges", str(judge),
                "--reference", str(reference), "--batch-size", "5", "--workers", "0", "--out", str(out),
                "--device", "cpu", "-q"]

    def suite(out: Path) -> list[str]:
        return ["evaluate", "suite", str(tmp_path / "runs"), "--judges", str(judge), "--batch-size", "5",
                "--workers", "0", "--out", str(out), "--device", "cpu", "-q"]

    for argv in (score, suite):
        assert main(argv(tmp_path / f"{argv.__name__}-one")) == 0
        rc, log = finish(torchrun(tiny_sd_pipeline, answers, 2, argv(tmp_path / f"{argv.__name__}-two")))
        assert rc == 0, log
        name = "report.json" if argv is score else "suite.json"
        one, two = (json.loads((tmp_path / f"{argv.__name__}-{n}" / name).read_text()) for n in ("one", "two"))
        one.pop("paths", None), two.pop("paths", None)
        assert two == one
        assert log.count("forget style:Van_Gogh:" if argv is score else "-> ") == 1   # rank 0 alone prints
    report = json.loads((tmp_path / "score-one" / "report.json").read_text())
    assert report["num_images"] == 12 and report["frechet_distance"] > 0   # 3 batches of 5 shared by 2 ranks


def test_both_attacks_under_two_ranks_report_what_one_process_does(tiny_sd_pipeline: Path, tmp_path: Path):
    unlearned = tiny_pipeline(tmp_path / "unlearned", seed=1)
    judge = tiny_judge(tmp_path / "judge", {"style": "uc50", "object": "objects"})
    targets = tmp_path / "targets"
    targets.mkdir()
    rng = np.random.default_rng(0)
    for name in ("Van_Gogh_Cats_seed1.jpg", "Van_Gogh_Dogs_seed1.jpg", "Van_Gogh_Towers_seed1.jpg"):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(targets / name)
    small = ["--objects", "Cats", "Dogs", "Towers", "--seeds", "1", "2", "--size", "32", "--steps", "2",
             "--batch-size", "4", "--judge-batch-size", "4", "--device", "cpu", "--workers", "0", "-q"]

    def prompts(out: Path) -> list[str]:
        return ["attack", "prompts", "--unlearned", str(unlearned), "--forget", "style:Van_Gogh", "--target-images",
                str(targets), "--judges", str(judge), "--tokens", "2", "--attack-steps", "2", "--out", str(out),
                *small]

    def conceal(out: Path) -> list[str]:
        return ["attack", "conceal", "--original", str(tiny_sd_pipeline), "--unlearned", str(unlearned), "--forget",
                "style:Van_Gogh", "--judges", str(judge), "--psi", "0.5", "--probe-seeds", "3", "4", "--out",
                str(out), *small]

    for argv in (prompts, conceal):
        one, two = tmp_path / f"{argv.__name__}-one", tmp_path / f"{argv.__name__}-two"
        assert main(argv(one)) == 0
        rc, log = finish(torchrun(tiny_sd_pipeline, two, 2, argv(two)))
        assert rc == 0, log
        assert log.count("forget style:Van_Gogh:") == 1   # rank 0 alone prints
        reports = [json.loads((d / "report.json").read_text().replace(str(d), "OUT")) for d in (one, two)]
        reports[0].pop("paths", None), reports[1].pop("paths", None)
        assert reports[1] == reports[0], argv.__name__
        assert images(one / "answers" if argv is prompts else one / "psi_0.5") == images(
            two / "answers" if argv is prompts else two / "psi_0.5")
    found = json.loads((tmp_path / "prompts-two" / "prompts.json").read_text())
    assert [f["object"] for f in found] == ["Cats", "Dogs", "Towers"]   # the request's order, though ranks split it


def test_the_mini_world_under_two_ranks(tiny_sd_pipeline: Path, tmp_path: Path):
    """Every stage under 2 ranks: the build's bytes are one process's; the models (DDP) differ in their last
    bits, so the rest is checked for completeness, not bytes."""
    def world(out: Path, ranks: int) -> list[str]:
        return ["world", "run", "--size", "mini", "--out", str(out), "--device", "cpu", "-q", "--ranks", str(ranks)]

    assert main(world(tmp_path / "one", 1)) == 0
    rc, log = finish(canvasdata(world(tmp_path / "two", 2)))   # the command starts its ranks itself
    assert rc == 0, log
    assert log.count("world mini finished") == 1   # rank 0 alone reports
    one, two = (json.loads((tmp_path / w / "data" / "manifest.json").read_text()) for w in ("one", "two"))
    assert [s["sha256"] for s in two["shards"]] == [s["sha256"] for s in one["shards"]]
    state = json.loads((tmp_path / "two" / "world.json").read_text())
    assert state["stages"] and all(e["done"] for e in state["stages"].values())
    assert sorted(state["stages"]["unlearn"]["info"]) == sorted(
        json.loads((tmp_path / "one" / "world.json").read_text())["stages"]["unlearn"]["info"])
    for folder in ("answers/original", "runs/esd/style_Van_Gogh", "runs/esd/object_Flame"):
        assert len(list((tmp_path / "two" / folder).glob("*.jpg"))) == len(
            list((tmp_path / "one" / folder).glob("*.jpg"))) > 0, folder
    assert (tmp_path / "two" / "REPORT.md").is_file() and (tmp_path / "two" / "suite" / "suite.json").is_file()
    # the judge was trained by rank 0 alone (the recipe's judge_alone): the one-process judge's losses and weights
    # (to the last bits of a sum: the thread count under torchrun differs)
    history = [json.loads((tmp_path / w / "judges" / "history.json").read_text())["loss"] for w in ("one", "two")]
    assert history[0] == history[1]
    for name in ("model.safetensors", "heads.safetensors"):
        a, b = (load_file(tmp_path / w / "judges" / name) for w in ("one", "two"))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name
    # the learning curve's probes were dealt to both ranks: every point judged every cell, rank 0's probe folder gone
    curves = [json.loads((tmp_path / w / "model" / "model.json").read_text())["curve"] for w in ("one", "two")]
    assert curves[1] and [(c["step"], c["images"]) for c in curves[1]] == [(c["step"], c["images"]) for c in curves[0]]
    assert not (tmp_path / "two" / "model" / ".canvasdata-model" / "probe").exists()
    # the ESD requests were dealt to both ranks: each unlearned pipeline is whole, its other parts the model's bytes
    model, unlearned = tmp_path / "two" / "model", sorted((tmp_path / "two" / "unlearned").rglob("model_index.json"))
    assert len(unlearned) == len(state["stages"]["unlearn"]["info"]) >= 2
    for index in unlearned:
        for part in ("text_encoder", "tokenizer", "vae", "scheduler"):
            files = sorted(f.name for f in (model / part).iterdir())
            assert files and sorted(f.name for f in (index.parent / part).iterdir()) == files, (index, part)
            assert all((index.parent / part / f).read_bytes() == (model / part / f).read_bytes() for f in files)
