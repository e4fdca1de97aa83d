"""Judges on disk: timm's Hub format (config.json + model.safetensors) plus canvasdata's facts in
config.json, extra task heads in heads.safetensors, and a model card. Import of the original
UnlearnCanvas checkpoints; push to the Hub."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import safetensors.torch
import timm
import torch

from canvasdata.judges.model import Judge, JudgeError, JudgeInfo, create_backbone
from canvasdata.taxonomy import label_space

WEIGHTS, HEADS, CONFIG = "model.safetensors", "heads.safetensors", "config.json"


def save_judge(judge: Judge, out: Path | str, card: str | None = None) -> Path:
    """Write the judge so that `timm.create_model("local-dir:OUT", pretrained=True)` rebuilds the
    backbone with its first task's head, and `load_judge(OUT)` rebuilds every head."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = judge.info
    first = info.tasks[0]
    tmp = out / ".tmp-export"
    tmp.mkdir(exist_ok=True)
    timm.models.save_for_hf(
        judge.backbone, str(tmp), safe_serialization=True,
        model_config={"label_names": info.class_names[first], "canvasdata": asdict(info)},
        data_config={"input_size": (3, info.image_size, info.image_size), "mean": tuple(info.mean),
                     "std": tuple(info.std), "interpolation": "bicubic", "crop_pct": 1.0})
    if judge.extra:
        safetensors.torch.save_file({k: v.contiguous() for k, v in judge.extra.state_dict().items()},
                                    str(tmp / HEADS))
    for name in (WEIGHTS, CONFIG, HEADS):
        if (tmp / name).exists():
            (tmp / name).replace(out / name)
        elif name == HEADS:
            (out / name).unlink(missing_ok=True)
    tmp.rmdir()
    if card is not None:
        (out / "README.md").write_text(card, encoding="utf-8")
    return out


def read_info(root: Path) -> JudgeInfo:
    cfg_path = root / CONFIG
    if not cfg_path.exists():
        raise JudgeError(f"{root}: no config.json; is this a judge directory?")
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise JudgeError(f"{cfg_path}: unreadable ({e})") from None
    if "canvasdata" not in cfg:
        raise JudgeError(f"{cfg_path}: a timm model without canvasdata's class names; import it with "
                         "`canvasdata judge import` or train one with `canvasdata judge train`")
    d = cfg["canvasdata"]
    d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
    info = JudgeInfo(**d)
    head = len(info.class_names[info.tasks[0]])
    if cfg.get("num_classes") != head:
        raise JudgeError(f"{cfg_path}: the head has {cfg.get('num_classes')} classes but label space "
                         f"{info.label_space[info.tasks[0]]!r} lists {head}")
    return info


def load_judge(path_or_id: str | Path, device: str | torch.device = "cpu") -> Judge:
    """Load a judge directory (or a Hub model id, downloaded with huggingface_hub)."""
    root = Path(path_or_id)
    if not root.exists():
        if str(path_or_id).count("/") != 1:
            raise JudgeError(f"{path_or_id}: no such judge directory (nor a Hub id 'user/name')")
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(str(path_or_id), repo_type="model"))
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
    return judge.to(device).eval()


def import_unlearncanvas(ckpt: Path | str, space: str, out: Path | str, arch: str = "vit_large_patch16_224",
                         image_size: int = 224, model_kwargs: dict | None = None) -> Path:
    """Convert an original UnlearnCanvas judge (`style50.pth`, `style50_cls.pth`, `style60.pth`: a
    pickled dict with the weights under `model_state_dict`) into a canvasdata judge directory.
    `space` is uc50 or uc60 (style judges) or objects (the object judge)."""
    ckpt = Path(ckpt)
    try:
        blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        raise JudgeError(f"{ckpt}: not a loadable checkpoint ({e})") from None
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


def push_judge(root: Path | str, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a judge directory as a Hub model repo."""
    from canvasdata.hub import push_folder

    read_info(Path(root))
    return push_folder(root, repo_id, repo_type="model", private=private, token=token,
                       message="Upload canvasdata judge")
