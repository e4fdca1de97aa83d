"""Shared fixtures: tiny offline models built from configs (see tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from canvasdata.dataset import build
from canvasdata.recipes import load_recipe


@pytest.fixture(scope="session")
def tiny_sd_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny StableDiffusionPipeline saved with save_pretrained (load it with from_pretrained)."""
    from helpers.tiny_diffusers import tiny_pipeline

    return tiny_pipeline(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of toy models: their kernels are too small to share, and the CPU is
    shared. Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 32 px tiny-mini build (3 styles x 3 objects; 27 training images), shared by the model tests."""
    out = tmp_path_factory.mktemp("build") / "tiny-mini"
    build(load_recipe("tiny-mini"), out, progress=False)
    return out
