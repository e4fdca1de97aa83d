from pathlib import Path

import pytest

from canvasdata.formats import features_for
from canvasdata.recipes import CardConfig, ContentConfig, OutputConfig, RecipeError, load_recipe, parse_recipe
from canvasdata.shipped import builtin_dir
from canvasdata.taxonomy import PROMPT_TEMPLATE

BASE = {"name": "t", "seed": 1, "styles": ["Seed_Images", "Van_Gogh"], "objects": ["Cats"],
        "images_per_cell": 4, "resolution": 64, "splits": {"train": "1-3", "test": "4"}}


def recipe(**changes):
    return parse_recipe({**BASE, **changes}, "t.toml")


@pytest.mark.parametrize("name", ["mini", "unlearncanvas", "unlearncanvas50", "judge-train"])
def test_shipped_recipes_load(name):
    r = load_recipe(name)
    assert r.name == name and r.num_images > 0


def test_a_directory_named_like_a_shipped_recipe_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mini").mkdir()  # what `canvasdata build --out mini` leaves in the working directory
    assert load_recipe("mini").name == "mini"
    (tmp_path / "mini" / "recipe.toml").write_text((builtin_dir() / "judge-train.toml").read_text())
    assert load_recipe("mini").name == "mini", "the shipped name wins"
    (tmp_path / "build").mkdir()
    with pytest.raises(RecipeError, match="build: a directory without a recipe.toml"):
        load_recipe("build")
    (tmp_path / "build" / "recipe.toml").write_text((builtin_dir() / "mini.toml").read_text())
    assert load_recipe("build").source.endswith("build/recipe.toml")


def test_shipped_recipes_have_the_reference_shape():
    uc = load_recipe("unlearncanvas")
    assert (len(uc.styles), len(uc.objects), uc.images_per_cell, uc.resolution) == (61, 20, 20, 512)
    assert uc.split_of(18) == "train" and uc.split_of(19) == "test"
    assert len(load_recipe("unlearncanvas50").style_space) == 51
    jt = load_recipe("judge-train")
    assert jt.content.seed != uc.content.seed, "judge-train content must be disjoint from the benchmark"
    assert set(jt.split_names) == {"train", "test"}
    mini = load_recipe("mini")
    assert "Seed_Images" in mini.styles and mini.num_images <= 200 and mini.resolution == 256


def test_malformed_toml_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = = 1\n')
    with pytest.raises(RecipeError, match=r"bad\.toml: malformed TOML.*line"):
        load_recipe(bad)


@pytest.mark.parametrize("change, pattern", [
    ({"images_per_cell": "four"}, r"t\.toml: field 'images_per_cell': expected int"),
    ({"resolution": 8}, r"field 'resolution'.*out of range: allowed 32\.\.4096"),
    ({"styles": ["Van_Gog"]}, r"field 'styles'.*did you mean Van_Gogh"),
    ({"objects": ["Cat"]}, r"field 'objects'.*did you mean Cats"),
    ({"output": {"format": "zip"}}, r"field 'output.format'.*not one of parquet, webdataset"),
    ({"splits": {"train": "1-3", "test": "3-4"}}, r"field 'splits.test'.*index 3 is already in split 'train'"),
    ({"splits": {"train": "1-2"}}, r"indices \[3, 4\] are in no split"),
    ({"splits": {"train": "1-9"}}, r"out of range: allowed 1..4"),
    ({"colour": 1}, r"field 'colour': is not a known field"),
    ({"style_space": "uc70"}, r"did you mean uc60|uc50"),
    ({"prompt_template": "A {object}"}, r"prompt_template"),
])
def test_bad_fields_name_the_field_and_allowed_values(change, pattern):
    with pytest.raises(RecipeError, match=pattern):
        recipe(**change)


def test_missing_required_field():
    data = dict(BASE)
    del data["resolution"]
    with pytest.raises(RecipeError, match="field 'resolution': is required"):
        parse_recipe(data, "t.toml")


def test_class_ids_do_not_depend_on_the_subset():
    small, full = recipe(styles=["Van_Gogh"]), recipe(styles="all")
    f_small = features_for(small.style_space.names, small.object_space.names)
    f_full = features_for(full.style_space.names, full.object_space.names)
    assert f_small["style"].str2int("Van_Gogh") == f_full["style"].str2int("Van_Gogh") == 55


def test_hash_is_stable_and_covers_content():
    assert recipe().hash() == recipe().hash()
    assert recipe().hash() != recipe(seed=2).hash()
    assert recipe().hash() != recipe(resolution=128).hash()


def test_custom_label_space():
    r = recipe(label_spaces={"mine": ["Seed_Images", "Van_Gogh", "Glitter"]}, style_space="mine",
               styles=["Glitter"])
    assert r.style_space.names == ("Seed_Images", "Van_Gogh", "Glitter")


@pytest.mark.parametrize("change, pattern", [
    ({"kind": "cube"}, r"field 'kind'.*not one of grid, concepts"),
    ({"content": {"source": "paint"}}, r"field 'content.source'.*not one of procedural, photos, diffusers"),
    ({"output": {"formt": "tar"}}, r"field 'output.formt': is not a known field.*did you mean format"),
])
def test_names_come_from_the_registries(change, pattern):
    with pytest.raises(RecipeError, match=pattern):
        recipe(**change)


def test_defaults_are_declared_once():
    r = recipe()
    assert (r.output, r.content.source, r.card, r.prompt_template) == (
        OutputConfig(), ContentConfig().source, CardConfig(), PROMPT_TEMPLATE)
    assert r.kind == "grid" and r.to_dict()["output"]["format"] == "parquet"
