"""Benchmark `canvasdata evaluate generate` over torchrun ranks: answers/s of one process (the machine's
default torch threads, and one thread) against 2 ranks of one thread each (what torchrun starts), on the
`tiny` model recipe's pipeline (AutoencoderKL + CLIP text encoder + UNet of models/tiny.toml, untrained:
the cost of an image does not depend on the weights), 64 px, DDIM. Each configuration generates the same
grid into a fresh folder as a separate command (start-up included, then reported apart from the images' own
time); the 2-rank folder is checked byte-identical to the one-thread folder.

    python bench/ranks.py [--images 96] [--steps 50] [--repeats 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section  # noqa: E402

from canvasdata.models.components import assemble, from_scratch  # noqa: E402
from canvasdata.models.recipe import load_model_recipe  # noqa: E402
from canvasdata.models.vocab import write_tokenizer  # noqa: E402
from canvasdata.taxonomy import OBJECTS, UC60, prompt  # noqa: E402

STYLES = [s for s in UC60 if s != "Seed_Images"][:12]


def make_pipeline(folder: Path) -> Path:
    """The tiny recipe's pipeline, untrained, with a tokenizer over the grid's prompts, saved in `folder`."""
    recipe = load_model_recipe("tiny")
    prompts = [prompt(s, o) for s in STYLES for o in OBJECTS]
    tokenizer = write_tokenizer(prompts, folder / "tokenizer-src", recipe.text.max_length)
    assemble(from_scratch(recipe, tokenizer)).save_pretrained(str(folder / "pipe"))
    return folder / "pipe"


def run(pipe: Path, out: Path, grid: list[str], steps: int, ranks: int, threads: int | None) -> float:
    """Seconds of one `evaluate generate` command (start-up included)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT", "OMP_NUM_THREADS")}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    args = ["-m", "canvasdata.cli", "evaluate", "generate", "--model", str(pipe), "--out", str(out), *grid,
            "--size", "64", "--steps", str(steps), "--device", "cpu", "-q"]
    cmd = [sys.executable, *args] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks), *args]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.jpg")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=96, help="answers a run generates (whole batches of 4)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    objects = OBJECTS[:max(1, args.images // len(STYLES))]
    grid = ["--styles", *STYLES, "--objects", *objects, "--seeds", "188"]
    images = len(STYLES) * len(objects)
    configs = [("1 process, default threads", 1, None), ("1 process, 1 thread", 1, 1), ("2 ranks x 1 thread", 2, 1)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pipe = make_pipeline(tmp / "model")
        startup = {}
        for name, ranks, threads in configs:   # start-up: the same command with one image to make
            startup[name] = statistics.median(
                run(pipe, tmp / f"s{i}{ranks}{threads}", ["--styles", STYLES[0], "--objects", OBJECTS[0], "--seeds",
                                                         "188"], args.steps, ranks, threads)
                for i in range(args.repeats))
        seconds, digests = {}, {}
        for name, ranks, threads in configs:
            times = []
            for i in range(args.repeats):
                out = tmp / f"{name.replace(' ', '_')}-{i}"
                times.append(run(pipe, out, grid, args.steps, ranks, threads))
                digests[name] = digest(out)
            seconds[name] = statistics.median(times)
    rows = []
    rate = {name: (images - 1) / max(seconds[name] - startup[name], 1e-9) for name, _, _ in configs}
    base = rate[configs[0][0]]
    for name, _, _ in configs:
        rows.append([name, images, seconds[name], startup[name], rate[name], rate[name] / base, digests[name]])
    same = digests["2 ranks x 1 thread"] == digests["1 process, 1 thread"]
    headers = ["run", "images", "median s (start-up incl.)", "start-up s (1 image)", "answers/s", "x default",
               "folder sha256"]
    body = "\n".join([
        f"`evaluate generate` of {images} answers ({len(STYLES)} styles x {len(objects)} objects, 64 px, DDIM "
        f"{args.steps} steps, guidance 9, batches of 4) with the `tiny` model recipe's pipeline (untrained), "
        f"medians of {args.repeats} runs; answers/s count the images' own time (the command's minus its "
        f"start-up, timed as the same command making one image).", "",
        table(headers, rows), "",
        f"- 2 ranks / 1 process at default threads: {rows[2][4] / rows[0][4]:.2f}x answers/s; "
        f"/ 1 process at 1 thread: {rows[2][4] / rows[1][4]:.2f}x.",
        f"- 2-rank folder byte-identical to the 1-thread one-process folder: {'yes' if same else 'NO'}.",
    ])
    print(body)
    write_section("ranks", body)
    print(json.dumps({"same": same}))


if __name__ == "__main__":
    main()
