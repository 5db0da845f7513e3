"""Perplexity of a built model over a text: exp of the mean negative log-likelihood of each next token.

A model built with all_logits runs once over the whole sequence (`perplexity`); a generation model is
teacher-forced through the runtime, one token a step (`teacher_forced_perplexity`): slower, same number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import model_format as io
from ..errors import fail
from .check import prompt_logits


def perplexity(folder: Path, ids: list[int]) -> float:
    manifest = io.Manifest.load(folder)
    if not manifest.all_logits:
        raise fail(folder, "perplexity needs logits for every position: build the model with --all-logits")
    logits = prompt_logits(folder, ids).astype(np.float64)  # [S, vocab]
    return float(np.exp(next_token_nll(logits[:-1], ids[1:]).mean()))


def next_token_nll(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    """-log p(target) under each row of logits [N, vocab]."""
    logits = np.asarray(logits, np.float64)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    return -log_probs[np.arange(len(targets)), targets]


def teacher_forced_perplexity(model, ids: list[int], on_step=lambda: None) -> float:
    """The same, for a model loaded by the runtime (any precision, target and provider): the text's first token
    as a prompt, then each next token fed in place of the model's own, reading the logits of every step."""
    from ..runtime.binding import DecoderBinding

    if len(ids) < 2:
        raise fail("text", f"has {len(ids)} token(s): perplexity needs at least 2")
    if model.max_seq_len is not None and len(ids) > model.max_seq_len:
        raise fail("text", f"has {len(ids)} tokens, more than the model's max_seq_len {model.max_seq_len}")
    binding = DecoderBinding(model, 1, model.max_seq_len or len(ids))
    binding.feed([ids[:1]], [1])
    logits = [binding.read_logits()[0].copy()]
    for token in ids[1:-1]:
        binding.write_tokens(np.array([token]))
        binding.decode()
        logits.append(binding.read_logits()[0].copy())
        on_step()
    return float(np.exp(next_token_nll(np.stack(logits), ids[1:]).mean()))
