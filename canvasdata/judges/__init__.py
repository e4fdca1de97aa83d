"""Judges: timm classifiers that name the style and/or object of an image, trained, evaluated,
exported in timm's format with their class names, and run batched."""

from canvasdata.judges.backbone import create_backbone
from canvasdata.judges.io import import_unlearncanvas, load_judge, push_judge, save_judge
from canvasdata.judges.model import Judge, JudgeError, JudgeInfo
from canvasdata.judges.recipe import JudgeRecipe, load_judge_recipe, parse_judge_recipe

__all__ = ["Judge", "JudgeError", "JudgeInfo", "JudgeRecipe", "create_backbone", "import_unlearncanvas",
           "load_judge", "load_judge_recipe", "parse_judge_recipe", "push_judge", "save_judge"]
