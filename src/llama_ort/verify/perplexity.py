"""Perplexity of a built model over a text: exp of the mean negative log-likelihood of each next token.

Needs a model built with all_logits (logits for every position), run once over the whole sequence.
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
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    nll = -log_probs[np.arange(len(ids) - 1), ids[1:]]
    return float(np.exp(nll.mean()))
