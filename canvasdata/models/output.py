"""The model folder `model train` writes: whose it is (the run's identity), what may be resumed or
refused, the sample grids, and the finished folder: the pipeline (`save_pretrained`, staged then moved
in), its card (README.md) and `model.json`, written last, sealing the weight files by sha256."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionPipeline

from canvasdata import __version__
from canvasdata.errors import ModelError, UsageError
from canvasdata.formats.common import atomic_path, read_json, sha256_file, write_json, write_text
from canvasdata.manifest import Manifest
from canvasdata.models.card import model_card
from canvasdata.models.recipe import ModelRecipe
from canvasdata.sheet import contact_sheet

MODEL_JSON = "model.json"
STATE_DIR = ".canvasdata-model"
IDENTITY = "run.json"
SAMPLES = "samples"
PIPELINE_ENTRIES = ("model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler")
RECORD_FORMAT = "canvasdata-model-1"


def identity_of(recipe: ModelRecipe, m: Manifest, data: Path, split: str, exclude: str | None,
                init: str | Path | None) -> dict[str, Any]:
    """What makes two runs the same run: the recipe, the data (build recipe and hash), split, exclusion, init;
    as JSON reads it back (lists, not the recipe's tuples), so it compares equal to a saved one."""
    identity = {"recipe": recipe.to_dict(), "recipe_hash": recipe.hash(), "data": str(data.resolve()),
                "data_recipe": m.recipe_name, "data_hash": m.recipe_hash, "split": split, "exclude": exclude or "",
                "init": str(Path(init).resolve()) if init is not None and Path(init).exists() else (init or "")}
    return json.loads(json.dumps(identity))


OURS = (*PIPELINE_ENTRIES, MODEL_JSON, "README.md", SAMPLES, STATE_DIR)  # the entries model training writes


def plan_out(out: Path, identity: dict[str, Any], overwrite: bool) -> str:
    """'new', 'resume' or 'done' for `out`; a folder holding anything else (or another run's model, without
    `overwrite`) is refused in one line, nothing touched. `overwrite` removes only this command's files."""
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in OURS)
    if foreign:
        raise UsageError(f"--out {out}: holds files that `model train` did not write ({', '.join(foreign[:5])}); "
                         "choose another folder")
    found = _found_identity(out)
    if found is None and any(out.iterdir()) and not (out / STATE_DIR).exists():
        raise UsageError(f"--out {out}: holds a pipeline that `model train` did not write; choose another folder")
    if found is not None and found != identity:
        if not overwrite:
            diff = sorted(k for k in identity if found.get(k) != identity[k])
            raise UsageError(f"--out {out}: holds another training run (differs in {', '.join(diff)}); "
                             "choose another folder or pass --overwrite")
        for name in OURS:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        return "new"
    if (out / MODEL_JSON).exists():
        return "done"
    return "resume" if found is not None else "new"


def _found_identity(out: Path) -> dict[str, Any] | None:
    for path in (out / MODEL_JSON, out / STATE_DIR / IDENTITY):
        if path.exists():
            return read_json(path, ModelError, "").get("identity")
    return None


def write_identity(out: Path, identity: dict[str, Any]) -> None:
    write_json(out / STATE_DIR / IDENTITY, {"identity": identity})


def sample_grid(pipe: StableDiffusionPipeline, prompts: Sequence[str], labels: Sequence[str], path: Path,
                steps: int, guidance: float, seed: int = 0) -> Path:
    """Generate one image a prompt (seeded, batched) and save them as a labelled PNG grid at `path`."""
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    images = pipe(list(prompts), num_inference_steps=steps, guidance_scale=guidance, generator=gens,
                  output_type="pt").images
    sheet = contact_sheet(images.float().cpu().clamp(0, 1), ncol=len(prompts), col_labels=list(labels))
    scale = max(1, 256 // images.shape[-1])
    sheet = sheet.resize((sheet.width * scale, sheet.height * scale))
    with atomic_path(path, ModelError) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def weight_files(out: Path) -> list[Path]:
    """Every file of the pipeline entries, sorted."""
    return sorted(p for name in PIPELINE_ENTRIES for p in ([out / name] if (out / name).is_file()
                                                             else (out / name).rglob("*")) if p.is_file())


def finish_folder(pipe: StableDiffusionPipeline, out: Path, record: dict[str, Any], card: str) -> dict[str, Any]:
    """Save the pipeline (staged in the state folder, then each entry moved in), the card, and
    `model.json` last: the record with every pipeline file's size and sha256."""
    stage = out / STATE_DIR / "final"
    shutil.rmtree(stage, ignore_errors=True)
    pipe.save_pretrained(str(stage), safe_serialization=True)
    for name in PIPELINE_ENTRIES:
        target = out / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        (stage / name).replace(target)
    write_text(out / "README.md", card)
    files = [{"path": str(p.relative_to(out)), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in weight_files(out)]
    record = {"format": RECORD_FORMAT, "canvasdata_version": __version__, **record, "files": files}
    write_json(out / MODEL_JSON, record)
    shutil.rmtree(stage, ignore_errors=True)
    return record


def read_record(out: Path) -> dict[str, Any]:
    """A finished model folder's record (`model.json`)."""
    return read_json(out / MODEL_JSON, ModelError, f"{out}: no {MODEL_JSON}: not a finished `model train` folder")


def check_model(out: Path | str) -> dict[str, Any]:
    """The record of a finished model folder after checking every sealed file's size and sha256: a
    changed or missing weight file is one line naming it."""
    out = Path(out)
    record = read_record(out)
    for f in record.get("files", []):
        p = out / f["path"]
        if not p.is_file() or p.stat().st_size != f["bytes"] or sha256_file(p) != f["sha256"]:
            raise ModelError(f"{out}: {f['path']} is missing or differs from {MODEL_JSON} (damaged model folder)")
    return record


def record_judgement(out: Path, judged: dict[str, Any]) -> dict[str, Any]:
    """Add how well the model generates (judged: `evaluate.fidelity.prompt_fidelity` and the sampling
    settings) to a finished model's record and card; the sealed weight files are untouched."""
    record = {**check_model(out), "judged": judged}
    write_text(out / "README.md", model_card(record))
    write_json(out / MODEL_JSON, record)
    return record
