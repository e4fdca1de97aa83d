"""The `canvasdata` command as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import shutil
import textwrap
import warnings
from pathlib import Path

import pytest
from PIL import Image
from test_build import tiny

from canvasdata import cli
from canvasdata.cli import main, make_parser
from canvasdata.dataset.state import BuildError
from canvasdata.devices import DEVICES, DeviceError
from canvasdata.errors import CanvasdataError, MissingExtraError, MissingFileError, UsageError
from canvasdata.fields import RecipeError
from canvasdata.formats.common import FormatError
from canvasdata.hub import HubError
from canvasdata.judges.model import JudgeError
from canvasdata.manifest import ManifestError
from canvasdata.styles.registry import StyleError
from canvasdata.taxonomy import LabelError


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


def _parsers(p: argparse.ArgumentParser, name: str = "canvasdata"):
    """Every (command name, parser) under `p`, `p` included."""
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, parser in action.choices.items():
                yield from _parsers(parser, f"{name} {sub}")


def test_every_argument_has_help_and_help_shows_defaults(capsys):
    commands = dict(_parsers(make_parser()))
    assert {"canvasdata build", "canvasdata evaluate score", "canvasdata evaluate suite", "canvasdata judge eval"} <= set(commands)
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{name} {action.dest}: no help"
            if action.help == argparse.SUPPRESS or not action.option_strings:
                continue
            if action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in formatter._get_help_string(action), f"{name} {action.dest}: default not shown"
        with pytest.raises(SystemExit) as exit_:
            main([*name.split()[1:], "--help"])
        printed = capsys.readouterr().out
        assert exit_.value.code == 0 and "--verbose" in printed and "--quiet" in printed
        if any(a.default not in (None, False, argparse.SUPPRESS) for a in parser._actions if a.option_strings
               and a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)):
            assert "(default: " in printed, name
    build_help = " ".join(commands["canvasdata build"].format_help().split())
    assert "(default: auto)" in build_help and "parallel worker processes; auto: one per core" in build_help


def test_device_means_and_defaults_the_same_everywhere():
    devices = [(name, a) for name, p in _parsers(make_parser()) for a in p._actions if a.dest == "device"]
    assert {name.removeprefix("canvasdata ") for name, _ in devices} == {
        "build", "evaluate score", "evaluate generate", "evaluate suite", "evaluate score-concept",
        "evaluate generate-concept", "judge train", "judge eval", "judge predict", "attack conceal", "attack prompts",
        "model train", "unlearn esd", "unlearn sequence", "evaluate sequence", "evaluate retrained", "evaluate sweep", "world run"}
    for name, action in devices:
        assert action.default == "auto" and DEVICES in action.help, name


def test_a_bug_keeps_its_traceback(cli_built: Path, monkeypatch):
    def broken(root):
        raise KeyError("a library bug")

    monkeypatch.setattr(cli, "info", broken)
    with pytest.raises(KeyError, match="a library bug"):
        main(["info", str(cli_built)])
    monkeypatch.setattr(cli, "verify", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["verify", str(cli_built)])


def test_a_project_error_is_one_line_and_exit_2(tmp_path: Path, capsys):
    assert main(["info", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no manifest.json" in err
    assert main(["evaluate", "score", "--answers", str(tmp_path), "--forget", "object:Cats", "--judges",
                 str(tmp_path / "no-judge")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no-judge" in err
    assert main(["build", "--device", "tpu", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: --device 'tpu': allowed")


def test_ctrl_c_is_one_line_and_exit_130(cli_built: Path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "verify", interrupted)
    assert main(["verify", str(cli_built)]) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted") and err.count("\n") == 1


def test_verbose_and_quiet_set_the_log_level_before_or_after_the_command(cli_built: Path, capsys):
    log = logging.getLogger("canvasdata")
    assert main(["--quiet", "info", str(cli_built)]) == 0 and log.level == logging.WARNING
    assert main(["info", str(cli_built), "-v"]) == 0 and log.level == logging.DEBUG
    assert main(["info", str(cli_built)]) == 0 and log.level == logging.INFO
    with pytest.raises(SystemExit):
        main(["info", str(cli_built), "-v", "-q"])
    capsys.readouterr()


def test_info_prints_the_command_that_regenerates_the_directory_given(cli_built: Path, tmp_path: Path, capsys):
    copy = tmp_path / "moved copy"
    shutil.copytree(cli_built, copy)
    assert main(["info", str(copy)]) == 0
    recipe, out = shlex.quote(str(copy / "recipe.toml")), shlex.quote(str(copy))
    command = f"canvasdata build {recipe} --out {out} --format parquet --device cpu"
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"  regenerate: {command}"
    again = tmp_path / "again"
    args = shlex.split(command)[1:]  # build RECIPE --out DIR --format FORMAT --device TYPE, into another folder
    assert args[2:4] == ["--out", str(copy)]
    assert main([*args[:2], "--out", str(again), *args[4:], "--quiet"]) == 0
    for shard in (copy / "data").iterdir():
        assert (again / "data" / shard.name).read_bytes() == shard.read_bytes()


# webdataset leaves its tar file objects to the garbage collector (a ResourceWarning, hidden by Python's
# default filters): that is the library's, not the snippet's
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_docs_webdataset_snippet_runs_without_warnings(recipe_file: Path, tmp_path: Path, monkeypatch):
    """The `webdataset` snippet of docs/formats.md runs on a WebDataset build without a warning."""
    pytest.importorskip("webdataset")
    formats = (Path(__file__).parents[1] / "docs" / "formats.md").read_text()
    section = formats[formats.index("- **WebDataset**"):]
    code = textwrap.dedent(section[section.index("```python") + len("```python"):section.index("```\n", 10)])
    assert main(["build", str(recipe_file), "--out", str(tmp_path / "mini"), "--format", "webdataset", "-q"]) == 0
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scope: dict = {}
        exec(compile(code, "docs/formats.md", "exec"), scope)
    assert scope["labels"]["split"] == "train" and scope["image"].size == (64, 64)


def test_project_errors_share_one_base_and_keep_their_standard_bases():
    bases = {RecipeError: ValueError, BuildError: RuntimeError, JudgeError: ValueError, ManifestError: RuntimeError,
             FormatError: RuntimeError, HubError: ValueError, DeviceError: ValueError, LabelError: ValueError,
             StyleError: ValueError, UsageError: ValueError, MissingFileError: FileNotFoundError,
             MissingExtraError: ModuleNotFoundError}
    for error, base in bases.items():
        assert issubclass(error, CanvasdataError) and issubclass(error, base), error


def test_readme_world_journey_commands_parse():
    """Every `canvasdata` command of the README's world journey is one the command line accepts."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("### 4. A world small enough"):readme.index("## Command line")]
    lines = section.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line.split("&& ")[-1].split("#")[0]) for line in lines if "canvasdata " in line
                and line.lstrip().startswith(("canvasdata ", "python3 "))]
    assert len(commands) == 6
    for argv in commands:
        assert argv[0] == "canvasdata", argv
        make_parser().parse_args(argv[1:])


