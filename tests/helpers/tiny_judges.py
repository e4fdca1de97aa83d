"""A tiny ViT judge saved as a judge directory (random weights: tests of plumbing, not of accuracy)."""

from __future__ import annotations

from pathlib import Path

from canvasdata.judges import Judge, JudgeInfo, create_backbone, save_judge
from canvasdata.taxonomy import label_space

TINY_VIT = {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8}


def tiny_judge(out: Path, spaces: dict[str, str]) -> Path:
    """A judge directory at `out` with one head per task of `spaces` ({task: label space}, the first task's
    head on the backbone), 32 px."""
    names = {task: list(label_space(space).names) for task, space in spaces.items()}
    info = JudgeInfo(model="vit_tiny_patch16_224", tasks=list(spaces), class_names=names, label_space=dict(spaces),
                     image_size=32, model_kwargs=TINY_VIT)
    first = next(iter(spaces))
    return save_judge(Judge(create_backbone("vit_tiny_patch16_224", len(names[first]), 32, TINY_VIT), info), out)
