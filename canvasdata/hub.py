"""Push a build (or a judge) to the Hugging Face Hub with huggingface_hub: create the repo, upload the folder."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

IGNORE = [".canvasdata/*", ".canvasdata/**", "**/.*.tmp"]


def push_folder(folder: Path | str, repo_id: str, *, repo_type: str = "dataset", private: bool = False,
                token: str | None = None, message: str | None = None, api: HfApi | None = None) -> str:
    """Create `repo_id` if needed and upload `folder` (resumable, multi-commit for large folders);
    returns the repo URL. Build state (`.canvasdata/`) and temporary files stay local."""
    api = api or HfApi(token=token)
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, ignore_patterns=IGNORE,
                      commit_message=message or f"Upload {Path(folder).name} with canvasdata")
    return str(url)
