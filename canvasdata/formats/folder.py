"""Export a build to the original UnlearnCanvas folder layout: `{style}/{object}/{k}.jpg`, with a
`metadata.jsonl` at its root, one line `{"file_name": "{style}/{object}/{k}.jpg", "text": prompt}` per
image: the `datasets` ImageFolder convention that diffusers' `--train_data_dir` fine-tuning reads
(file names relative to the metadata file, the caption in the `text` column). The original writes
that file with a script hard-coded to the full grid and its own caption wording; here it lists
exactly the exported images, captioned with the build's stored prompts (the build's one template).

The JPEG bytes are copied as stored (no re-encoding), so the folder holds exactly the built images.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from canvasdata.errors import UsageError
from canvasdata.formats import read_shard
from canvasdata.formats.common import atomic_writer

LAYOUTS = ("unlearncanvas", "imagefolder")
METADATA = "metadata.jsonl"


def export_folder(root: Path, out: Path, manifest: dict, layout: str = "unlearncanvas",
                  progress: bool = True) -> int:
    """Write every image of the build under `out` (and, for the unlearncanvas layout, its
    metadata.jsonl); returns the number of images written."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    is_concepts = manifest["recipe"].get("kind") == "concepts"
    if (layout == "imagefolder") != is_concepts:
        raise UsageError(f"layout {layout!r} is for {'grid builds' if layout == 'unlearncanvas' else 'concept sets'}; "
                         f"this build is a {'concept set' if is_concepts else 'grid'}: use "
                         f"--layout {'imagefolder' if is_concepts else 'unlearncanvas'}")
    if layout == "imagefolder":
        return export_imagefolder(root, out, manifest, progress)
    styles = manifest["features"]["style"]["names"]
    objects = manifest["features"]["object"]["names"]
    lines = []
    with tqdm(total=manifest["num_rows"], unit="img", desc="export", disable=not progress) as bar:
        for shard in manifest["shards"]:
            for row in read_shard(root / shard["path"]):
                name = f"{styles[row['style']]}/{objects[row['object']]}/{row['index']}.jpg"
                if not row.get("prompt"):
                    raise UsageError(f"{root / shard['path']}: {name} has no prompt to write into {METADATA}")
                with atomic_writer(out / name) as f:
                    f.write(row["image"])
                lines.append(json.dumps({"file_name": name, "text": row["prompt"]}) + "\n")
                bar.update()
    with atomic_writer(out / METADATA) as f:
        f.write("".join(lines).encode("utf-8"))
    return len(lines)


def export_imagefolder(root: Path, out: Path, manifest: dict, progress: bool = True) -> int:
    """A concept set as `{concept}/{split}/{positive,negative}/NAME.jpg`: an image and its twin share
    NAME (theme, prompt index and image number), so detectors and paired metrics match them by name."""
    n = 0
    with tqdm(total=manifest["num_rows"], unit="img", desc="export", disable=not progress) as bar:
        for shard in manifest["shards"]:
            for row in read_shard(root / shard["path"]):
                label = "positive" if row["label"] == 1 else "negative"
                prefix = "retain_" if row["role"] == "retain" else ""
                name = f"{prefix}{row['theme']}_{row['prompt_index']:04d}_{row['seed']}.jpg"
                with atomic_writer(out / row["concept"] / row["split"] / label / name) as f:
                    f.write(row["image"])
                n += 1
                bar.update()
    return n
