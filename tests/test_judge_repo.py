"""A saved judge is a model repo others can use: truthful config.json, loadable by timm, by
transformers' image-classification pipeline and by canvasdata, and a push that uploads only the
repo's files and fails offline with one clear line."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub.constants
import pytest
import timm
import torch
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import filter_repo_objects
from PIL import Image

from canvasdata.cli import main
from canvasdata.hub import IGNORE, HubError, push_folder
from canvasdata.judges import Judge, JudgeError, JudgeInfo, create_backbone, load_judge, push_judge, save_judge
from canvasdata.judges.push import judge_files

TINY = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8}
STYLES, OBJECTS = ["Van_Gogh", "Pop_Art", "Seed_Images"], ["Cats", "Towers"]
CARD = "---\nlicense: apache-2.0\n---\n# judge\n![confusion (style)](confusion_style.png)\n"
MODEL_FILES = {"config.json", "model.safetensors", "heads.safetensors", "judge.json", "README.md",
               "confusion_style.png"}
INHERITED = ("tag", "hf_hub_id", "hf_hub_filename", "url", "file", "source", "origin_url", "paper_ids",
             "paper_name", "notes", "description", "label_names", "test_input_size")


def tiny_judge(**data) -> Judge:
    info = JudgeInfo(model="vit_tiny_patch16_224", tasks=["style", "object"],
                     class_names={"style": STYLES, "object": OBJECTS},
                     label_space={"style": "custom", "object": "custom"}, image_size=32, model_kwargs=TINY,
                     data={"recipe": "jt", "recipe_hash": "abc123", **data},
                     metrics={"test_accuracy": {"style": 0.9, "object": 0.5}, "steps": 7})
    torch.manual_seed(0)
    return Judge(create_backbone("vit_tiny_patch16_224", len(STYLES), 32, TINY), info).eval()


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    out = save_judge(tiny_judge(), tmp_path_factory.mktemp("judge"), CARD)
    Image.new("RGB", (8, 8)).save(out / "confusion_style.png")
    for name, text in {"checkpoint/state.pt": "x", "checkpoint/judge.safetensors": "x", "checkpoint/.tmp": "x",
                       "eval/eval.json": "{}", "eval/notes.txt": "x", "history.json": "{}", ".env": "HF_TOKEN=x",
                       "scratch.txt": "x"}.items():
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_text(text)
    Image.new("RGB", (8, 8)).save(out / "eval" / "confusion_object.png")
    return out


def test_config_holds_no_inherited_source_metadata(judge_dir: Path):
    cfg = json.loads((judge_dir / "config.json").read_text())
    pcfg = cfg["pretrained_cfg"]
    assert not set(INHERITED) & set(pcfg), pcfg
    assert pcfg["license"] == "unknown"
    assert pcfg["input_size"] == [3, 32, 32] and pcfg["mean"] == [0.5] * 3 and pcfg["interpolation"] == "bicubic"
    assert pcfg["num_classes"] == cfg["num_classes"] == 3 and cfg["label_names"] == STYLES
    assert "num_classes" not in cfg["model_args"] and "pretrained" not in cfg["model_args"]
    assert {k: cfg["model_args"][k] for k in TINY} == TINY and cfg["model_args"]["img_size"] == [32, 32]
    facts = cfg["canvasdata"]
    assert facts["data"]["recipe_hash"] == "abc123" and facts["metrics"]["test_accuracy"]["style"] == 0.9


def test_license_is_that_of_the_starting_weights(tmp_path: Path):
    out = save_judge(tiny_judge(start_license="apache-2.0"), tmp_path)
    assert json.loads((out / "config.json").read_text())["pretrained_cfg"]["license"] == "apache-2.0"


def test_timm_transformers_and_canvasdata_load_the_same_model(judge_dir: Path):
    from transformers import pipeline

    x = torch.rand(2, 3, 32, 32)
    judge = tiny_judge()
    with torch.no_grad():
        want = judge.logits(x)
        timm_model = timm.create_model(f"local-dir:{judge_dir}", pretrained=True).eval()
        torch.testing.assert_close(timm_model((x - 0.5) / 0.5), want["style"])
        loaded = load_judge(judge_dir).logits(x)
    for t in judge.tasks:
        torch.testing.assert_close(loaded[t], want[t])
    classify = pipeline("image-classification", model=str(judge_dir), device="cpu")
    preds = classify(Image.new("RGB", (40, 40), (200, 40, 90)), top_k=3)
    assert sorted(p["label"] for p in preds) == sorted(STYLES)
    with torch.no_grad():
        hf_logits = classify.model(pixel_values=(x - 0.5) / 0.5).logits
    torch.testing.assert_close(hf_logits, want["style"])


class FakeApi:
    """Records what push_folder asks of the Hub; `fail` is raised by create_repo."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail, self.upload = fail, None

    def create_repo(self, repo_id: str, **kw) -> str:
        if self.fail is not None:
            raise self.fail
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kw) -> None:
        self.upload = kw


