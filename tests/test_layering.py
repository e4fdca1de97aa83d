"""The package's layering (issue 22): recipe types are a leaf (reading any recipe imports no torch), no import
hides under TYPE_CHECKING or inside a function, and a build makes its backends once per process (a diffusers
pipeline loads once per worker, not once per shard)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

import canvasdata
from canvasdata.dataset import build, plan_shards, runner
from canvasdata.recipes import parse_recipe
from canvasdata.sources import diffusers as diffusers_backend

PACKAGE = Path(canvasdata.__file__).parent
HEAVY = ("torch", "diffusers", "datasets", "transformers", "pyarrow")
# Imports inside a function in modules this change did not own (issue 22 leaves them to their owners).
KNOWN_HIDDEN: dict[str, list[str]] = {}


def test_reading_every_recipe_imports_no_machinery():
    """`canvasdata.recipes` (types, options, loader) and every shipped recipe, plus recipes naming each backend
    with its options, load in a fresh interpreter without torch, datasets or diffusers."""
    code = textwrap.dedent(f"""
        import json, sys
        from canvasdata.recipes import load_recipe, parse_recipe
        from canvasdata.shipped import builtin_dir
        recipes = [load_recipe(p) for p in sorted(builtin_dir("builders").glob("*.toml"))]
        base = {{"name": "b", "seed": 1, "objects": ["Cats"], "styles": ["Seed_Images"], "images_per_cell": 1,
                 "resolution": 32}}
        for content in ({{"source": "photos", "path": "p", "min_size": 8}},
                        {{"source": "diffusers", "model": "m", "dtype": "float16", "painter": "diffusers-img2img"}}):
            r = parse_recipe({{**base, "content": content}}, "b.toml")
            recipes.append(r)
            r.content.source_options(r.source), r.content.painter_options(r.source)
        print(json.dumps([len(recipes), [m for m in sys.modules if m.split(".")[0] in {HEAVY!r}]]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, heavy = json.loads(out.stdout)
    assert count == len(list(canvasdata.recipes.builtin_dir("builders").glob("*.toml"))) + 2
    assert heavy == []


VALUE_LEAVES = ("canvasdata.errors", "canvasdata.taxonomy", "canvasdata.fields", "canvasdata.shipped",
                "canvasdata.seeds", "canvasdata.tomlfiles", "canvasdata.recipes", "canvasdata.models.recipe",
                "canvasdata.world.recipe")  # docs/architecture.md, "What may import what", rule 2


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_leaf(module: str) -> bool:
    return any(module == leaf or module.startswith(f"{leaf}.") for leaf in VALUE_LEAVES)


def test_value_leaves_import_only_value_leaves():
    """The recipe types and the other value leaves import nothing of the machinery (at any depth)."""
    upward = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if not _is_leaf(_module(path)):
            continue
        nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
        imported = [n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in nodes if isinstance(n, ast.Import) for a in n.names]
        imported = [m for m in imported if m.split(".")[0] == "canvasdata"]
        if bad := [m for m in imported if not _is_leaf(m)]:
            upward[_module(path)] = bad
    assert upward == {}


def _hidden_imports(path: Path) -> list[str]:
    """canvasdata modules that `path` imports under `if TYPE_CHECKING:` or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden: list[str] = []
    for node in ast.walk(tree):
        typing_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        body = node.body if typing_only or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else []
        for stmt in (s for top in body for s in ast.walk(top)):
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith("canvasdata"):
                hidden.append(stmt.module or "")
            elif isinstance(stmt, ast.Import):
                hidden += [a.name for a in stmt.names if a.name.startswith("canvasdata")]
    return hidden


def test_no_import_of_the_package_hides():
    found = {str(p.relative_to(PACKAGE)): h for p in sorted(PACKAGE.rglob("*.py")) if (h := _hidden_imports(p))}
    assert found == KNOWN_HIDDEN


# --- backends made once per process ---------------------------------------------------------------------------

class FakeText2Image:
    """A pipeline that draws a flat colour from each image's generator seed (cheap, deterministic)."""

    def __call__(self, prompts, height, width, num_inference_steps, guidance_scale, generator):
        return SimpleNamespace(images=[Image.new("RGB", (width, height), tuple(g.initial_seed() % 251 + i
                                                                                 for i in range(3)))
                                       for g in generator])

    def set_progress_bar_config(self, **kwargs) -> None:
        pass


class FakeImage2Image(FakeText2Image):
    def __call__(self, prompts, image, strength, num_inference_steps, guidance_scale, generator):
        return SimpleNamespace(images=[Image.fromarray((255 - x.permute(1, 2, 0) * 255).to(torch.uint8).numpy())
                                       for x in image])


@pytest.fixture
def pipeline_loads(monkeypatch) -> list[str]:
    """Every text-to-image pipeline load of this process (its model), served by the fake pipeline."""
    loads: list[str] = []

    def load(model, device="auto", options=None):
        loads.append(str(model))
        return FakeText2Image()

    monkeypatch.setattr(diffusers_backend, "load_text2image", load)
    monkeypatch.setattr(diffusers_backend, "_diffusers", lambda: SimpleNamespace(
        AutoPipelineForImage2Image=SimpleNamespace(from_pipe=lambda pipe: FakeImage2Image())))
    return loads


def diffusers_recipe(**content):
    return parse_recipe({"name": "sd", "seed": 3, "styles": ["Seed_Images", "Van_Gogh"], "objects": ["Cats", "Dogs"],
                         "images_per_cell": 4, "resolution": 32, "splits": {"train": "1-3", "test": "4"},
                         "output": {"shard_rows": 2, "batch_size": 2},
                         "content": {"source": "diffusers", "model": "fake/sd", "steps": 2, **content}}, "sd.toml")


def test_a_many_shard_build_loads_its_pipeline_once(pipeline_loads: list[str], tmp_path: Path):
    """Eight shards, the preview and the card of a build whose source and painter use the same pipeline: one
    load in the process (the painter's image-to-image pipeline shares the loaded components)."""
    recipe = diffusers_recipe(painter="diffusers-img2img")
    m = build(recipe, tmp_path / "out", progress=False)
    assert len(m.shards) == 8 and m.num_rows == 16 and (tmp_path / "out" / "preview.jpg").is_file()
    assert pipeline_loads == ["fake/sd"]
    assert m.backends["model"] == m.backends["painter_model"] == "fake/sd"


def test_a_worker_makes_its_backends_on_its_first_shard_only(pipeline_loads: list[str], tmp_path: Path,
                                                             monkeypatch):
    """What a pool worker runs (`_worker_build`), shard after shard in one process: one load."""
    monkeypatch.setattr(runner, "_worker_backends", None)
    monkeypatch.setattr(runner, "_progress_queue", None)
    recipe = diffusers_recipe()
    shards = plan_shards(recipe)
    rows = [runner._worker_build((recipe, str(tmp_path), s, "cpu")) for s in shards]
    assert len(shards) == 8 and sum(rows) == 16 and pipeline_loads == ["fake/sd"]


SITECUSTOMIZE = """
import os
from types import SimpleNamespace

from PIL import Image

from canvasdata.sources import diffusers


class FakeText2Image:
    def __call__(self, prompts, height, width, num_inference_steps, guidance_scale, generator):
        return SimpleNamespace(images=[Image.new("RGB", (width, height), (g.initial_seed() % 251, 0, 0))
                                       for g in generator])

    def set_progress_bar_config(self, **kwargs):
        pass


def load(model, device="auto", options=None):
    with open(os.environ["CANVASDATA_TEST_LOADS"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    return FakeText2Image()


diffusers.load_text2image = load
"""


@pytest.mark.slow
def test_pool_workers_load_the_pipeline_once_each(tmp_path: Path, monkeypatch):
    """A 2-worker build of eight shards: each spawned worker loads the pipeline once (the fake loader, installed
    in the workers by a sitecustomize, records each load's process)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "loads.txt"
    log.touch()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CANVASDATA_TEST_LOADS", str(log))
    m = build(diffusers_recipe(), tmp_path / "out", workers=2, progress=False, preview=False)
    pids = log.read_text().split()
    assert m.num_rows == 16 and len(m.shards) == 8
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids) and str(os.getpid()) not in pids
