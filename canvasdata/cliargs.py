"""Command-line flags that several `canvasdata` commands share, declared once so they read the same
everywhere (names, defaults, help)."""

from __future__ import annotations

import argparse
import os


def add_device_args(p: argparse.ArgumentParser, *, batch_size: int = 64, workers: bool = True) -> None:
    """--device, --batch-size and (optionally) --workers of the commands that run a model over images
    (judges, diffusers pipelines)."""
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"images a batch (default: {batch_size})")
    if workers:
        p.add_argument("--workers", type=int, default=2, help="image-decoding worker processes (default: 2)")


def add_hub_args(p: argparse.ArgumentParser) -> None:
    """DIR, REPO_ID, --private and --token of the commands that upload a folder to the Hub."""
    p.add_argument("dir")
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=os.environ.get("HF_TOKEN"), help="default: $HF_TOKEN or the saved login")
