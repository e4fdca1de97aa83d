"""Judges: timm classifiers that name the style and/or object of an image, trained, evaluated,
exported in timm's format with their class names, and run batched."""

from canvasdata.judges.backbone import create_backbone
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo
from canvasdata.judges.push import push_judge
from canvasdata.judges.recipe import JudgeRecipe, load_judge_recipe, parse_judge_recipe
from canvasdata.judges.unlearncanvas import import_unlearncanvas
from canvasdata.judges.weights import load_judge, save_judge

__all__ = ["Judge", "JudgeError", "JudgeInfo", "JudgeRecipe", "create_backbone", "import_unlearncanvas",
           "load_judge", "load_judge_recipe", "parse_judge_recipe", "push_judge", "save_judge"]
