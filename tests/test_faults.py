"""The fault suite: a build directory is a sealed artifact. Each test does to a tiny build what a careless
user, a crash or an attacker would (kill, fill the disk, tamper, add files, build twice at once) and checks
that the answer is one line, that nothing of the user's is deleted and that readers refuse damaged data."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_judges import tiny_judge
from PIL import Image

from canvasdata.cli import main
from canvasdata.data import load_split
from canvasdata.dataset import build, finalize
from canvasdata.dataset.state import build_lock
from canvasdata.formats import FormatError, common
from canvasdata.manifest import DamagedBuildError
from canvasdata.recipes import load_recipe
from canvasdata.verify import verify

RECIPE = """\
name = "tiny"
seed = 7
styles = ["Seed_Images", "Van_Gogh", "Pop_Art"]
objects = ["Cats", "Towers"]
images_per_cell = 3
resolution = 64

[splits]
train = "1-2"
test = "3"

[output]
shard_rows = 5
row_group_rows = 3
batch_size = 2
"""


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".canvasdata" not in p.parts}


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.toml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def sealed(recipe_file: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sealed") / "tiny"
    assert main(["build", str(recipe_file), "--out", str(out), "-q"]) == 0
    return out


@pytest.fixture
def copy(sealed: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(sealed, out)
    return out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# --- the manifest seals every file -------------------------------------------------------------------------

def test_the_manifest_lists_every_file_the_build_wrote(sealed: Path):
    manifest = json.loads((sealed / "manifest.json").read_text())
    listed = {f["path"] for f in manifest["files"]} | {s["path"] for s in manifest["shards"]} | {"manifest.json"}
    assert listed == set(files_of(sealed))
    assert {f["path"] for f in manifest["files"]} == {"README.md", "recipe.toml", "preview.jpg"}
    report = verify(sealed)
    assert report.ok and (report.shards, report.rows, report.files) == (5, 18, 3)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(recipe_hash="0" * 64), "recipe_hash is not that of recipe.toml"),
    (lambda m: m["features"]["style"]["names"].reverse(), "features (class names or columns) differ"),
    (lambda m: m["splits"]["train"].update(rows=99), "split or total rows/bytes differ"),
    (lambda m: m["shards"][0].update(split="test"), "shard list (paths, splits or rows) differs"),
    (lambda m: m["recipe"].update(seed=8), "its recipe is not that of recipe.toml"),
])
def test_verify_catches_an_edited_manifest(copy: Path, edit, problem: str, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(copy)]) == 1
    assert problem in capsys.readouterr().out


def test_verify_catches_an_edited_recipe_and_stray_files_and_push_refuses_them(copy: Path, capsys):
    (copy / "recipe.toml").write_text(RECIPE.replace("seed = 7", "seed = 8"))
    (copy / ".env").write_text("HF_TOKEN=secret")
    (copy / "data" / "credentials.json").write_text("{}")
    (copy / "data" / ".train-00000-of-00003.parquet.4242.tmp").write_bytes(b"partial")
    assert main(["verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "recipe.toml: sha256 does not match" in out and "recipe_hash is not that of recipe.toml" in out
    assert ".env: not written by the build" in out and "data/credentials.json: not written by the build" in out
    assert "a temporary file of an interrupted write" in out
    assert main(["push", str(copy), "user/tiny", "--token", "x"]) == 1
    err = capsys.readouterr().err
    assert "refusing to push: 3 file(s)" in err and ".env" in err


@pytest.mark.parametrize("edit, named", [
    (lambda m: m.update(shards="x"), "ShardEntry"),
    (lambda m: m.update(recipe=[1]), "its recipe lacks the facts readers need"),
    (lambda m: m["recipe"].pop("style_space"), "'style_space'"),
    (lambda m: m.update(num_rows="12"), "num_rows is str '12', not int"),
    (lambda m: m["shards"][0].update(rows=None), "shards[0].rows is NoneType None, not int"),
    (lambda m: m["splits"].update(train={"rows": 1, "bogus": 2}), "bogus"),
    (lambda m: m.update(features={"style": 3}), "malformed manifest"),
])
def test_a_malformed_manifest_is_one_line_for_every_reader(copy: Path, tmp_path: Path, edit, named: str, capsys):
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    for command in (["info", str(copy)], ["verify", str(copy)], ["export", str(copy), "--out", str(tmp_path / "e")]):
        assert main(command) == 2
        err = one_line_error(capsys)
        assert "malformed manifest" in err and named in err, err


# --- nothing of the user's is deleted ----------------------------------------------------------------------

def test_overwrite_refuses_a_folder_that_holds_no_build(recipe_file: Path, tmp_path: Path, capsys):
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "thesis.parquet").write_bytes(b"years of work")
    (mine / "README.md").write_text("my notes")
    before = files_of(mine)
    assert main(["build", str(recipe_file), "--out", str(mine), "--overwrite", "-q"]) == 2
    err = one_line_error(capsys)
    assert "holds no canvasdata build" in err and "README.md, data/thesis.parquet" in err
    assert files_of(mine) == before and not (mine / ".canvasdata").exists()


def test_overwrite_removes_only_the_previous_build_and_refuses_beside_other_files(copy: Path, recipe_file: Path,
                                                                                  tmp_path: Path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(RECIPE.replace("seed = 7", "seed = 8"))
    (copy / "results.csv").write_text("mine")
    assert main(["build", str(other), "--out", str(copy), "-q"]) == 2
    assert "another recipe" in one_line_error(capsys)
    assert main(["build", str(other), "--out", str(copy), "--overwrite", "-q"]) == 2
    assert "1 file(s) no build wrote (results.csv)" in one_line_error(capsys)
    assert verify(copy).problems == [("results.csv", "not written by the build (push refuses to upload it)")]
    (copy / "results.csv").unlink()
    assert main(["build", str(other), "--out", str(copy), "--overwrite", "-q"]) == 0
    assert json.loads((copy / "manifest.json").read_text())["recipe"]["seed"] == 8 and verify(copy).ok


def test_rebuilding_from_the_recipe_inside_the_output_keeps_it(copy: Path, capsys):
    edited = RECIPE.replace('"Pop_Art"]', '"Monet"]')
    (copy / "recipe.toml").write_text(edited)
    assert main(["build", str(copy / "recipe.toml"), "--out", str(copy), "--overwrite", "-q"]) == 0
    assert (copy / "recipe.toml").read_text() == edited
    assert json.loads((copy / "manifest.json").read_text())["recipe"]["styles"][-1] == "Monet"
    assert verify(copy).ok


def test_temporary_files_are_cleaned_on_the_next_run(copy: Path, recipe_file: Path):
    (copy / "recipe.toml.tmp").write_text("left by a kill")
    (copy / ".manifest.json.4242.tmp").write_text("{")
    (copy / "data" / ".test-00000-of-00001.parquet.4243.tmp").write_bytes(b"partial")
    build(load_recipe(recipe_file), copy, progress=False)
    assert verify(copy).ok and not [p for p in copy.rglob("*.tmp")]


# --- one build at a time ------------------------------------------------------------------------------------

def test_a_second_build_of_the_same_directory_is_refused(recipe_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "busy"
    with build_lock(out):
        assert main(["build", str(recipe_file), "--out", str(out), "-q"]) == 2
        err = one_line_error(capsys)
        assert f"is being built by pid {os.getpid()}" in err and "lock" in err
    assert main(["build", str(recipe_file), "--out", str(out), "-q"]) == 0 and verify(out).ok


def test_a_stale_lock_is_taken_over(recipe_file: Path, tmp_path: Path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "stale"
    (out / ".canvasdata").mkdir(parents=True)
    (out / ".canvasdata" / "lock").write_text(json.dumps({"pid": gone.pid, "host": os.uname().nodename}))
    build(load_recipe(recipe_file), out, progress=False, preview=False)
    assert verify(out).ok and not (out / ".canvasdata" / "lock").exists()


# --- readers check before they use -------------------------------------------------------------------------

def test_readers_refuse_an_unfinished_build(copy: Path, tmp_path: Path, capsys):
    (copy / "manifest.json").unlink()
    with pytest.raises(DamagedBuildError, match="did not finish"):
        load_split(copy, "train", ["style", "object"])
    assert main(["export", str(copy), "--out", str(tmp_path / "e")]) == 2
    assert "did not finish" in one_line_error(capsys)
    partial = load_split(copy, "train", ["style", "object"], allow_partial=True)
    assert len(partial) == 12


def test_judge_eval_refuses_an_unfinished_build(copy: Path, tmp_path: Path, capsys):
    judge = tiny_judge(tmp_path / "judge", {"object": "objects"})
    (copy / "manifest.json").unlink()
    assert main(["judge", "eval", str(judge), "--data", str(copy), "--workers", "0"]) == 2
    assert "did not finish" in one_line_error(capsys) and not (judge / "eval").exists()


def test_evaluate_refuses_an_unfinished_answer_build(copy: Path, tmp_path: Path, capsys):
    judge = tiny_judge(tmp_path / "judge", {"style": "uc60", "object": "objects"})
    args = ["evaluate", "score", "--answers", str(copy), "--forget", "style:Van_Gogh", "--judges", str(judge),
            "--workers", "0", "--out", str(tmp_path / "report"), "-q"]
    assert main(args) == 0
    (copy / "manifest.json").unlink()
    assert main(args) == 2
    assert "did not finish" in one_line_error(capsys)


def test_judge_predict_refuses_a_decompression_bomb_in_one_line(tmp_path: Path, capsys):
    judge = tiny_judge(tmp_path / "judge", {"object": "objects"})
    Image.new("L", (16, 16)).save(tmp_path / "ok.png")
    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")
    assert main(["judge", "predict", str(judge), str(tmp_path / "ok.png"), str(tmp_path / "bomb.png"),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "bomb.png: refused as a possible decompression bomb" in one_line_error(capsys)
    assert not (tmp_path / "p.csv").exists()


def test_readers_refuse_a_shard_that_fails_its_checksum(copy: Path, tmp_path: Path, capsys):
    shard = sorted((copy / "data").glob("train-*"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DamagedBuildError, match=f"shard data/{shard.name}: size"):
        load_split(copy, "train", ["style"])
    assert main(["export", str(copy), "--out", str(tmp_path / "e")]) == 2
    assert shard.name in one_line_error(capsys) and not (tmp_path / "e").exists()
    assert len(load_split(copy, "train", ["style"], allow_partial=True)) == 12 - 5
    assert main(["export", str(copy), "--out", str(tmp_path / "p"), "--allow-partial", "-q"]) == 0
    assert len(list((tmp_path / "p").rglob("*.jpg"))) == 18 - 5


def test_a_webdataset_shard_cut_at_a_member_boundary_is_refused(recipe_file: Path, tmp_path: Path):
    out = tmp_path / "wds"
    assert main(["build", str(recipe_file), "--out", str(out), "--format", "webdataset", "-q"]) == 0
    tar = sorted((out / "data").glob("train-*.tar"))[0]
    with tarfile.open(tar) as t:
        cut = t.getmembers()[-2].offset  # drop the last sample's members, keep a well-formed tar
    tar.write_bytes(tar.read_bytes()[:cut])
    with pytest.raises(DamagedBuildError, match=tar.name):
        load_split(out, "train", ["object"])
    assert not verify(out).ok


def test_changed_photos_invalidate_the_shards_built_from_them(tmp_path: Path):
    rng = np.random.default_rng(0)
    for obj in ("Cats", "Dogs"):
        (tmp_path / "photos" / obj).mkdir(parents=True)
        for k in range(2):
            pixels = (rng.random((80, 80, 3)) * 255).astype("uint8")
            Image.fromarray(pixels).save(tmp_path / "photos" / obj / f"{k}.png")
    (tmp_path / "photos.toml").write_text(
        'name = "photos"\nseed = 1\nstyles = ["Seed_Images"]\nobjects = ["Cats", "Dogs"]\nimages_per_cell = 2\n'
        'resolution = 32\n[splits]\ntrain = "1"\ntest = "2"\n[content]\nsource = "photos"\npath = "photos"\n')
    recipe = load_recipe(tmp_path / "photos.toml")
    out = tmp_path / "built"
    build(recipe, out, progress=False, preview=False)
    before = files_of(out)
    Image.fromarray(np.zeros((80, 80, 3), "uint8")).save(tmp_path / "photos" / "Cats" / "0.png")
    assert any("inputs (photos) changed" in msg for _, msg in verify(out).problems)
    build(recipe, out, progress=False, preview=False)
    assert files_of(out)["data/train-00000-of-00001.parquet"] != before["data/train-00000-of-00001.parquet"]
    assert verify(out).ok


# --- crashes and full disks --------------------------------------------------------------------------------

def test_a_full_disk_while_finalising_names_the_file_and_the_rerun_completes(copy: Path, recipe_file: Path,
                                                                             monkeypatch):
    (copy / "manifest.json").unlink()  # the shards are built; finalising is what is left

    @contextlib.contextmanager
    def full(path: Path):
        with common.atomic_writer(path) as f:  # the real writer, which meets a full disk half way
            f.write(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        yield f

    monkeypatch.setattr(finalize, "atomic_writer", full)
    with pytest.raises(FormatError, match=r"recipe.toml: disk full while writing; the partial file was removed"):
        build(load_recipe(recipe_file), copy, progress=False, preview=False)
    assert not (copy / "manifest.json").exists() and not list(copy.rglob("*.tmp"))
    with pytest.raises(DamagedBuildError, match="did not finish"):
        load_split(copy, "train", ["style"])
    monkeypatch.undo()
    build(load_recipe(recipe_file), copy, progress=False, preview=False)
    assert verify(copy).ok


def _default_ctrl_c() -> None:
    """In the child before exec: Ctrl-C at its default, as in a terminal. An ignored SIGINT is inherited across
    exec (and Python then leaves it ignored), so a test process that ignores it would make the build ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _build_process(recipe: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "canvasdata.cli", "build", str(recipe), "--out", str(out), "-q",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_ctrl_c)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def slow_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "slow.toml"
    path.write_text(RECIPE.replace("images_per_cell = 3", "images_per_cell = 40").replace('test = "3"', 'test = "3-40"')
                    .replace("resolution = 64", "resolution = 128"))
    return path


