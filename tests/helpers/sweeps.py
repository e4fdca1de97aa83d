"""The sweep file the sweep tests share: two rows over one pipeline (esd answering one request, the original
answering two, generated once and linked)."""

from __future__ import annotations

from pathlib import Path


def two_model_sweep(folder: Path, pipeline: Path) -> Path:
    """`folder/models.toml`: esd for style:Van_Gogh, the original for style:Van_Gogh and object:Dogs."""
    path = folder / "models.toml"
    path.write_text(f'''
[[model]]
method = "esd"
forget = "style:Van_Gogh"
path = "{pipeline}"

[[model]]
method = "original"
forget = ["style:Van_Gogh", "object:Dogs"]
path = "{pipeline}"
''')
    return path
