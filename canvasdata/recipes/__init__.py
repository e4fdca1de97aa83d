"""Dataset recipes, a leaf of the package: the value types (`types`: `Recipe` and its sections, the
dataset kinds' recipe shapes, the shard formats), each content backend's options declared once
(`options`), and the loader that validates a TOML file into them (`load`). Nothing here imports the
machinery that builds a recipe, so reading one never imports torch, datasets or diffusers; that
machinery imports the recipe (see docs/architecture.md, "What may import what").
"""

from canvasdata.fields import RecipeError
from canvasdata.recipes.load import load_recipe, parse_recipe
from canvasdata.recipes.types import CardConfig, ConceptSpec, ContentConfig, OutputConfig, Recipe
from canvasdata.shipped import builtin_dir
from canvasdata.tomlfiles import load_toml, resolve_recipe_path

__all__ = ["CardConfig", "ConceptSpec", "ContentConfig", "OutputConfig", "Recipe", "RecipeError", "builtin_dir",
           "load_recipe", "load_toml", "parse_recipe", "resolve_recipe_path"]
