"""Label spaces and the prompt template.

A class id is the position of a name in its label space, whatever subset a recipe builds. The
`uc60` order is the original's and is NOT sorted (`Palette_Knife` precedes `Magic_Cube`): never sort it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from canvasdata.errors import CanvasdataError

OBJECTS: tuple[str, ...] = tuple(
    "Architectures Bears Birds Butterfly Cats Dogs Fishes Flame Flowers Frogs Horses Human Jellyfish "
    "Rabbits Sandwiches Sea Statues Towers Trees Waterfalls".split()
)

UC50: tuple[str, ...] = tuple(
    "Abstractionism Artist_Sketch Blossom_Season Bricks Byzantine Cartoon Cold_Warm Color_Fantasy "
    "Comic_Etch Crayon Cubism Dadaism Dapple Defoliation Early_Autumn Expressionism Fauvism French "
    "Glowing_Sunset Gorgeous_Love Greenfield Impressionism Ink_Art Joy Liquid_Dreams Magic_Cube "
    "Meta_Physics Meteor_Shower Monet Mosaic Neon_Lines On_Fire Pastel Pencil_Drawing Picasso Pop_Art "
    "Red_Blue_Ink Rust Seed_Images Sketch Sponge_Dabbed Structuralism Superstring Surrealism Ukiyoe "
    "Van_Gogh Vibrant_Flow Warm_Love Warm_Smear Watercolor Winter".split()
)

UC60: tuple[str, ...] = tuple(
    "Abstractionism Artist_Sketch Blossom_Season Blue_Blooming Bricks Byzantine Cartoon Cold_Warm "
    "Color_Fantasy Comic_Etch Crayon Crypto_Punks Cubism Dadaism Dapple Defoliation Dreamweave "
    "Early_Autumn Expressionism Fauvism Foliage_Patchwork French Glowing_Sunset Gorgeous_Love Greenfield "
    "Impasto Impressionism Ink_Art Joy Liquid_Dreams Palette_Knife Magic_Cube Meta_Physics Meteor_Shower "
    "Monet Mosaic Neon_Lines On_Fire Pastel Pencil_Drawing Picasso Pointillism Pop_Art Rainwash "
    "Realistic_Watercolor Red_Blue_Ink Rust Seed_Images Sketch Sponge_Dabbed Structuralism Superstring "
    "Surrealism Techno Ukiyoe Van_Gogh Vibrant_Flow Warm_Love Warm_Smear Watercolor Winter".split()
)

SEED_STYLE = "Seed_Images"
PROMPT_TEMPLATE = "A {object} image in {style} style."
# How prompts name Seed_Images: the dataset's captions (the original's data loaders) say "Photo";
# the original's sampling scripts for unlearned models replace the underscore ("Seed Images").
SEED_WORDS_CAPTION = "Photo"
SEED_WORDS_SAMPLER = "Seed Images"


DOMAINS = ("style", "object")   # what an unlearning request forgets: a style or an object
MAX_LISTED = 20  # names an unknown-name message lists when none is close


class LabelError(CanvasdataError, ValueError):
    """An unknown label space or class name."""


@dataclass(frozen=True)
class LabelSpace:
    """An ordered list of class names; the id of a class is its position."""

    name: str
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            raise LabelError(f"label space {self.name!r} repeats names: {dupes}")

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def id(self, name: str) -> int:
        """Class id of `name`; unknown names raise LabelError with the closest suggestions."""
        try:
            return self.names.index(name)
        except ValueError:
            raise LabelError(unknown_message(name, self.names, f"label space {self.name!r}")) from None

    def ids(self, names: Iterable[str]) -> list[int]:
        return [self.id(n) for n in names]


BUILTIN_SPACES: dict[str, LabelSpace] = {
    "uc60": LabelSpace("uc60", UC60),
    "uc50": LabelSpace("uc50", UC50),
    "objects": LabelSpace("objects", OBJECTS),
}


def split_target(spec: str) -> tuple[str, str] | None:
    """(domain, name) of a request 'style:NAME' or 'object:NAME' (the name unchecked); None for any other
    form, so that each caller raises its own error naming its flag or field."""
    domain, sep, name = spec.partition(":")
    return (domain, name) if sep and domain in DOMAINS and name and "+" not in spec else None


def closest_names(name: str, allowed: Sequence[str], shown: int = MAX_LISTED, *, list_allowed: bool = False) -> str:
    """'; did you mean A, B?' with difflib's closest names (case-insensitive as a second try); without a
    close name, '; allowed: ...' listing at most `shown` names, then how many more. `list_allowed`
    lists the allowed names after the closest ones too."""
    close = difflib.get_close_matches(name, list(allowed), n=3, cutoff=0.5)
    if not close:
        lowered = {a.lower(): a for a in allowed}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
    more = f", ... ({len(allowed) - shown} more)" if len(allowed) > shown else ""
    listed = f"allowed: {', '.join(list(allowed)[:shown]) or '(none)'}{more}"
    if close:
        return f"; did you mean {', '.join(close)}?" + (f" ({listed})" if list_allowed else "")
    return f"; {listed}"


def unknown_message(name: str, allowed: Sequence[str], what: str, shown: int = MAX_LISTED) -> str:
    """'unknown name X in WHAT; did you mean A, B?' (see `closest_names`)."""
    return f"unknown name {name!r} in {what}{closest_names(name, allowed, shown)}"


def label_space(name: str, custom: Mapping[str, Sequence[str]] | None = None) -> LabelSpace:
    """A built-in space (`uc60`, `uc50`, `objects`) or a custom one declared by a recipe."""
    if custom and name in custom:
        return LabelSpace(name, tuple(custom[name]))
    if name in BUILTIN_SPACES:
        return BUILTIN_SPACES[name]
    raise LabelError(unknown_message(name, [*BUILTIN_SPACES, *(custom or {})], "label spaces"))


def style_words(style: str, seed_words: str = SEED_WORDS_CAPTION) -> str:
    """How a style is named in prompts: underscores become spaces; Seed_Images is `seed_words`
    ('Photo' in the dataset's captions; evaluation protocols choose, see `evaluate.protocol`)."""
    return seed_words if style == SEED_STYLE else style.replace("_", " ")


def prompt(style: str, obj: str, template: str = PROMPT_TEMPLATE, seed_words: str = SEED_WORDS_CAPTION) -> str:
    """The one prompt template used for training captions and evaluation prompts; only the name of
    Seed_Images (`seed_words`) differs between the captions and the original's answer sets."""
    return template.format(style=style_words(style, seed_words), object=obj)
