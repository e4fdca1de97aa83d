"""Shared helpers for the benchmark scripts: Markdown tables and one section each in BENCHMARKS.md.

Each script owns one section, delimited by HTML comments, so scripts can be rerun independently
without clobbering each other's figures.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"
HEADER = (
    "# canvasdata benchmarks\n\n"
    "Each section is written by the script named in its heading (`python bench/NAME.py`). "
    "Figures are medians of repeated runs measured in one run of the script; ratios compare rows "
    "of the same run.\n"
)


def machine() -> str:
    """One line describing where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    line = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name(0)}"
    return line


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats get three significant digits."""

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def write_section(name: str, body: str, path: Path = BENCHMARKS, *, keep: bool = False) -> None:
    """Replace (or append) the section owned by bench/{name}.py in BENCHMARKS.md; with `keep` the section's
    earlier content stays below the new run (benches whose rows add up over runs: one setting a run)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = time.strftime("%Y-%m-%d")
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r"(.*?)" + re.escape(end), re.S)
    found = pattern.search(text)
    heading = f"## `bench/{name}.py`\n"
    earlier = found.group(1).strip().removeprefix(heading).strip() if keep and found else ""
    body = body.strip() + (f"\n\nEarlier runs:\n\n{earlier}" if earlier else "")
    block = f"{start}\n{heading}\n_Measured {stamp} on {machine()}._\n\n{body}\n{end}"
    text = pattern.sub(lambda _: block, text) if found else text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _one_thread() -> None:
    torch.set_num_threads(1)


def pool_rate(work: Callable[[Any], int], items: Sequence[Any], processes: int, repeats: int = 3) -> float:
    """Images/s of `work` over `items` run in `processes` spawned processes of one torch thread each,
    the way a build's `--workers` use the cores: total images over wall time, median of `repeats`
    passes after a warm-up pass. `work` returns the number of images it made."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(processes, initializer=_one_thread) as pool:
        pool.map(work, items, chunksize=1)
        rates = []
        for _ in range(repeats):
            t = time.perf_counter()
            n = sum(pool.map(work, items, chunksize=1))
            rates.append(n / (time.perf_counter() - t))
    return sorted(rates)[len(rates) // 2]
