"""A judge directory's model files: timm's Hub format (config.json + model.safetensors) with canvasdata's
facts in config.json, the extra task heads (heads.safetensors) and the card, written to a staging folder and
sealed by judge.json (`save_judge`); read back checked against the seal, the weights read once
(`load_judge`)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import safetensors
import safetensors.torch
import timm
import torch
from huggingface_hub import snapshot_download

from canvasdata.devices import resolve_device
from canvasdata.formats.common import fsync_file, read_json, sha256_file
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo, parse_info
from canvasdata.locks import check_unlocked

WEIGHTS, HEADS, CONFIG, CARD = "model.safetensors", "heads.safetensors", "config.json", "README.md"
# the seal: judge.json lists the model files (size and sha256); load_judge checks them against it
SEAL, SEAL_FORMAT, SEALED = "judge.json", "canvasdata-judge/1", (CONFIG, WEIGHTS, HEADS)
STAGING = ".tmp-export"                      # where an export is written before its files are swapped in
LOCK = ".lock"                                # held while a judge is trained into the folder (locks.folder_lock)
# pretrained_cfg fields that describe the exported weights' input pipeline and head; timm also copies
# the source checkpoint's tag, Hub id, URL, licence, paper and notes, which say nothing true of a judge
INPUT_CFG = ("input_size", "min_input_size", "fixed_input_size", "interpolation", "crop_pct", "crop_mode", "mean",
             "std", "num_classes", "pool_size", "first_conv", "classifier", "custom_load")
# create_model arguments that the loaders pass themselves (transformers' TimmWrapper passes num_classes
# and pretrained next to model_args), so model_args must not repeat them
LOADER_ARGS = ("num_classes", "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir")


def save_judge(judge: Judge, out: Path | str, card: str | None = None) -> Path:
    """Write the judge so that `timm.create_model("local-dir:OUT", pretrained=True)` and
    `transformers.pipeline("image-classification", model=OUT)` rebuild the backbone with its first
    task's head (class names included), and `load_judge(OUT)` rebuilds every head. The files are written
    to a staging folder with their seal (judge.json), then swapped in, the seal first: an export cut
    short leaves files that fail the seal, never a judge that loads with mixed files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = out / STAGING
    shutil.rmtree(stage, ignore_errors=True)
    try:
        _export(judge, stage)
        if card is not None:
            (stage / CARD).write_text(card, encoding="utf-8")
        names = [n for n in SEALED if (stage / n).exists()]
        seal = {"format": SEAL_FORMAT, "files": {n: {"bytes": (stage / n).stat().st_size,
                                                     "sha256": sha256_file(stage / n)} for n in names}}
        (stage / SEAL).write_text(json.dumps(seal, indent=2) + "\n")
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise JudgeError(f"{out}: disk full while exporting the judge; nothing was replaced. Free some space "
                             "and rerun the same command.") from None
        raise
    for name in (SEAL, *SEALED, CARD):
        if (stage / name).exists():
            fsync_file(stage / name)
            os.replace(stage / name, out / name)
        elif name == HEADS:
            (out / name).unlink(missing_ok=True)
    shutil.rmtree(stage)
    return out


def _export(judge: Judge, folder: Path) -> None:
    """timm's Hub files (weights, truthful config.json) and the extra heads, into `folder`."""
    info = judge.info
    first = info.tasks[0]
    timm.models.save_for_hf(
        judge.backbone, str(folder), safe_serialization=True,
        model_config={"label_names": info.class_names[first], "canvasdata": asdict(info)},
        data_config={"input_size": (3, info.image_size, info.image_size), "mean": tuple(info.mean),
                     "std": tuple(info.std), "interpolation": "bicubic", "crop_pct": 1.0})
    _truthful_config(folder / CONFIG, info)
    if judge.extra:
        safetensors.torch.save_file({k: v.contiguous() for k, v in judge.extra.state_dict().items()},
                                    str(folder / HEADS))


def _truthful_config(path: Path, info: JudgeInfo) -> None:
    """Rewrite timm's config.json so it describes this judge, not the checkpoint its architecture
    was first published with: `pretrained_cfg` keeps the input pipeline and head, and its licence is
    that of the starting weights (`info.data["start_license"]`, else unknown); `model_args` holds the
    architecture's keyword arguments without those the loaders pass themselves, so that both
    `timm.create_model("local-dir:...")` and transformers' TimmWrapper rebuild the same model."""
    cfg = json.loads(path.read_text())
    pcfg = {k: v for k, v in cfg.get("pretrained_cfg", {}).items() if k in INPUT_CFG}
    pcfg["license"] = str(info.data.get("start_license") or "unknown")
    cfg["pretrained_cfg"] = pcfg
    args = {**info.model_kwargs, **cfg.get("model_args", {})}
    args = {k: v for k, v in args.items() if k not in LOADER_ARGS}
    if args:
        cfg["model_args"] = args
    else:
        cfg.pop("model_args", None)
    path.write_text(json.dumps(cfg, indent=2))