def uploaded(kw: dict) -> set[str]:
    """The files upload_folder would send, filtered as huggingface_hub filters them."""
    root = Path(kw["folder_path"])
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return set(filter_repo_objects(files, allow_patterns=kw["allow_patterns"], ignore_patterns=kw["ignore_patterns"]))


def test_push_uploads_only_the_model_repo_files(judge_dir: Path):
    api = FakeApi()
    assert push_judge(judge_dir, "me/judge", api=api) == "https://huggingface.co/me/judge"
    assert api.upload["repo_type"] == "model"
    assert uploaded(api.upload) == MODEL_FILES
    push_judge(judge_dir, "me/judge", api=api, include_eval=True)
    assert uploaded(api.upload) == MODEL_FILES | {"eval/eval.json", "eval/confusion_object.png"}
    push_judge(judge_dir, "me/judge", api=api, include_checkpoint=True)
    assert uploaded(api.upload) == MODEL_FILES | {"checkpoint/state.pt", "checkpoint/judge.safetensors",
                                                  "history.json"}


def test_push_folder_keeps_uploading_everything_for_datasets(tmp_path: Path):
    (tmp_path / "data.parquet").write_text("x")
    (tmp_path / ".canvasdata").mkdir()
    (tmp_path / ".canvasdata" / "state.json").write_text("{}")
    api = FakeApi()
    push_folder(tmp_path, "me/data", api=api)
    assert api.upload["repo_type"] == "dataset" and api.upload["ignore_patterns"] == IGNORE
    assert uploaded(api.upload) == {"data.parquet"}


def test_card_figure_missing_from_the_directory_is_an_error(tmp_path: Path):
    out = save_judge(tiny_judge(), tmp_path, CARD.replace("confusion_style", "eval/confusion_style"))
    with pytest.raises(JudgeError, match="shows eval/confusion_style.png, which .* lacks"):
        judge_files(out)


def test_cli_push_flags(judge_dir: Path, monkeypatch, capsys):
    api = FakeApi()
    monkeypatch.setattr("canvasdata.hub.HfApi", lambda token=None: api)
    assert main(["judge", "push", str(judge_dir), "me/judge", "--include-eval"]) == 0
    assert uploaded(api.upload) == MODEL_FILES | {"eval/eval.json", "eval/confusion_object.png"}
    assert "me/judge" in capsys.readouterr().out


def test_offline_push_is_one_line_error(judge_dir: Path, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["judge", "push", str(judge_dir), "me/judge", "--token", "hf_x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not push") and "offline" in err and err.count("\n") == 1


@pytest.mark.parametrize("fail", [ConnectionError("[Errno -2] Name or service not known"),
                                  HfHubHTTPError("401 Client Error: Unauthorized\nInvalid credentials",
                                                 response=SimpleNamespace(status_code=401, headers={}, request=None))])
def test_network_and_hub_failures_become_hub_errors(judge_dir: Path, fail: BaseException):
    with pytest.raises(HubError, match="could not push .* me/judge: .*(network|token)") as e:
        push_folder(judge_dir, "me/judge", repo_type="model", api=FakeApi(fail))
    assert "\n" not in str(e.value)
    with pytest.raises(JudgeError):
        push_judge(judge_dir, "me/judge", api=FakeApi(fail))


def test_real_hfapi_offline_error_types():
    """The installed huggingface_hub raises an OSError offline, which push_folder converts."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        with pytest.raises(HubError, match="offline mode"):
            push_folder(".", "me/x", api=HfApi(token="hf_x"))