def test_every_command_in_the_docs_parses():
    """Each `canvasdata ...` line (and `torchrun ... -m canvasdata.cli ...` line) of a shell code block in
    README.md and docs/*.md is one the command line accepts."""
    parser = make_parser()
    root = Path(__file__).parents[1]
    checked: dict[str, int] = {}
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        fences = re.findall(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", doc.read_text(), re.S | re.M)
        for block in (body for lang, body in fences if lang in ("", "bash", "sh")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("#")[0].strip()
                if line.startswith("torchrun ") and " -m canvasdata.cli " in line:
                    line = "canvasdata " + line.split(" -m canvasdata.cli ", 1)[1]
                if line.startswith("canvasdata "):
                    parser.parse_args(shlex.split(line)[1:])
                    checked[doc.name] = checked.get(doc.name, 0) + 1
    # the reference pages moved out of the README keep their commands checked here
    for page in ("README.md", "judges.md", "evaluation.md", "attacks.md", "concept-sets.md"):
        assert checked.get(page, 0) >= 2, (page, checked)
    assert sum(checked.values()) >= 40, checked


@pytest.mark.parametrize("argv, says", [
    (["evaluate", "generate", "--model", "{missing}", "--out", "{out}"], "no such folder"),
    (["evaluate", "generate", "--model", "{empty}", "--out", "{out}"], "no model_index.json"),
    (["evaluate", "generate", "--model", "{file}", "--out", "{out}"], "a file, not a diffusers pipeline folder"),
    (["evaluate", "generate-concept", "--model", "{missing}", "--prompts", "{prompts}", "--out", "{out}"],
     "no such folder"),
    (["evaluate", "generate-concept", "--model", "{empty}", "--prompts", "{file}", "--out", "{out}"],
     "--prompts"),
])
def test_a_bad_pipeline_source_is_one_line_and_creates_nothing(tmp_path: Path, capsys, argv: list[str],
                                                                says: str) -> None:
    """`--model` that is no pipeline (missing, a folder without model_index.json, a file), or a bad prompts
    file: one error line naming it, exit 2, and no --out folder left behind."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("not json")
    (tmp_path / "prompts.json").write_text('[{"id": 1, "prompt": "a cat", "seeds": [1]}]')
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "file": tmp_path / "file.txt",
             "prompts": tmp_path / "prompts.json", "out": tmp_path / "out"}
    code = main([a.format(**paths) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and says in err[0]
    assert not (tmp_path / "out").exists()


def test_preview_writes_a_sheet_atomically_and_refuses_an_unknown_image_name(tmp_path, capsys):
    out = tmp_path / "sheets" / "content.png"
    assert main(["preview", "content", "--out", str(out), "--objects", "Cats", "Dogs", "--seeds", "2", "--size", "32",
                 "-q"]) == 0
    with Image.open(out) as sheet:
        assert sheet.format == "PNG" and sheet.width > 2 * 32 and sheet.height >= 2 * 32
    assert sorted(p.name for p in out.parent.iterdir()) == ["content.png"]   # no temporary file left
    bad = tmp_path / "sheets" / "content.xyz"
    assert main(["preview", "content", "--out", str(bad), "--objects", "Cats", "--seeds", "1", "--size", "32"]) == 2
    assert "content.xyz: not an image file name" in capsys.readouterr().err
    assert sorted(p.name for p in out.parent.iterdir()) == ["content.png"]
