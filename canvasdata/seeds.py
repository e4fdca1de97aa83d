"""Stable seed derivation: every random draw comes from (recipe seed, sample identity).

blake2b over a canonical string, never Python's salted `hash()`, so seeds are the same in every
process, worker and machine, whatever order the samples are rendered in.
"""

from __future__ import annotations

import hashlib

MASK63 = (1 << 63) - 1


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any sequence of parts (ints, strings)."""
    blob = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") & MASK63


def content_seed(seed: int, obj: str, index: int, style: str | None = None) -> int:
    """Seed of the content (scene) k of an object: shared by every style painted from it, unless
    `style` is given (unpaired training sets: every style gets scenes of its own)."""
    if style is None:
        return derive_seed("content", seed, obj, index)
    return derive_seed("content", seed, obj, index, style)


def paint_seed(seed: int, style: str, obj: str, index: int) -> int:
    """Seed of the painting of content k of an object in a style."""
    return derive_seed("paint", seed, style, obj, index)
