"""Judges on disk: timm's Hub format (config.json + model.safetensors) plus canvasdata's facts in
config.json, extra task heads in heads.safetensors, and a model card. Import of the original
UnlearnCanvas checkpoints; push to the Hub."""

from __future__ import annotations

import argparse
import errno
import fnmatch
import glob
import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi, snapshot_download

from canvasdata.devices import resolve_device
from canvasdata.formats.common import atomic_path, fsync_file, read_json, sha256_file
from canvasdata.hub import HubError, push_folder
from canvasdata.judges.backbone import create_backbone
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo, parse_info
from canvasdata.locks import check_unlocked
from canvasdata.taxonomy import label_space

WEIGHTS, HEADS, CONFIG, CARD = "model.safetensors", "heads.safetensors", "config.json", "README.md"
# the seal: judge.json lists the model files (size and sha256); load_judge checks them against it
SEAL, SEAL_FORMAT, SEALED = "judge.json", "canvasdata-judge/1", (CONFIG, WEIGHTS, HEADS)
STAGING = ".tmp-export"                      # where an export is written before its files are swapped in
LOCK = ".lock"                                # held while a judge is trained into the folder (locks.folder_lock)
CHECKPOINT = "checkpoint/last.safetensors"   # the training state (weights, optimizer, RNG, data position)
LEGACY_CHECKPOINT = ("checkpoint/judge.safetensors", "checkpoint/state.pt", "checkpoint/history.json")
# every file that canvasdata's judge writers (export, training, evaluation) write into a judge directory;
# `judge train --overwrite` removes these and nothing else
JUDGE_WRITTEN = (*SEALED, CARD, SEAL, "history.json", CHECKPOINT, *LEGACY_CHECKPOINT, "eval/eval.json",
                 "eval/confusion_*.png", "eval/cross_*.png")
TEMP = re.compile(r"\.(.+)\.\d+\.tmp")   # write_atomically's temporary files: .NAME.PID.tmp
# pretrained_cfg fields that describe the exported weights' input pipeline and head; timm also copies
# the source checkpoint's tag, Hub id, URL, licence, paper and notes, which say nothing true of a judge
INPUT_CFG = ("input_size", "min_input_size", "fixed_input_size", "interpolation", "crop_pct", "crop_mode", "mean",
             "std", "num_classes", "pool_size", "first_conv", "classifier", "custom_load")