def read_info(root: Path) -> JudgeInfo:
    """The judge's facts from root/config.json, every field checked (one-line JudgeError naming it)."""
    cfg_path = root / CONFIG
    cfg = read_json(cfg_path, JudgeError, f"{root}: no config.json; is this a judge directory?")
    if not isinstance(cfg, dict) or "canvasdata" not in cfg:
        raise JudgeError(f"{cfg_path}: a timm model without canvasdata's class names; import it with "
                         "`canvasdata judge import` or train one with `canvasdata judge train`")
    info = parse_info(cfg["canvasdata"], str(cfg_path))
    head = len(info.class_names[info.tasks[0]])
    if cfg.get("num_classes") != head:
        raise JudgeError(f"{cfg_path}: the head has {cfg.get('num_classes')} classes but label space "
                         f"{info.label_space[info.tasks[0]]!r} lists {head}")
    return info


def verify_seal(root: Path) -> None:
    """When `root` holds judge.json, check that each model file it lists is there with its size and
    sha256, and that no model file is there unlisted; a judge without judge.json is not checked."""
    path = root / SEAL
    if not path.exists():
        return
    seal = read_json(path, JudgeError, "")
    files = seal.get("files") if isinstance(seal, dict) else None
    if not isinstance(files, dict) or not {CONFIG, WEIGHTS} <= set(files) or not set(files) <= set(SEALED) or not all(
            isinstance(r, dict) and isinstance(r.get("sha256"), str) for r in files.values()):
        raise JudgeError(f"{path}: malformed; expected {{\"files\": {{NAME: {{\"bytes\": N, \"sha256\": HEX}}}}}} "
                         f"for {', '.join(SEALED)} (config.json and model.safetensors at least)")
    again = "re-export the judge (rerun the `canvasdata judge train` that wrote it) or download it again"
    for name in SEALED:
        file = root / name
        if name not in files:
            if file.exists():
                raise JudgeError(f"{file}: not listed in {SEAL}, so it is not this judge's; remove it or {again}")
            continue
        if not file.is_file():
            raise JudgeError(f"{file}: missing, but {SEAL} lists it; {again}")
        size, want = file.stat().st_size, files[name].get("bytes")
        if size != want:
            raise JudgeError(f"{file}: {size} bytes, but {SEAL} lists {want}: corrupt or truncated, or changed since "
                             f"the judge was written; {again}")
        if sha256_file(file) != files[name]["sha256"]:
            raise JudgeError(f"{file}: its sha256 does not match {SEAL}: corrupt, changed since the judge was "
                             f"written, or its export was cut short; {again}")


def load_judge(path_or_id: str | Path, device: str | torch.device = "cpu") -> Judge:
    """Load a judge directory (or a Hub model id, downloaded with huggingface_hub) onto `device`
    (`auto`: CUDA when available, else the CPU)."""
    root = Path(path_or_id)
    if not root.exists():
        if str(path_or_id).count("/") != 1:
            raise JudgeError(f"{path_or_id}: no such judge directory (nor a Hub id 'user/name')")
        root = Path(snapshot_download(str(path_or_id), repo_type="model"))
    check_unlocked(root / LOCK, f"{root} is being trained")   # a judge half-written by `judge train` is not read
    verify_seal(root)
    info = read_info(root)
    weights = root / WEIGHTS
    if not weights.exists():
        raise JudgeError(f"{weights}: missing")
    try:  # timm reads model.safetensors (the one read of the weights) into the model config.json describes
        backbone = timm.create_model(f"local-dir:{root}", pretrained=True)
    except (safetensors.SafetensorError, OSError) as e:  # a bad header or a short file
        raise JudgeError(f"{weights} is corrupt or truncated ({e}); re-export or re-download it") from None
    except RuntimeError as e:
        raise JudgeError(f"{weights} does not match config.json ({str(e).splitlines()[0]})") from None
    judge = Judge(backbone, info)
    if judge.extra:
        heads = root / HEADS
        try:
            judge.extra.load_state_dict(safetensors.torch.load_file(str(heads)))
        except FileNotFoundError:
            raise JudgeError(f"{heads}: missing (needed for tasks {info.tasks[1:]})") from None
        except RuntimeError as e:
            raise JudgeError(f"{heads} does not match the label spaces ({str(e).splitlines()[0]})") from None
        except Exception as e:
            raise JudgeError(f"{heads} is corrupt or truncated ({e})") from None
    return judge.to(resolve_device(device)).eval()