def test_killing_the_parent_kills_the_workers_and_the_rerun_resumes(slow_recipe: Path, tmp_path: Path):
    out = tmp_path / "killed"
    proc = _build_process(slow_recipe, out, "--workers", "2")
    _wait_for(lambda: len(list((out / ".canvasdata" / "shards").glob("*.json"))) >= 2
              if (out / ".canvasdata" / "shards").is_dir() else False)
    workers = _children(proc.pid)
    assert workers, "the build runs in worker processes"
    proc.kill()
    proc.wait()
    _wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), timeout=10)
    assert main(["build", str(slow_recipe), "--out", str(out), "-q"]) == 0 and verify(out).ok


def test_ctrl_c_exits_130_with_one_line(slow_recipe: Path, tmp_path: Path):
    out = tmp_path / "interrupted"
    proc = _build_process(slow_recipe, out, "--workers", "2")
    _wait_for(lambda: (out / ".canvasdata" / "shards").is_dir())
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.count("\n") == 1 and err.startswith("interrupted"), err
    _wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), timeout=10)
    assert not (out / ".canvasdata" / "lock").exists()


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_ctrl_c_while_the_command_line_loads_is_one_line_too(delay: float):
    proc = subprocess.Popen([sys.executable, "-c", "from canvasdata.launch import run; run()", "list", "objects"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # this machine loaded it before the signal came: the command simply ran
        assert "Cats" in out
        return
    assert proc.returncode == 130 and err == "interrupted while loading; nothing was done\n", err
