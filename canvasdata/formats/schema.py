"""The sample schema, declared once as `datasets.Features`; every writer and the card derive from it."""

from __future__ import annotations

from collections.abc import Sequence

import datasets

ROW_FIELDS = ("image", "style", "object", "index", "content_id", "prompt", "seed", "source", "split")


def features_for(style_names: Sequence[str], object_names: Sequence[str]) -> datasets.Features:
    """Typed columns of a grid build: the class ids are positions in the whole label spaces."""
    return datasets.Features(
        {
            "image": datasets.Image(),
            "style": datasets.ClassLabel(names=list(style_names)),
            "object": datasets.ClassLabel(names=list(object_names)),
            "index": datasets.Value("int32"),
            "content_id": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "seed": datasets.Value("int64"),
            "source": datasets.Value("string"),
            "split": datasets.Value("string"),
        }
    )


def wds_features(features: datasets.Features) -> datasets.Features:
    """The WebDataset view of the same schema: the image is member `jpg`, every other field is in `json`.

    The Hub's WebDataset builder types a member by its file extension, so only these two members
    can carry the typed fields (class labels inside the `json` struct).
    """
    meta = {k: v for k, v in features.items() if k != "image"}
    return datasets.Features({"jpg": datasets.Image(), "json": meta})
