"""Generation on token ids, for a batch of prompts: a ladder of small functions.

prefill (the prompts in one step) -> next_tokens (argmax on the device, or sampling on the host) ->
generate_step (a stream of token rows, growing or sliding the cache as needed) -> generate_ids (each row
until its EOS or max_new_tokens). Text, stop strings and timing are stream.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import fail
from .binding import DecoderBinding
from .sampling import Sampler, SamplingParams
from .session import Model

log = logging.getLogger("llama_ort.runtime")

# Past the context length, a row keeps this fraction of it: the prompt is re-run at most once per that many tokens.
SLIDE_KEEP = 0.5


@dataclass(frozen=True)
class GenerateOptions:
    max_new_tokens: int = 256
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop_strings: tuple[str, ...] = ()
    ignore_eos: bool = False
    padding: int = 512  # dynamic mode: the cache grows by this many positions when it is full

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise fail("max_new_tokens", f"must be at least 1, got {self.max_new_tokens}")
        if self.padding < 1:
            raise fail("padding", f"must be at least 1, got {self.padding}")


def check_fits(model: Model, prompts: list[list[int]], max_new_tokens: int) -> None:
    """Static mode holds max_seq_len positions: say so before any work, not when the cache runs out."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise fail("prompt", "is empty: give at least one token")
    longest = max(map(len, prompts))
    if model.is_static and longest + max_new_tokens > model.max_seq_len:
        raise fail("max_seq_len", f"the prompt ({longest} tokens) plus max_new_tokens ({max_new_tokens}) needs "
                   f"{longest + max_new_tokens} positions, but the model was loaded with max_seq_len "
                   f"{model.max_seq_len}: shorten the prompt, generate fewer tokens, raise max_seq_len (at most the "
                   f"context length, {model.spec.context_length}) or use dynamic mode")


def capacity_for(model: Model, positions: int, padding: int) -> int:
    """The cache length that lets rows hold `positions` tokens and the mask mark one more."""
    if model.is_static:
        return model.max_seq_len
    return min(padding * (positions // padding + 1), model.spec.context_length)


def window(rows: list[list[int]], context_length: int) -> list[list[int]]:
    """The last tokens of each row that fit the context, with room to go on."""
    keep = max(1, int(context_length * SLIDE_KEEP))
    log.warning("the text passed the model's context length (%d tokens): its oldest tokens slide out, "
                "and the last %d are run again", context_length, keep)
    return [row[-keep:] for row in rows]


def prefill(binding: DecoderBinding, rows: list[list[int]]) -> list[int]:
    """Run right-padded prompts from an empty cache; returns how many positions each row holds."""
    lengths = [len(row) for row in rows]
    binding.feed(rows, lengths)
    return lengths


def next_tokens(binding: DecoderBinding, sampler: Sampler, history: list[list[int]]) -> np.ndarray:
    """The next token of every row: greedy downloads only the ids, sampling the logits."""
    if sampler.params.is_greedy:
        return binding.take_argmax()
    tokens = sampler(binding.read_logits(), history)
    binding.write_tokens(tokens)
    return tokens


def generate_step(model: Model, prompts: list[list[int]], max_new_tokens: int, sampler: Sampler,
                  padding: int = 512) -> Iterator[np.ndarray]:
    """Yields the next token of every row [batch], max_new_tokens times; stop early by leaving the loop.

    Dynamic mode grows the cache by `padding` positions on the device whenever it is full, and past the
    model's context length slides every row to its last tokens and runs them again (with a notice).
    """
    check_fits(model, prompts, max_new_tokens)
    context_length = model.spec.context_length
    history = [list(p) for p in prompts]
    rows = history if max(map(len, history)) < context_length else window(history, context_length)
    binding = DecoderBinding(model, len(rows), capacity_for(model, max(map(len, rows)), padding))
    lengths = prefill(binding, rows)
    for step in range(max_new_tokens):
        tokens = next_tokens(binding, sampler, history)
        yield tokens
        if step + 1 == max_new_tokens:
            return
        for row, token in zip(history, tokens):
            row.append(int(token))
        lengths = [n + 1 for n in lengths]  # once this step's tokens are in
        if max(lengths) >= context_length:
            lengths = prefill(binding, window(history, context_length))
            continue
        if max(lengths) >= binding.capacity:
            binding.grow(capacity_for(model, max(lengths), padding))
        binding.decode()


def generate_ids(model: Model, prompts: list[list[int]], options: GenerateOptions,
                 eos_token_ids: tuple[int, ...] = ()) -> list[list[int]]:
    """Each row's new tokens, up to and including its first EOS (unless ignore_eos), or max_new_tokens."""
    eos = set() if options.ignore_eos else set(eos_token_ids)
    outputs: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for tokens in generate_step(model, prompts, options.max_new_tokens, Sampler(options.sampling), options.padding):
        for row, token in enumerate(tokens):
            if not done[row]:
                outputs[row].append(int(token))
                done[row] = int(token) in eos
        if all(done):
            break
    return outputs
