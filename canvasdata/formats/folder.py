"""Export a build to the original UnlearnCanvas folder layout: `{style}/{object}/{k}.jpg`.

The JPEG bytes are copied as stored (no re-encoding), so the folder holds exactly the built images.
"""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from canvasdata.formats import read_shard
from canvasdata.formats.common import atomic_writer

LAYOUTS = ("unlearncanvas",)


def export_folder(root: Path, out: Path, manifest: dict, layout: str = "unlearncanvas",
                  progress: bool = True) -> int:
    """Write every image of the build under `out`; returns the number of files written."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    styles = manifest["features"]["style"]["names"]
    objects = manifest["features"]["object"]["names"]
    n = 0
    with tqdm(total=manifest["num_rows"], unit="img", desc="export", disable=not progress) as bar:
        for shard in manifest["shards"]:
            for row in read_shard(root / shard["path"]):
                target = out / styles[row["style"]] / objects[row["object"]] / f"{row['index']}.jpg"
                with atomic_writer(target) as f:
                    f.write(row["image"])
                n += 1
                bar.update()
    return n
