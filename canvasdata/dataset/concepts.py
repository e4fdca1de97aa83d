"""Concept sets in the DataIGM shape: per unlearning target, images with the concept and their exact
concept-removed twins (same content seed, same scene, same painting seed).

For a style target the twin is the same content painted in the twin style (Seed_Images: unpainted);
for an object target it is the same scene rendered without the object, or with a replacement object
composited in its place, painted in the same style. Object targets also get unrelated retain classes
as negatives. One Hub config per concept: `data/{concept}/{split}-*.parquet`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import datasets
import torch

from canvasdata.dataset.plan import ShardPlan, chunk_shards
from canvasdata.encode import encode_batch
from canvasdata.formats import write_json
from canvasdata.recipes import ConceptSpec, Recipe
from canvasdata.seeds import derive_seed
from canvasdata.sources import ContentSource, Painter
from canvasdata.taxonomy import SEED_STYLE, prompt, style_words

LABELS = ("negative", "positive")
ROLES = ("forget", "twin", "retain")
REMOVED_STYLE_TEMPLATE = "A {object} image."
REMOVED_OBJECT_TEMPLATE = "An image in {style} style."


@dataclass(frozen=True)
class ConceptSample:
    """One image of a concept set and how to draw it."""

    concept: str
    role: str            # forget (positive), twin (its concept-removed pair), retain (unrelated negative)
    theme: str
    prompt_index: int
    image: int
    pair_id: int
    split: str
    subject: str         # the object whose scene is rendered
    draw_object: bool
    replacement: str     # object composited into the scene instead of the subject ("" for none)
    style: str           # style painted


def concept_features() -> datasets.Features:
    """Typed columns of a concept set."""
    return datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(LABELS)),
        "concept": datasets.Value("string"),
        "role": datasets.Value("string"),
        "theme": datasets.Value("string"),
        "pair_id": datasets.Value("int64"),
        "prompt_index": datasets.Value("int32"),
        "prompt": datasets.Value("string"),
        "paired_prompt": datasets.Value("string"),
        "seed": datasets.Value("int64"),
        "split": datasets.Value("string"),
    })


def _pair(c: ConceptSpec, theme: str, k: int, j: int, pid: int, split: str) -> tuple[ConceptSample, ConceptSample]:
    if c.domain == "style":
        pos = ConceptSample(c.name, "forget", theme, k, j, pid, split, theme, True, "", c.name)
        neg = ConceptSample(c.name, "twin", theme, k, j, pid, split, theme, True, "", c.twin)
    else:
        pos = ConceptSample(c.name, "forget", theme, k, j, pid, split, c.name, True, "", theme)
        neg = ConceptSample(c.name, "twin", theme, k, j, pid, split, c.name, False, c.replacement, theme)
    return pos, neg


def concept_samples(recipe: Recipe, c: ConceptSpec) -> list[ConceptSample]:
    """Pairs theme by theme (prompt index k, image j), then the retain classes' negatives."""
    out: list[ConceptSample] = []
    pid = 0
    for theme in c.themes:
        for k in range(1, recipe.images_per_cell + 1):
            for j in range(1, recipe.images_per_prompt + 1):
                out.extend(_pair(c, theme, k, j, pid, recipe.split_of(k)))
                pid += 1
    for r in c.retain:
        for k in range(1, recipe.images_per_cell + 1):
            style = c.themes[(k - 1) % len(c.themes)]
            for j in range(1, recipe.images_per_prompt + 1):
                out.append(ConceptSample(c.name, "retain", r, k, j, -1, recipe.split_of(k), r, True, "", style))
    return out


def plan_concept_shards(recipe: Recipe) -> list[ShardPlan]:
    """`data/{concept}/{split}-{i}-of-{n}`: a config per concept, shards of at most `shard_rows` rows.
    Pairs are never split across shards."""
    rows = max(2, recipe.output.shard_rows - recipe.output.shard_rows % 2)
    return [shard for c in recipe.concepts
            for shard in chunk_shards(concept_samples(recipe, c), rows, recipe.output.format, config=c.name)]


def seeds_of(recipe: Recipe, s: ConceptSample) -> tuple[int, int]:
    """(content seed, paint seed): shared by a sample and its twin, so only the concept differs."""
    ident = (s.concept, s.role == "retain", s.theme, s.prompt_index, s.image)
    return (derive_seed("concept-content", recipe.content.seed, *ident),
            derive_seed("concept-paint", recipe.seed, *ident))


