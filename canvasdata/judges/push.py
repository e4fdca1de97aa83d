"""A judge on the Hub: which files of a judge directory make its model repo (`judge_files`: the sealed model
files, the card and the figures it shows, optionally the eval reports and the training state) and the upload
of exactly those (`push_judge`)."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from huggingface_hub import HfApi

from canvasdata.hub import HubError, push_folder
from canvasdata.judges.model import JudgeError
from canvasdata.judges.weights import CARD, CONFIG, HEADS, SEAL, WEIGHTS, read_info, verify_seal

# a figure the card shows: a Markdown image or an HTML <img>
FIGURE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)|<img\s[^>]*?src=[\"']([^\"']+)[\"']", re.IGNORECASE)


def card_figures(root: Path | str) -> list[str]:
    """PNG files that the model card (README.md) shows, as paths relative to `root`; a figure that
    the card shows but the directory lacks is an error (it would be a broken image on the Hub)."""
    root = Path(root)
    card = root / CARD
    if not card.is_file():
        return []
    base = root.resolve()
    found = []
    for m in FIGURE.finditer(card.read_text(encoding="utf-8")):
        ref = (m.group(1) or m.group(2)).split("#")[0].split("?")[0]
        if "://" in ref or ref.startswith("data:") or not ref.lower().endswith(".png"):
            continue
        path = (root / ref).resolve()
        if not path.is_relative_to(base):
            raise JudgeError(f"{card} shows {ref}, outside {root}; copy the figure into the judge directory")
        if not path.is_file():
            raise JudgeError(f"{card} shows {ref}, which {root} lacks; add the figure or remove it from the card")
        found.append(path.relative_to(base).as_posix())
    return list(dict.fromkeys(found))


def judge_files(root: Path | str, include_eval: bool = False, include_checkpoint: bool = False) -> list[str]:
    """The files of `root` (relative POSIX paths) that make a model repo: config.json,
    model.safetensors, heads.safetensors, README.md and the figures the card shows; with
    `include_eval` the eval/ reports (JSON, PNG), with `include_checkpoint` the training state
    (checkpoint/, history.json). Hidden files never go up; a judge that fails its seal is refused."""
    root = Path(root)
    verify_seal(root)
    info = read_info(root)
    if not (root / WEIGHTS).is_file():
        raise JudgeError(f"{root / WEIGHTS}: missing")
    if info.tasks[1:] and not (root / HEADS).is_file():
        raise JudgeError(f"{root / HEADS}: missing (needed for tasks {info.tasks[1:]})")
    files = [n for n in (CONFIG, WEIGHTS, HEADS, SEAL, CARD) if (root / n).is_file()] + card_figures(root)
    if include_eval:
        files += _tree(root, "eval", (".json", ".png"))
    if include_checkpoint:
        files += _tree(root, "checkpoint", None) + (["history.json"] if (root / "history.json").is_file() else [])
    return list(dict.fromkeys(files))


def _tree(root: Path, folder: str, suffixes: tuple[str, ...] | None) -> list[str]:
    """Non-hidden files under root/folder (optionally only those with `suffixes`), relative to root."""
    return sorted(p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
                  and (suffixes is None or p.suffix.lower() in suffixes))


def push_judge(root: Path | str, repo_id: str, private: bool = False, token: str | None = None, *,
               include_eval: bool = False, include_checkpoint: bool = False, api: HfApi | None = None) -> str:
    """Upload a judge directory as a Hub model repo: only `judge_files(root, ...)` go up. Returns the
    repo URL; a network or Hub failure raises JudgeError with a one-line reason."""
    files = judge_files(root, include_eval, include_checkpoint)
    try:
        return push_folder(root, repo_id, repo_type="model", private=private, token=token, api=api,
                           message="Upload canvasdata judge", allow_patterns=[glob.escape(f) for f in files])
    except HubError as e:
        raise JudgeError(str(e)) from e
