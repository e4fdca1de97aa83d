"""Shared fixtures: tiny offline models built from configs (see tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_sd_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny StableDiffusionPipeline saved with save_pretrained (load it with from_pretrained)."""
    from helpers.tiny_diffusers import tiny_pipeline

    return tiny_pipeline(tmp_path_factory.mktemp("tiny_sd"))
