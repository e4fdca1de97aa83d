"""`world run --ranks` (canvasdata.spawn): how many ranks a command starts, and what a user sees when its ranks
fail. The mini world run to the end by `--ranks 2` is in tests/test_ranks.py."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from canvasdata import spawn
from canvasdata.cli import main


def test_auto_starts_two_ranks_on_a_cpu_of_two_cores_and_one_elsewhere(monkeypatch: pytest.MonkeyPatch):
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    monkeypatch.setattr(spawn, "usable_cores", lambda: 2)
    assert (spawn.ranks_for("auto", cpu), spawn.ranks_for("auto", gpu), spawn.ranks_for(3, gpu)) == (2, 1, 3)
    monkeypatch.setattr(spawn, "usable_cores", lambda: 16)
    assert spawn.ranks_for("auto", cpu) == 2 and spawn.ranks_for(1, cpu) == 1
    monkeypatch.setattr(spawn, "usable_cores", lambda: 1)
    assert spawn.ranks_for("auto", cpu) == 1


def clean_env() -> dict[str, str]:
    """This environment without any torchrun rank variables."""
    return {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                                             "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")}


def test_a_refusal_on_every_rank_is_one_line_each_and_the_status_passes_on(tmp_path: Path):
    """`world run --ranks 2` into a folder holding a foreign file: each rank refuses it in one line, the
    launcher adds nothing (no traceback, no failure summary), exit status 2, the file untouched."""
    root = tmp_path / "w"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    done = subprocess.run([sys.executable, "-m", "canvasdata.cli", "world", "run", "--size", "mini", "--out", str(root),
                           "--device", "cpu", "--ranks", "2", "-q"], capture_output=True, text=True, env=clean_env(),
                          timeout=300)
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") and "notes.txt" in line for line in lines), lines
    assert (root / "notes.txt").read_text() == "keep me" and [p.name for p in root.iterdir()] == ["notes.txt"]


def test_ranks_that_disagree_with_torchrun_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Under torchrun (its variables set) `--ranks` must name torchrun's count or be left to `auto`."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["world", "run", "--size", "mini", "--out", str(tmp_path / "w"), "--ranks", "3", "-q"])
    assert code == 2 and "--ranks 3 under torchrun's 2 ranks" in err.getvalue()
    assert not (tmp_path / "w").exists()


def world_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "canvasdata.cli", "world", "run", "--size", "mini", "--out", str(root), "--device",
            "cpu", "--ranks", "2", "-q"]


def test_ctrl_c_stops_every_rank_and_the_same_command_finishes_the_world(tmp_path: Path):
    """Ctrl-C (SIGINT to the command; its ranks run in sessions of their own) once the judges are done: the
    ranks stop with the usual line, no traceback, status 130; the same command then resumes and finishes, the
    stages already done kept."""
    root = tmp_path / "w"
    proc = subprocess.Popen(world_command(root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env(), start_new_session=True)
    deadline, judged = time.monotonic() + 240, None
    while time.monotonic() < deadline and proc.poll() is None and judged is None:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            judged = json.loads((root / "world.json").read_text())["stages"].get("judges")
        time.sleep(0.1)
    assert proc.poll() is None and judged is not None, "the world ended or stalled before its judges were done"
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.count("interrupted: rerun the same command to resume") >= 1, err
    done = subprocess.run(world_command(root), capture_output=True, text=True, env=clean_env(), timeout=300)
    assert done.returncode == 0 and "world mini finished" in done.stdout, done.stderr[-3000:]
    stages = json.loads((root / "world.json").read_text())["stages"]
    assert all(e["done"] for e in stages.values()) and stages["judges"]["seconds"] == judged["seconds"]
