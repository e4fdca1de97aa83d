"""Prompts with adversarial token slots for CLIP-conditioned pipelines (SD 1.x/2.x family): the token
ids of `[BOS] slots prompt [EOS] pad…` (or `[BOS] prompt slots [EOS] pad…`), encoded by the pipeline's own
text encoder with any embeddings put in the slots (a forward hook on its input-embedding table, so
gradients reach them), projection of embeddings to the nearest real tokens, and a pipeline-shaped
wrapper that generates with found token ids exactly (their embeddings, never re-tokenised text)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from canvasdata.errors import UsageError

POSITIONS = ("prefix", "suffix")


def execution_device(pipe: Any) -> torch.device:
    """Where a pipeline runs its models (`_execution_device` under CPU offload, else its device)."""
    return getattr(pipe, "_execution_device", None) or pipe.device


def encode_ids(pipe: Any, ids: torch.Tensor) -> torch.Tensor:
    """Text-encoder hidden states of token ids [B, L], as the pipeline's `encode_prompt` computes them."""
    te = pipe.text_encoder
    dev = execution_device(pipe)
    mask = torch.ones_like(ids).to(dev) if getattr(te.config, "use_attention_mask", False) else None
    return te(ids.to(dev), attention_mask=mask)[0]


class SoftPrompt:
    """One prompt with `n` adversarial slots before (`prefix`) or after (`suffix`) its words."""

    def __init__(self, pipe: Any, text: str, n: int, position: str = "prefix") -> None:
        if position not in POSITIONS:
            raise UsageError(f"position {position!r}: allowed {', '.join(POSITIONS)}")
        tok, self.pipe, self.text = pipe.tokenizer, pipe, text
        words = list(tok(text, add_special_tokens=False).input_ids)
        length = tok.model_max_length
        if len(words) + n + 2 > length:
            raise UsageError(f"tokens {n}: the prompt {text!r} has {len(words)} tokens; at most "
                             f"{length - 2} fit with the slots")
        first = 1 if position == "prefix" else 1 + len(words)
        self.slots = torch.arange(first, first + n)
        body = [0] * n + words if position == "prefix" else words + [0] * n
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids = [tok.bos_token_id, *body, tok.eos_token_id]
        self.template = torch.tensor(ids + [pad] * (length - len(ids)))
        self.eos = len(ids) - 1
        self.table = pipe.text_encoder.get_input_embeddings()
        special = set(tok.all_special_ids)
        self.vocab = torch.tensor([i for i in range(min(len(tok), self.table.num_embeddings)) if i not in special])

    def ids(self, adversarial: torch.Tensor) -> torch.Tensor:
        """The full token ids [L] with `adversarial` ids in the slots."""
        ids = self.template.clone()
        ids[self.slots] = adversarial.cpu()
        return ids

    def embed(self, adversarial: torch.Tensor) -> torch.Tensor:
        """The embedding-table rows of token ids (float32)."""
        return self.table.weight[adversarial.to(self.table.weight.device)].float()

    @torch.no_grad()
    def project(self, soft: torch.Tensor) -> torch.Tensor:
        """The real tokens nearest (Euclidean distance in the embedding table) to each slot's embedding."""
        table = self.table.weight[self.vocab.to(self.table.weight.device)].float()
        return self.vocab[torch.cdist(soft.float().to(table.device), table).argmin(1).cpu()]

    def random_tokens(self, generator: torch.Generator) -> torch.Tensor:
        """`len(slots)` real tokens drawn from the vocabulary (no special tokens)."""
        return self.vocab[torch.randint(len(self.vocab), (len(self.slots),), generator=generator)]

    def encode(self, adversarial: torch.Tensor, soft: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states [1, L, D] of the prompt with `adversarial` token ids in the slots, or with the
        embeddings `soft` [n, D] there instead (differentiable in `soft`)."""
        if soft is None:
            return encode_ids(self.pipe, self.ids(adversarial)[None])
        slots = self.slots

        def put(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            output[:, slots.to(output.device)] = soft.to(output.device, output.dtype)
            return output

        handle = self.table.register_forward_hook(put)
        try:
            return encode_ids(self.pipe, self.ids(adversarial)[None])
        finally:
            handle.remove()

    def describe(self, adversarial: torch.Tensor) -> dict:
        """Token ids, token strings and decoded text of the prompt with `adversarial` in the slots."""
        tok, ids = self.pipe.tokenizer, self.ids(adversarial)
        adv = [int(i) for i in adversarial]
        return {"prompt": self.text, "adversarial_prompt": tok.decode(ids[1:self.eos].tolist()),
                "token_ids": adv, "tokens": tok.convert_ids_to_tokens(adv), "input_ids": ids.tolist(),
                "slots": self.slots.tolist()}


class AdversarialPipeline:
    """Pipeline-shaped: each prompt is replaced by the token ids the attack found for it (`found`:
    prompt -> full input ids), encoded by the pipeline's text encoder and passed as `prompt_embeds`."""

    def __init__(self, pipe: Any, found: dict[str, list[int]], name: str = "") -> None:
        self.pipe, self.found = pipe, found
        self.scheduler, self.dtype = pipe.scheduler, pipe.dtype
        self.config = SimpleNamespace(_name_or_path=name or "adversarial prompts")

    @torch.no_grad()
    def __call__(self, prompt: list[str], **kwargs: Any) -> Any:
        """Generate for the found prompts of `prompt` (a list), otherwise as the pipeline would."""
        unknown = [p for p in prompt if p not in self.found]
        if unknown:
            raise UsageError(f"prompt {unknown[0]!r}: no adversarial tokens were found for it")
        ids = torch.tensor([self.found[p] for p in prompt])
        return self.pipe(prompt_embeds=encode_ids(self.pipe, ids), **kwargs)
