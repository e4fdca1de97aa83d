"""The `canvasdata` command as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_build import tiny

from canvasdata.cli import main


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipes") / "tiny.toml"
    path.write_text(
        'name = "tiny"\nseed = 7\nstyles = ["Seed_Images", "Van_Gogh", "Pop_Art"]\nobjects = ["Cats", "Towers"]\n'
        'images_per_cell = 3\nresolution = 64\n[splits]\ntrain = "1-2"\ntest = "3"\n'
        '[output]\nshard_rows = 5\nrow_group_rows = 3\nbatch_size = 2\n')
    return path


@pytest.fixture(scope="module")
def cli_built(recipe_file: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "tiny"
    assert main(["build", str(recipe_file), "--out", str(out), "--quiet"]) == 0
    return out


def test_build_writes_a_verifiable_dataset_with_its_recipe(cli_built: Path, recipe_file: Path, capsys):
    assert (cli_built / "recipe.toml").read_text() == recipe_file.read_text()
    manifest = json.loads((cli_built / "manifest.json").read_text())
    assert manifest["recipe_hash"] == tiny().hash()
    assert main(["verify", str(cli_built)]) == 0
    assert "OK: 5 shards, 18 rows" in capsys.readouterr().out
    assert main(["info", str(cli_built)]) == 0
    out = capsys.readouterr().out
    assert "18 images" in out and "split test: 6 rows" in out


def test_verify_fails_on_a_damaged_copy_naming_the_shard(cli_built: Path, tmp_path: Path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(cli_built, copy)
    shard = sorted((copy / "data").iterdir())[-1]
    shard.write_bytes(shard.read_bytes()[:-10])
    assert main(["verify", str(copy)]) == 1
    assert f"data/{shard.name}: size" in capsys.readouterr().out


def test_rebuild_from_the_shipped_recipe_copy_is_identical(cli_built: Path, tmp_path: Path):
    again = tmp_path / "again"
    assert main(["build", str(cli_built / "recipe.toml"), "--out", str(again), "--quiet"]) == 0
    for shard in (cli_built / "data").iterdir():
        assert (again / "data" / shard.name).read_bytes() == shard.read_bytes()


def test_bad_recipe_is_a_clear_error(tmp_path: Path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = 1\nimages_per_cell = 2\nresolution = 64\nstyles = ["Monnet"]\n')
    assert main(["build", str(bad), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "field 'styles'" in err and "Monet" in err
    assert main(["build", "no-such-recipe", "--out", str(tmp_path / "o")]) == 2
    assert "shipped builders recipes" in capsys.readouterr().err


def test_list_and_export(cli_built: Path, tmp_path: Path, capsys):
    assert main(["list", "styles", "--space", "uc50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 51 and lines[38].split() == ["38", "Seed_Images"]
    assert main(["list", "objects"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 20
    assert main(["list", "recipes"]) == 0
    assert "mini" in capsys.readouterr().out
    assert main(["export", str(cli_built), "--out", str(tmp_path / "uc"), "--quiet"]) == 0
    assert len(list((tmp_path / "uc").rglob("*.jpg"))) == 18


def test_push_uses_create_repo_and_upload_folder(cli_built: Path, monkeypatch, capsys):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create_repo", repo_id, kw))
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw))

    monkeypatch.setattr("canvasdata.hub.HfApi", FakeApi)
    assert main(["push", str(cli_built), "me/tiny", "--private", "--token", "t0k"]) == 0
    assert calls[0] == ("init", "t0k")
    assert calls[1][1] == "me/tiny" and calls[1][2]["repo_type"] == "dataset" and calls[1][2]["private"] is True
    upload = calls[2][1]
    assert upload["folder_path"] == str(cli_built) and upload["repo_type"] == "dataset"
    assert ".canvasdata/*" in upload["ignore_patterns"]
    assert "me/tiny" in capsys.readouterr().out


def test_format_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["build", "--format", "zip"])
    assert exit_.value.code == 2 and "'parquet', 'webdataset'" in capsys.readouterr().err