def prompts_of(recipe: Recipe, c: ConceptSpec, s: ConceptSample) -> tuple[str, str]:
    """(prompt, paired prompt) of a sample: the forget prompt and its concept-removed pair."""
    if s.role == "retain":
        p = prompt(s.style, s.subject, recipe.prompt_template)
        return p, p
    if c.domain == "style":
        forget = prompt(c.name, s.subject, recipe.prompt_template)
        removed = (REMOVED_STYLE_TEMPLATE.format(object=s.subject) if c.twin == SEED_STYLE
                   else prompt(c.twin, s.subject, recipe.prompt_template))
    else:
        forget = prompt(s.style, c.name, recipe.prompt_template)
        removed = (prompt(s.style, c.replacement, recipe.prompt_template) if c.replacement
                   else REMOVED_OBJECT_TEMPLATE.format(style=style_words(s.style)))
    return (forget, removed) if s.role == "forget" else (removed, forget)


def render_group(source: ContentSource, painter: Painter, recipe: Recipe, group: list[ConceptSample],
                  device: torch.device) -> torch.Tensor:
    """Render and paint samples that share (subject, draw_object, replacement, style)."""
    first = group[0]
    seeds = [seeds_of(recipe, s) for s in group]
    cseeds, pseeds = [a for a, _ in seeds], [b for _, b in seeds]
    images, masks = source.render(first.subject, [s.prompt_index for s in group], cseeds, recipe.resolution, device,
                                  **({} if first.draw_object else {"draw_object": False}))
    if first.replacement:
        rep, rep_masks = source.render(first.replacement, [s.prompt_index for s in group], cseeds,
                                       recipe.resolution, device)
        images = images * (1 - rep_masks) + rep * rep_masks
        masks = rep_masks
    return painter.paint(first.style, images, pseeds, masks, [first.replacement or first.subject] * len(group))


def render_concept_shard(recipe: Recipe, shard: ShardPlan, source: ContentSource, painter: Painter,
                         device: torch.device, on_images: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Yield the shard's rows in plan order; samples are rendered in batches of like samples."""
    concept = {c.name: c for c in recipe.concepts}
    buckets: dict[tuple, list[int]] = {}
    for i, s in enumerate(shard.samples):
        buckets.setdefault((s.subject, s.draw_object, s.replacement, s.style), []).append(i)
    encoded: dict[int, bytes] = {}
    bs = recipe.output.batch_size
    for positions in buckets.values():
        for start in range(0, len(positions), bs):
            chunk = positions[start:start + bs]
            painted = render_group(source, painter, recipe, [shard.samples[i] for i in chunk], device)
            encoded.update(zip(chunk, encode_batch(painted, recipe.jpeg_quality), strict=True))
            if on_images:
                on_images(len(chunk))
    for i, s in enumerate(shard.samples):
        p, paired = prompts_of(recipe, concept[s.concept], s)
        yield {
            "image": encoded[i],
            "label": int(s.role == "forget"),
            "concept": s.concept,
            "role": s.role,
            "theme": s.theme,
            "pair_id": s.pair_id,
            "prompt_index": s.prompt_index,
            "prompt": p,
            "paired_prompt": paired,
            "seed": seeds_of(recipe, s)[1],
            "split": s.split,
        }


def prompt_records(recipe: Recipe, c: ConceptSpec) -> dict[str, list[dict]]:
    """Forget prompts and their concept-removed pairs (aligned by position), plus unrelated retain prompts."""
    forget, removed, unrelated = [], [], []
    seen: set[tuple[str, int]] = set()
    for s in concept_samples(recipe, c):
        key = (s.theme, s.prompt_index) if s.role != "retain" else (f"retain:{s.theme}", s.prompt_index)
        if s.role == "twin" or key in seen:
            continue
        seen.add(key)
        p, paired = prompts_of(recipe, c, s)
        images = [seeds_of(recipe, replace(s, image=j))[1]
                  for j in range(1, recipe.images_per_prompt + 1)]
        base = {"theme": s.theme, "prompt_index": s.prompt_index, "split": s.split, "seeds": images}
        if s.role == "retain":
            unrelated.append({"id": len(unrelated), "prompt": p, **base})
        else:
            forget.append({"id": len(forget), "prompt": p, **base})
            removed.append({"id": len(removed), "prompt": paired, **base})
    out = {"forget_prompts": forget, "retain_prompts": removed}
    if unrelated:
        out["unrelated_prompts"] = unrelated
    return out


def write_prompt_files(recipe: Recipe, out: Path) -> list[str]:
    """`prompts/{concept}/{forget,retain,unrelated}_prompts.json`; returns their relative paths."""
    written = []
    for c in recipe.concepts:
        for name, records in prompt_records(recipe, c).items():
            rel = f"prompts/{c.name}/{name}.json"
            write_json(out / rel, records)
            written.append(rel)
    return written
