"""A judge directory is a sealed artifact: training resumes exactly (bit-identical on the CPU, whatever the
interruption or the number of workers), `judge train --out` never replaces what is not its own, the
weights are checked against the seal, and a damaged config.json is a one-line error naming the field."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import safetensors.torch
import torch
from PIL import Image

from canvasdata.checkpoints import save_state
from canvasdata.cli import main
from canvasdata.data import ImageLabels, load_split, train_transform
from canvasdata.dataset import build
from canvasdata.formats.common import sha256_file
from canvasdata.judges import Judge, JudgeError, JudgeInfo, create_backbone, load_judge, parse_judge_recipe, save_judge
from canvasdata.judges.checkpoint import CHECKPOINT, checkpoint_meta
from canvasdata.judges.data import EpochSampler, SeededSamples
from canvasdata.judges.output import run_identity
from canvasdata.judges.push import judge_files
from canvasdata.judges.train import train_judge
from canvasdata.judges.weights import LOCK
from canvasdata.locks import LockError, folder_lock
from canvasdata.recipes import parse_recipe

# drop path and augmentation make every step draw random numbers: resume must restore them exactly
TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "drop_path_rate": 0.1}
RECIPE = {"name": "tiny", "model": "vit_tiny_patch16_224", "task": "both", "image_size": 32, "epochs": 3,
          "batch_size": 4, "lr": 2e-3, "warmup_epochs": 0.5, "ema_decay": 0.5, "crop_scale": 0.5, "workers": 0,
          "model_kwargs": TINY}
STEPS = 9   # 12 training images, batches of 4 (the last partial batch dropped): 3 steps an epoch, 3 epochs


def tiny(**kw):
    return parse_judge_recipe({**RECIPE, **kw}, "tiny.toml")


def build_tiny(out: Path, seed: int, images: int) -> Path:
    recipe = parse_recipe({"name": f"faults{seed}", "seed": seed, "styles": ["Seed_Images", "Pop_Art"],
                           "objects": ["Cats", "Towers"], "images_per_cell": images, "resolution": 48,
                           "splits": {"train": f"1-{images - 1}", "test": str(images)},
                           "content": {"pairing": "unpaired"}, "output": {"shard_rows": 20, "batch_size": 4}},
                          "faults.toml")
    build(recipe, out, progress=False, preview=False)
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("data"), 5, 4)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("other"), 6, 2)


@pytest.fixture(scope="module")
def full(data: Path, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("full") / "judge"
    train_judge(tiny(), data, out, device="cpu", progress=False)
    return out


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(str(path))


def assert_identical(a: Path, b: Path) -> None:
    """Every tensor of the final training state (weights, EMA, optimizer, RNG) and of the export is equal."""
    for name in (CHECKPOINT, "model.safetensors", "heads.safetensors"):
        ta, tb = tensors(a / name), tensors(b / name)
        assert ta.keys() == tb.keys(), name
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{name}: {k} differs"
    ha, hb = (json.loads((p / "history.json").read_text()) for p in (a, b))
    assert ha["loss"] == hb["loss"] and len(ha["loss"]) == STEPS


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_resumed_runs_end_bit_identical_whatever_the_workers(full: Path, data: Path, tmp_path: Path):
    cut = tmp_path / "cut"
    first = train_judge(tiny(), data, cut, device="cpu", progress=False, max_steps=4)
    meta = checkpoint_meta(cut / CHECKPOINT)
    assert (meta["step"], meta["epoch"], meta["position"]) == (4, 1, 1), "stopped part-way through epoch 2"
    assert len(first["loss"]) == 4 and load_judge(cut).tasks == ["style", "object"]
    train_judge(tiny(), data, cut, device="cpu", progress=False, max_steps=7)
    again = train_judge(tiny(workers=2), data, cut, device="cpu", progress=False)
    assert again["resumed_at"] == [4, 7] and [e["epoch"] for e in again["epochs"]] == [1, 2, 3]
    assert_identical(full, cut)
    assert again["seconds"] >= first["seconds"] > 0, "training time adds up over the resumes"


def test_a_kill_while_checkpointing_keeps_the_previous_step(full: Path, data: Path, tmp_path: Path, monkeypatch):
    """The writer dies half-way through the second checkpoint (end of epoch 2): the checkpoint on disk
    is still that of step 3, whole (the same tensors as a run stopped at step 3), and resuming from it
    ends bit-identical to the uninterrupted run."""
    real, calls = safetensors.torch.save_file, []

    def dies_on_the_second_checkpoint(blob, filename, metadata=None):
        if Path(filename).parent.name != "checkpoint":
            return real(blob, filename, metadata)
        calls.append(filename)
        real(blob, filename, metadata)
        if len(calls) == 2:
            Path(filename).write_bytes(Path(filename).read_bytes()[:1000])
            raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dies_on_the_second_checkpoint)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        train_judge(tiny(), data, out, device="cpu", progress=False)
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == ["last.safetensors"], "no temporary file left"
    assert not (out / "model.safetensors").exists()
    reference = tmp_path / "three"
    train_judge(tiny(), data, reference, device="cpu", progress=False, max_steps=3)
    assert checkpoint_meta(out / CHECKPOINT)["step"] == 3
    saved, want = tensors(out / CHECKPOINT), tensors(reference / CHECKPOINT)
    assert saved.keys() == want.keys() and all(torch.equal(saved[k], want[k]) for k in saved)
    assert any(k.startswith("optimizer.") for k in saved) and "rng.torch" in saved
    (out / "checkpoint" / ".last.safetensors.4242.tmp").write_bytes(b"left by a kill -9")
    train_judge(tiny(), data, out, device="cpu", progress=False)
    assert not (out / "checkpoint" / ".last.safetensors.4242.tmp").exists()
    assert_identical(full, out)


def test_an_export_cut_short_fails_the_seal_until_rerun(full: Path, data: Path, tmp_path: Path, monkeypatch):
    """Killed after the export swapped in its seal and config.json, before the weights: the judge does not
    load (one line naming the file), and the same command again re-exports from the final checkpoint."""
    real, swaps = os.replace, []

    def dies_before_the_weights(src, dst):
        if Path(src).parent.name == ".tmp-export":
            swaps.append(Path(dst).name)
            if len(swaps) == 3:
                raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", dies_before_the_weights)
    out = tmp_path / "export"
    with pytest.raises(KeyboardInterrupt):
        train_judge(tiny(), data, out, device="cpu", progress=False)
    monkeypatch.undo()
    assert swaps == ["judge.json", "config.json", "model.safetensors"]
    with pytest.raises(JudgeError, match=r"model\.safetensors: missing, but judge\.json lists it") as e:
        load_judge(out)
    assert "\n" not in str(e.value) and (out / ".tmp-export").is_dir()
    hist = train_judge(tiny(), data, out, device="cpu", progress=False)
    assert hist["resumed_at"] == [STEPS] and len(hist["loss"]) == STEPS, "nothing left to train: only re-exported"
    assert not (out / ".tmp-export").exists()
    load_judge(out)
    assert_identical(full, out)


def test_epoch_order_and_augmentation_ignore_the_global_random_state(data: Path):
    orders = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        sampler = EpochSampler(12, seed=7)
        sampler.set_epoch(3)
        orders.append(list(sampler))
    assert orders[0] == orders[1] and sorted(i for _, i in orders[0]) == list(range(12))
    sampler.set_epoch(3, start=5)
    assert list(sampler) == orders[0][5:] and len(sampler) == 7
    sampler.set_epoch(4)
    assert list(sampler) != orders[0]
    ranks = [list(EpochSampler(11, 7, rank, 2)) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 6 and {i for r in ranks for _, i in r} == set(range(11))
    samples = SeededSamples(ImageLabels(load_split(data, "train", ["style"]), 32, train_transform(32, 0.3, True)), 7)
    torch.manual_seed(1)
    a = samples[(0, 2)][0]
    torch.manual_seed(2)
    state = torch.get_rng_state()
    b, c = samples[(0, 2)][0], samples[(1, 2)][0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.get_rng_state(), state), "augmentation must not consume the trainer's random state"


def cli_train(recipe: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["judge", "train", str(recipe), "--data", str(data), "--out", str(out), "--device", "cpu", "--quiet",
                 *extra])


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    scalars = {k: v for k, v in RECIPE.items() if k != "model_kwargs"}
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in scalars.items())
                    + "[model_kwargs]\n" + "".join(f"{k} = {v}\n" for k, v in TINY.items()))
    return path


def one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_train_refuses_another_runs_judge_and_overwrites_only_its_files(full: Path, data: Path, other_data: Path,
                                                                        recipe_file: Path, tmp_path: Path, capsys):
    judge = tmp_path / "judge"
    shutil.copytree(full, judge)
    (judge / "eval").mkdir()
    (judge / "eval" / "eval.json").write_text("{}")
    before = digests(judge)
    assert cli_train(recipe_file, other_data, judge) == 2
    one_line_error(capsys, "holds a judge trained on other data", "faults5", "faults6", "--overwrite")
    assert cli_train(recipe_file, data, judge, "--lr", "0.01") == 2
    one_line_error(capsys, "holds the checkpoint of another training recipe")
    (judge / "notes.txt").write_text("mine")
    assert cli_train(recipe_file, other_data, judge, "--overwrite") == 2
    one_line_error(capsys, "also holds notes.txt")
    assert digests(judge) == {**before, "notes.txt": digests(judge)["notes.txt"]}, "nothing changed"
    (judge / "notes.txt").unlink()
    assert cli_train(recipe_file, other_data, judge, "--overwrite") == 0
    assert "trained tiny" in capsys.readouterr().out
    cfg = json.loads((judge / "config.json").read_text())["canvasdata"]
    assert cfg["data"]["recipe"] == "faults6" and not (judge / "eval").exists()
    assert checkpoint_meta(judge / CHECKPOINT)["identity"]["data"]["recipe"] == "faults6"
    load_judge(judge)


def test_train_never_replaces_files_of_a_folder_without_a_judge(data: Path, recipe_file: Path, tmp_path: Path,
                                                                capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("my project")
    (folder / "config.json").write_text('{"mine": true}')
    for extra in ((), ("--overwrite",)):
        assert cli_train(recipe_file, data, folder, *extra) == 2
        one_line_error(capsys, "holds no judge", "README.md", "config.json")
    assert (folder / "README.md").read_text() == "my project" and sorted(p.name for p in folder.iterdir()) == [
        "README.md", "config.json"]
    (folder / "README.md").unlink()
    (folder / "config.json").unlink()
    leftovers = [".model.safetensors.77.tmp", "checkpoint/.last.safetensors.77.tmp", ".tmp-export/config.json"]
    for name in leftovers:   # a first run killed while writing
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"left by a kill")
    assert cli_train(recipe_file, data, folder, "--max-steps", "1") == 0, "only leftovers: an empty folder"
    assert not any((folder / name).exists() for name in leftovers) and load_judge(folder).tasks == ["style", "object"]


def test_a_damaged_checkpoint_is_one_line_and_overwrite_starts_afresh(full: Path, data: Path, tmp_path: Path):
    out = tmp_path / "judge"
    shutil.copytree(full, out)
    ckpt = out / CHECKPOINT
    for damaged in (ckpt.read_bytes()[:-100], b"\x00" * 16):
        ckpt.write_bytes(damaged)
        with pytest.raises(JudgeError, match=r"last\.safetensors: not a readable training checkpoint .*--overwrite") \
                as e:
            train_judge(tiny(), data, out, device="cpu", progress=False)
        assert "\n" not in str(e.value)
    train_judge(tiny(), data, out, device="cpu", progress=False, overwrite=True)
    assert_identical(full, out)


def test_weights_are_checked_against_the_seal(full: Path, tmp_path: Path):
    seal = json.loads((full / "judge.json").read_text())
    assert set(seal["files"]) == {"config.json", "model.safetensors", "heads.safetensors"}
    assert seal["files"]["model.safetensors"]["sha256"] == sha256_file(full / "model.safetensors")
    for name in ("model.safetensors", "heads.safetensors"):
        judge = tmp_path / name
        shutil.copytree(full, judge)
        raw = bytearray((judge / name).read_bytes())
        raw[-10] ^= 0xFF
        (judge / name).write_bytes(bytes(raw))
        with pytest.raises(JudgeError, match=rf"{name}: its sha256 does not match judge\.json") as e:
            load_judge(judge)
        assert "\n" not in str(e.value)
        with pytest.raises(JudgeError, match=rf"{name}: its sha256 does not match"):
            judge_files(judge)   # what push uploads: a judge that fails its seal never goes up
        (judge / name).write_bytes(bytes(raw[:-10]))
        with pytest.raises(JudgeError, match=rf"{name}: \d+ bytes, but judge\.json lists \d+: corrupt or truncated"):
            load_judge(judge)
        (judge / "judge.json").unlink()
        with pytest.raises(JudgeError, match=rf"{name} is corrupt or truncated"):
            load_judge(judge)


STYLES, OBJECTS = ["Van_Gogh", "Seed_Images"], ["Cats", "Towers"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    info = JudgeInfo(model="vit_tiny_patch16_224", tasks=["style", "object"],
                     class_names={"style": STYLES, "object": OBJECTS},
                     label_space={"style": "custom", "object": "custom"}, image_size=32, model_kwargs=TINY)
    return save_judge(Judge(create_backbone("vit_tiny_patch16_224", 2, 32, TINY), info),
                      tmp_path_factory.mktemp("saved"))


BAD_CONFIGS = [
    (lambda c: c.pop("tasks"), r"field 'canvasdata\.tasks': is required"),
    (lambda c: c.pop("class_names"), r"field 'canvasdata\.class_names': is required"),
    (lambda c: c.update(image_size="112"), r"field 'canvasdata\.image_size': expected int, got str '112'"),
    (lambda c: c.update(image_size=0), r"field 'canvasdata\.image_size': 0 is out of range: allowed 1\.\.8192"),
    (lambda c: c.update(image_size=-32), r"field 'canvasdata\.image_size': -32 is out of range"),
    (lambda c: c.update(std=[0.5, 0, 0.5]), r"field 'canvasdata\.std': expected three numbers > 0"),
    (lambda c: c.update(std=[0.5, 0.5]), r"field 'canvasdata\.std': expected three numbers > 0"),
    (lambda c: c.update(mean=[0.5, 0.5, 0.5, 0.5]), r"field 'canvasdata\.mean': expected three finite numbers"),
    (lambda c: c.update(mean="grey"), r"field 'canvasdata\.mean': expected list"),
    (lambda c: c.update(tasks=[]), r"field 'canvasdata\.tasks': expected a non-empty list"),
    (lambda c: c.update(tasks=["style", "colour"]), r"field 'canvasdata\.tasks'.*among style, object, binary"),
    (lambda c: c["class_names"].update(object="Cats"), r"field 'canvasdata\.class_names\.object': expected a non-emp"),
    (lambda c: c["label_space"].pop("object"), r"field 'canvasdata\.label_space\.object': expected the name"),
    (lambda c: c.update(colour=1), r"field 'canvasdata\.colour': is not a known field"),
]


@pytest.mark.parametrize("damage, message", BAD_CONFIGS)
def test_config_fields_are_validated_in_one_line(saved: Path, tmp_path: Path, damage, message: str):
    judge = tmp_path / "judge"
    shutil.copytree(saved, judge)
    cfg = json.loads((judge / "config.json").read_text())
    damage(cfg["canvasdata"])
    (judge / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(JudgeError, match=r"config\.json: \d+ bytes, but judge\.json lists"):
        load_judge(judge)
    (judge / "judge.json").unlink()
    with pytest.raises(JudgeError, match=message) as e:
        load_judge(judge)
    assert "\n" not in str(e.value) and str(judge / "config.json") in str(e.value)


def test_zero_std_is_refused_before_any_prediction(saved: Path, tmp_path: Path, capsys):
    judge = tmp_path / "judge"
    shutil.copytree(saved, judge)
    (judge / "judge.json").unlink()
    cfg = json.loads((judge / "config.json").read_text())
    cfg["canvasdata"]["std"] = [0, 0, 0]
    (judge / "config.json").write_text(json.dumps(cfg))
    Image.new("RGB", (40, 40), (200, 40, 90)).save(tmp_path / "a.png")
    assert main(["judge", "predict", str(judge), str(tmp_path / "a.png"), "--out", str(tmp_path / "p.csv")]) == 2
    one_line_error(capsys, "field 'canvasdata.std'", "numbers > 0")
    assert not (tmp_path / "p.csv").exists()
    (judge / "config.json").write_text("{not json")
    with pytest.raises(JudgeError, match=r"config\.json: unreadable"):
        load_judge(judge)
    (judge / "config.json").write_text(json.dumps({**cfg, "canvasdata": ["style"]}))
    with pytest.raises(JudgeError, match=r"field 'canvasdata': expected an object"):
        load_judge(judge)


def test_a_full_disk_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "checkpoint" / "last.safetensors"
    path.parent.mkdir()
    path.write_bytes(b"previous")

    def fills_the_disk(tensors: dict, tmp: str, metadata: dict) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", fills_the_disk)
    with pytest.raises(JudgeError, match=r"last\.safetensors: disk full while writing; the partial file was removed"):
        save_state(path, {"w": torch.zeros(1)}, {}, JudgeError)   # how judges.checkpoint writes the checkpoint
    assert [p.name for p in path.parent.iterdir()] == ["last.safetensors"] and path.read_bytes() == b"previous"


def test_checkpoint_holds_a_consistent_single_file(full: Path):
    """One file holds everything a resume needs, its JSON part naming the run it belongs to."""
    assert sorted(p.name for p in (full / "checkpoint").iterdir()) == ["last.safetensors"]
    meta = checkpoint_meta(full / CHECKPOINT)
    assert (meta["step"], meta["epoch"], meta["position"]) == (STEPS, 3, 0)
    assert set(meta["rng"]) == {"python", "numpy"} and meta["scheduler"]["t_initial"] == STEPS
    assert meta["identity"]["data"]["recipe"] == "faults5" and len(meta["identity"]["recipe_hash"]) == 64
    assert run_identity(tiny(workers=3), "x", None)["recipe_hash"] == meta["identity"]["recipe_hash"]


def test_a_second_training_into_the_same_folder_is_refused(full: Path, data: Path, recipe_file: Path,
                                                          tmp_path: Path, capsys):
    judge = tmp_path / "judge"
    shutil.copytree(full, judge)
    before = digests(judge)
    with folder_lock(judge / LOCK, f"{judge} is being trained"):
        assert cli_train(recipe_file, data, judge) == 2
        one_line_error(capsys, "is being trained by pid", str(os.getpid()))
    assert digests(judge) == before and not (judge / LOCK).exists()
    fresh = tmp_path / "fresh"
    with folder_lock(tmp_path / "elsewhere.lock", "x"):
        assert cli_train(recipe_file, data, fresh, "--max-steps", "1") == 0
    assert not (fresh / LOCK).exists() and (fresh / "judge.json").exists()


def test_reading_a_judge_that_is_being_trained_is_refused(full: Path, data: Path, tmp_path: Path, capsys):
    """`judge eval`/`predict` (load_judge) while another live process holds the training lock: one line
    naming the holder; a stale lock (its process gone) or none lets the reader through."""
    judge = tmp_path / "judge"
    shutil.copytree(full, judge)
    holder = {"pid": 1, "host": socket.gethostname(), "since": "2026-12-03 00:00:00"}  # pid 1: always alive
    (judge / LOCK).write_text(json.dumps(holder))
    with pytest.raises(LockError, match=r"is being trained by pid 1"):
        load_judge(judge)
    assert main(["judge", "eval", str(judge), "--data", str(data), "--out", str(tmp_path / "ev")]) == 2
    assert "is being trained by pid 1" in capsys.readouterr().err and not (tmp_path / "ev").exists()
    (judge / LOCK).write_text(json.dumps({**holder, "pid": 2 ** 22 + 12345}))      # no such process
    assert load_judge(judge).class_names
    (judge / LOCK).unlink()
    assert load_judge(judge).class_names
