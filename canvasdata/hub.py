"""Push a build (or a judge) to the Hugging Face Hub with huggingface_hub: create the repo, upload the folder."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, HTTPError
from huggingface_hub.utils import validate_repo_id

from canvasdata.errors import CanvasdataError

IGNORE = [".canvasdata/*", ".canvasdata/**", "**/.*.tmp"]
# Errors of a Hub that cannot be reached, by class name: builtins' and huggingface_hub's (offline mode),
# requests' (huggingface_hub < 1.0) and httpx's (connect, read and write failures and timeouts).
UNREACHABLE = ("ConnectionError", "Timeout", "TimeoutError", "TransportError")


class HubError(CanvasdataError, ValueError):
    """An upload that the network or the Hub refused; the message says why, on one line."""


def push_folder(folder: Path | str, repo_id: str, *, repo_type: str = "dataset", private: bool = False,
                token: str | None = None, message: str | None = None, api: HfApi | None = None,
                allow_patterns: list[str] | None = None) -> str:
    """Create `repo_id` if needed and upload `folder` (resumable, multi-commit for large folders);
    returns the repo URL. Build state (`.canvasdata/`) and temporary files stay local; with
    `allow_patterns`, only the files matching one of them go up. Network and Hub failures raise HubError."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise HubError(f"{repo_id!r} is not a Hub repo id (user/name): {e}") from None
    api = api or HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                          allow_patterns=allow_patterns, ignore_patterns=IGNORE,
                          commit_message=message or f"Upload {Path(folder).name} with canvasdata")
    except (OSError, HTTPError) as e:  # HfHubHTTPError and requests' errors are OSErrors; httpx's are not
        raise HubError(f"could not push {folder} to the Hub {repo_type} repo {repo_id}: {_reason(e)}") from e
    return str(url)


def _reason(e: BaseException) -> str:
    """The error's message on one line, and what to check."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status in (401, 403):
        return f"{text} (check the token: --token, $HF_TOKEN or `hf auth login`)"
    if isinstance(e, HfHubHTTPError):
        return text
    if any(cls.__name__ in UNREACHABLE for cls in type(e).__mro__):
        return (f"{type(e).__name__}: {text} (the Hub could not be reached: check the network, a proxy or "
                "HF_HUB_OFFLINE)")
    return f"{type(e).__name__}: {text}"
