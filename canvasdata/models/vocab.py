"""A word-level CLIP tokenizer built from a build's own prompts (nothing downloaded): every word of
the captions is one token, so a tiny text encoder learns words, not letters.

CLIP's tokenizer is byte-pair encoding: a word is split into characters (the last one marked `</w>`)
and merged by the ranked merge list. The merges here are chosen so that each caption word ends as one
token: for each word, BPE is run with the merges so far, and if it stops short of one token, merges
joining what is left (left to right) are appended. Appending never changes how an earlier word
tokenizes (at each of its steps a lower-ranked pair was present), so every word is one token; the saved
tokenizer is checked word by word with transformers' own `CLIPTokenizer` before it is returned."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import CLIPTokenizer

from canvasdata.errors import UsageError

SPECIALS = ("<|startoftext|>", "<|endoftext|>")
END = "</w>"
WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")  # CLIP's pre-tokenizer, for the lower-cased ASCII captions here


def caption_words(prompts: Iterable[str]) -> list[str]:
    """The distinct words of the prompts, as CLIP's pre-tokenizer splits them (lower case), sorted."""
    return sorted({w for p in prompts for w in WORD.findall(p.lower())})


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE of one word under `ranks` (the lowest-ranked adjacent pair merges first, every
    occurrence of it left to right)."""
    parts = [*word[:-1], word[-1] + END]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), 1 << 60), i) for i, (a, b) in enumerate(zip(parts, parts[1:], strict=False))]
        best = min(pairs)[0]
        if best == 1 << 60:
            break
        pair = next((parts[i], parts[i + 1]) for r, i in pairs if r == best)
        out, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
                out.append(parts[i] + parts[i + 1])
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


def word_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """Merges under which every word is one token (see the module docstring)."""
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        parts = _bpe(word, ranks)
        while len(parts) > 1:  # join the first two parts, then BPE again (a merge applies everywhere in the word)
            ranks[(parts[0], parts[1])] = len(merges)
            merges.append((parts[0], parts[1]))
            parts = _bpe(word, ranks)
    return merges


def write_tokenizer(prompts: Iterable[str], folder: Path, max_length: int) -> CLIPTokenizer:
    """Save a CLIPTokenizer (vocab.json, merges.txt and transformers' own files) whose vocabulary is the
    prompts' words, and return it loaded back from `folder`."""
    words = caption_words(prompts)
    merges = word_merges(words)
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for token in (*(c for w in words for c in (*w[:-1], w[-1] + END)), *(a + b for a, b in merges)):
        vocab.setdefault(token, len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length,
                        word_level=True)  # kept in tokenizer_config.json through every save_pretrained
    tok.save_pretrained(str(folder))
    tok = CLIPTokenizer.from_pretrained(str(folder))
    check_words(tok, words, str(folder))
    return tok


def word_ids(tokenizer: CLIPTokenizer, text: str) -> list[int]:
    """The token ids of `text` without the start and end tokens."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def is_word_level(tokenizer: object) -> bool:
    """Whether a tokenizer is one of these word-level ones (marked `word_level` in its config)."""
    return bool(getattr(tokenizer, "init_kwargs", {}).get("word_level"))


def unknown_words(tokenizer: CLIPTokenizer, text: str) -> list[str]:
    """The words of `text` the tokenizer does not know: for a word-level tokenizer, every word that is not
    one token; for any other, words that map to the unknown token."""
    unk = tokenizer.unk_token_id
    bad = []
    for w in WORD.findall(text.lower()) if is_word_level(tokenizer) else text.split():
        ids = word_ids(tokenizer, w)
        if unk in ids or (is_word_level(tokenizer) and len(ids) != 1):
            bad.append(w)
    return bad


def check_words(tokenizer: CLIPTokenizer, words: Iterable[str], where: str) -> None:
    """Refuse, naming the word, a word that is not one known token of a word-level tokenizer."""
    for w in words:
        if unknown_words(tokenizer, w):
            raise UsageError(f"{where}: the word {w!r} is not in the model's vocabulary "
                             f"(tokens {word_ids(tokenizer, w)})")


def caption_token_ids(tokenizer: CLIPTokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every caption's token ids, padded to the tokenizer's length, and the empty caption's (the
    unconditional input that caption dropout trains for classifier-free guidance)."""
    enc = tokenizer(list(prompts) + [""], padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt")["input_ids"]
    return enc[:-1], enc[-1]