# create_model arguments that the loaders pass themselves (transformers' TimmWrapper passes num_classes
# and pretrained next to model_args), so model_args must not repeat them
LOADER_ARGS = ("num_classes", "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path", "cache_dir")
FIGURE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)|<img\s[^>]*?src=[\"']([^\"']+)[\"']", re.IGNORECASE)


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


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` through `formats.common.atomic_path`: a kill leaves the old file or the new one, never
    a mix (and at most a temporary file, which the next training run removes); a full disk is a one-line
    JudgeError naming the file."""
    with atomic_path(path, JudgeError) as tmp:
        write(tmp)


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
    try:
        safetensors.torch.load_file(str(weights))
    except Exception as e:  # safetensors raises its own error type for a bad header or a short file
        raise JudgeError(f"{weights} is corrupt or truncated ({e}); re-export or re-download it") from None
    try:
        backbone = timm.create_model(f"local-dir:{root}", pretrained=True)
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


def is_judge_dir(root: Path) -> bool:
    """Whether `root` holds a judge or a judge's training checkpoint (canvasdata's, of any version)."""
    if (root / SEAL).is_file() or any((root / c).is_file() for c in (CHECKPOINT, *LEGACY_CHECKPOINT)):
        return True
    try:
        cfg = json.loads((root / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "canvasdata" in cfg


def sort_files(root: Path) -> tuple[list[str], list[str], list[str]]:
    """The files under `root` (relative POSIX paths, hidden ones included) in three lists: those a judge
    writer writes (JUDGE_WRITTEN), leftovers of interrupted judge writes (the staging folder, temporary
    .NAME.PID.tmp files of those names), and everything else."""
    ours: list[str] = []
    left: list[str] = []
    others: list[str] = []
    for rel in sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir() and p.name != LOCK):
        folder, _, name = rel.rpartition("/")
        temp = TEMP.fullmatch(name)
        named = f"{folder}/{temp.group(1)}" if temp and folder else temp.group(1) if temp else rel
        own = any(fnmatch.fnmatchcase(named, p) and named.count("/") == p.count("/") for p in JUDGE_WRITTEN)
        if rel.split("/")[0] == STAGING or (temp and own):
            left.append(rel)
        else:
            (ours if own else others).append(rel)
    return ours, left, others


def remove_files(root: Path, files: list[str]) -> None:
    """Delete `files` (relative to `root`), then the folders they leave empty (not `root` itself)."""
    for rel in files:
        (root / rel).unlink(missing_ok=True)
    for folder in sorted({(root / rel).parent for rel in files}, key=lambda p: len(p.parts), reverse=True):
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


# What the original UnlearnCanvas judge checkpoints may hold next to `model_state_dict`, allow-listed
# for torch's weights_only unpickler (which stays on): numpy scalars (their reconstructor under its
# numpy 1 and numpy 2 names, `np.dtype`, and the concrete dtype classes that a rebuilt dtype is) and
# `argparse.Namespace` (the training arguments).
NUMPY_SCALAR = np.float64(0).__reduce__()[0]
NUMPY_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                      np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128)
ORIGINAL_CHECKPOINT_GLOBALS = [(NUMPY_SCALAR, "numpy.core.multiarray.scalar"),
                               (NUMPY_SCALAR, "numpy._core.multiarray.scalar"), np.dtype,
                               *dict.fromkeys(type(np.dtype(t)) for t in NUMPY_SCALAR_TYPES), argparse.Namespace]


def _load_original_checkpoint(ckpt: Path) -> object:
    """torch.load with weights_only=True and the extras of ORIGINAL_CHECKPOINT_GLOBALS allowed; any
    other type in the pickle is refused with its name (looked up before anything is unpickled)."""
    with torch.serialization.safe_globals(ORIGINAL_CHECKPOINT_GLOBALS):
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(ckpt)
        except ValueError:  # not a zip checkpoint: torch.load below names what it refuses
            unsafe = []
        except Exception as e:  # a truncated or foreign file raises one of several unrelated types
            raise JudgeError(f"{ckpt}: not a loadable checkpoint ({e})") from None
        if unsafe:
            raise JudgeError(f"{ckpt}: holds {', '.join(sorted(unsafe))}, which canvasdata does not load: next to "
                             "the weights only tensors, plain Python values, numpy scalars and argparse.Namespace "
                             "are accepted (the checkpoint is read with weights_only=True)")
        try:
            return torch.load(ckpt, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise JudgeError(f"{ckpt}: refused by weights_only loading ({str(e).splitlines()[0]})") from None
        except Exception as e:
            raise JudgeError(f"{ckpt}: not a loadable checkpoint ({e})") from None


def import_unlearncanvas(ckpt: Path | str, space: str, out: Path | str, arch: str = "vit_large_patch16_224",
                         image_size: int = 224, model_kwargs: dict | None = None) -> Path:
    """Convert an original UnlearnCanvas judge (`style50.pth`, `style50_cls.pth`, `style60.pth`: a
    pickled dict with the weights under `model_state_dict`, possibly beside numpy scalars and an
    argparse.Namespace) into a canvasdata judge directory. `space` is uc50 or uc60 (style judges) or
    objects (the object judge)."""
    ckpt = Path(ckpt)
    blob = _load_original_checkpoint(ckpt)
    sd = blob.get("model_state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(sd, dict) or "head.weight" not in sd:
        raise JudgeError(f"{ckpt}: expected a dict with the weights under 'model_state_dict' and a 'head.weight'")
    labels = label_space(space)
    n = sd["head.weight"].shape[0]
    if n != len(labels):
        raise JudgeError(f"{ckpt}: the head has {n} classes but label space {space!r} has {len(labels)}")
    task = "object" if space == "objects" else "style"
    backbone = create_backbone(arch, n, image_size, model_kwargs)
    try:
        backbone.load_state_dict(sd)
    except RuntimeError as e:
        raise JudgeError(f"{ckpt}: weights do not fit {arch} ({str(e).splitlines()[0]})") from None
    info = JudgeInfo(model=arch, tasks=[task], class_names={task: list(labels.names)}, label_space={task: space},
                     image_size=image_size, model_kwargs=dict(model_kwargs or {}),
                     data={"imported_from": ckpt.name, "origin": "OPTML-Group/UnlearnCanvas"})
    return save_judge(Judge(backbone, info), out)


def card_figures(root: Path | str) -> list[str]:
    """PNG files that the model card (README.md) shows, as paths relative to `root`; a figure that
    the card shows but the directory lacks is an error (it would be a broken image on the Hub)."""
    root = Path(root)
    card = root / CARD
    if not card.is_file():
        return []
    base = root.resolve()
    found = []
    for m in FIGURE.finditer(card.read_text(encoding="utf-8")):
        ref = (m.group(1) or m.group(2)).split("#")[0].split("?")[0]
        if "://" in ref or ref.startswith("data:") or not ref.lower().endswith(".png"):
            continue
        path = (root / ref).resolve()
        if not path.is_relative_to(base):
            raise JudgeError(f"{card} shows {ref}, outside {root}; copy the figure into the judge directory")
        if not path.is_file():
            raise JudgeError(f"{card} shows {ref}, which {root} lacks; add the figure or remove it from the card")
        found.append(path.relative_to(base).as_posix())
    return list(dict.fromkeys(found))


def judge_files(root: Path | str, include_eval: bool = False, include_checkpoint: bool = False) -> list[str]:
    """The files of `root` (relative POSIX paths) that make a model repo: config.json,
    model.safetensors, heads.safetensors, README.md and the figures the card shows; with
    `include_eval` the eval/ reports (JSON, PNG), with `include_checkpoint` the training state
    (checkpoint/, history.json). Hidden files never go up; a judge that fails its seal is refused."""
    root = Path(root)
    verify_seal(root)
    info = read_info(root)
    if not (root / WEIGHTS).is_file():
        raise JudgeError(f"{root / WEIGHTS}: missing")
    if info.tasks[1:] and not (root / HEADS).is_file():
        raise JudgeError(f"{root / HEADS}: missing (needed for tasks {info.tasks[1:]})")
    files = [n for n in (CONFIG, WEIGHTS, HEADS, SEAL, CARD) if (root / n).is_file()] + card_figures(root)
    if include_eval:
        files += _tree(root, "eval", (".json", ".png"))
    if include_checkpoint:
        files += _tree(root, "checkpoint", None) + (["history.json"] if (root / "history.json").is_file() else [])
    return list(dict.fromkeys(files))


def _tree(root: Path, folder: str, suffixes: tuple[str, ...] | None) -> list[str]:
    """Non-hidden files under root/folder (optionally only those with `suffixes`), relative to root."""
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
                  and (suffixes is None or p.suffix.lower() in suffixes))


def push_judge(root: Path | str, repo_id: str, private: bool = False, token: str | None = None, *,
               include_eval: bool = False, include_checkpoint: bool = False, api: HfApi | None = None) -> str:
    """Upload a judge directory as a Hub model repo: only `judge_files(root, ...)` go up. Returns the
    repo URL; a network or Hub failure raises JudgeError with a one-line reason."""
    files = judge_files(root, include_eval, include_checkpoint)
    try:
        return push_folder(root, repo_id, repo_type="model", private=private, token=token, api=api,
                           message="Upload canvasdata judge", allow_patterns=[glob.escape(f) for f in files])
    except HubError as e:
        raise JudgeError(str(e)) from e
