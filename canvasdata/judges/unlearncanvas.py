"""Import of the original UnlearnCanvas judges (`style50.pth`, `style50_cls.pth`, `style60.pth`): the
pickled checkpoint read with torch's weights_only unpickler and an allow-list, its weights checked against
the label space and written as a canvasdata judge directory that records where it came from."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import torch

from canvasdata.judges.backbone import create_backbone
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo
from canvasdata.judges.weights import save_judge
from canvasdata.taxonomy import label_space

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
