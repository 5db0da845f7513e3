"""Perplexity of a built model over a text: exp of the mean negative log-likelihood of each next token.

Needs a model built with all_logits (logits for every position), run once over the whole sequence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from .. import model_format as io
from ..checkpoint.spec import ModelSpec
from ..errors import fail


def perplexity(folder: Path, ids: list[int]) -> float:
    manifest = io.Manifest.load(folder)
    if not manifest.all_logits:
        raise fail(folder, "perplexity needs logits for every position: build the model with --all-logits")
    spec = ModelSpec.from_dict(manifest.spec)
    options = ort.SessionOptions()
    options.add_free_dimension_override_by_name(io.MAX_SEQ_LEN, len(ids))
    session = ort.InferenceSession(str(folder / manifest.model_file), options, providers=["CPUExecutionProvider"])
    cache = np.zeros((1, spec.num_kv_heads, len(ids), spec.head_dim), manifest.kv_dtype)
    feeds = {io.INPUT_IDS: np.array([ids], np.int64), io.ATTENTION_MASK: np.ones((1, len(ids)), np.int64)}
    for i in range(spec.num_layers):
        feeds[io.past_key(i)] = feeds[io.past_value(i)] = cache
    logits = session.run([io.LOGITS], feeds)[0][0].astype(np.float64)  # [S, vocab]
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    nll = -log_probs[np.arange(len(ids) - 1), ids[1:]]
    return float(np.exp(nll.mean()))
