"""Perplexity of a model over a text: exp of the mean negative log-likelihood of each next token.

The model is loaded with every position's logits (runtime load_model(every_position=True)), and the text goes
through it in windows: each window starts on an empty KV cache and is fed a chunk at a time, each chunk extending
the cache, and the log-likelihoods of a chunk's positions are summed as soon as its logits come back. Memory is
the window's cache plus one chunk's logits, whatever the text's length.

A text that fits one window (by default the model's context length) is scored exactly: every token given all
the text before it. A longer one is scored with a sliding window (Hugging Face's "strided" perplexity): windows
`stride` tokens apart, each scoring only the tokens the one before did not, so every token has at least
`window - stride` tokens of context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .. import model_format as io
from ..errors import fail
from ..graph.rope import prompt_rotary_feeds
from ..graph.target import get_target
from ..runtime.kv_cache import KVCache
from ..runtime.session import Model

# Positions a step feeds: their logits [chunk, vocab] in float32 (49,152 x 4 bytes each for SmolLM2: 50 MB) and
# attention over the cached window are what a step adds to memory. On 2 shared cores, chunks of 512 and 1,024
# scored 4,000 tokens of SmolLM2 fp32 about 10 % faster and 8,000 no faster beyond the noise, for 190 and 500 MB
# more at the peak.
CHUNK = 256
ROWS_AT_ONCE = 64  # rows of logits in one log-softmax: a few MB of temporaries


@dataclass(frozen=True)
class Perplexity:
    value: float
    tokens: int  # of the text, the first one included (it is context, never scored)
    window: int
    stride: int
    windows: int  # 1: scored exactly

    @property
    def is_strided(self) -> bool:
        return self.windows > 1


def perplexity(model: Model, ids: list[int], window: int | None = None, stride: int | None = None, chunk: int = CHUNK,
               on_scored: Callable[[int], None] = lambda count: None) -> Perplexity:
    """Perplexity of `ids` under `model` (loaded with every_position=True). window: tokens a pass holds (default:
    the model's max_seq_len in static mode, else its context length); stride: how far windows move along a longer
    text (default: half the window). on_scored(count) is called as each chunk's tokens are scored."""
    if len(ids) < 2:
        raise fail("text", f"has {len(ids)} token(s): perplexity needs at least 2")
    longest = model.max_seq_len or model.spec.context_length
    window = window or longest
    if not 2 <= window <= longest:
        raise fail("--window", f"{window} tokens: give 2 to {longest} (the model's "
                               f"{'max_seq_len' if model.max_seq_len else 'context length'})")
    stride = stride or window // 2
    if not 1 <= stride < window:  # a window's first token is context only: the next window must start before it
        raise fail("--stride", f"{stride} tokens: give 1 to {window - 1} (less than the window's {window})")
    if get_target(model.manifest.target).shape_only_total_length:
        chunk = window  # its prompts must start on an empty cache: each window is one step
    runner = ChunkRunner(model, model.max_seq_len or min(window, len(ids)))  # static mode: the session's length
    nll, scored, windows = 0.0, 0, 0
    for begin, end, first in spans(len(ids), window, stride):
        for losses in window_losses(runner, ids[begin:end], first - begin, chunk):
            nll += float(losses.sum())
            scored += len(losses)
            on_scored(len(losses))
        windows += 1
    return Perplexity(float(np.exp(nll / scored)), len(ids), window, stride, windows)


def spans(length: int, window: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(begin, end, first): run tokens begin..end-1 and score first..end-1, the ones no earlier window scored."""
    begin, first = 0, 1
    while True:
        end = min(begin + window, length)
        yield begin, end, first
        if end == length:
            return
        begin, first = begin + stride, end


def window_losses(runner: ChunkRunner, ids: list[int], first: int, chunk: int) -> Iterator[np.ndarray]:
    """-log p(ids[t] | ids[:t]) for t from `first` on, a chunk's worth at a time."""
    runner.reset()
    for start in range(0, len(ids) - 1, chunk):
        piece = ids[start:start + chunk]
        logits = runner.extend(piece)  # row j predicts ids[start + j + 1]
        rows = range(max(first - 1, start), min(start + len(piece), len(ids) - 1))
        if rows:
            yield next_token_nll(logits[rows.start - start:rows.stop - start], ids[rows.start + 1:rows.stop + 1])


def next_token_nll(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    """-log p(target) under each row of logits [N, vocab]: log-sum-exp minus the target's logit, ROWS_AT_ONCE rows
    at a time. The exponentials of (logit - row max) <= 0 are float32 and summed in float64: within 1e-7 of doing
    it all in float64, at half the time."""
    out = np.empty(len(targets))
    for start in range(0, len(targets), ROWS_AT_ONCE):
        block = np.asarray(logits[start:start + ROWS_AT_ONCE], np.float32)
        peak = block.max(-1, keepdims=True)
        log_total = np.log(np.exp(block - peak).sum(-1, dtype=np.float64)) + peak[:, 0]
        out[start:start + len(block)] = log_total - block[np.arange(len(block)), targets[start:start + len(block)]]
    return out


class ChunkRunner:
    """One sequence fed a chunk at a time, each chunk extending the KV cache; returns every fed position's logits.

    The cache is bound in place (past and present share a buffer); every other output is allocated by onnxruntime
    in host memory, afresh each step since its shape follows the chunk's."""

    def __init__(self, model: Model, capacity: int):
        self.model = model
        self.capacity = capacity
        self.cached = 0
        self.cache = KVCache(model, 1, capacity)
        self.binding = model.session.io_binding()
        self.host_outputs = [io.LOGITS] + [o.name for o in model.session.get_outputs()
                                           if o.name != io.LOGITS and not o.name.startswith("present")]

    def reset(self) -> None:
        """Start a new sequence: the mask marks no cached position, so the old rows are never read."""
        self.cached = 0

    def extend(self, ids: list[int]) -> np.ndarray:
        """Feed `ids` after the cached positions; returns their logits [len(ids), vocab]."""
        model, length = self.model, self.cached + len(ids)
        mask = np.zeros((1, self.capacity), model.index_dtype)
        mask[0, :length] = 1
        inputs = {io.INPUT_IDS: np.array([ids], model.index_dtype), io.ATTENTION_MASK: mask}
        if model.manifest.rotary_io:
            inputs.update(prompt_rotary_feeds(model.spec, [len(ids)], [length], model.kv_dtype))
        for name, value in inputs.items():
            self.binding.bind_cpu_input(name, value)
        self.binding.clear_binding_outputs()
        for name in self.host_outputs:  # logits first: get_outputs() lists outputs in the order they were bound
            self.binding.bind_output(name)
        self.cache.bind(self.binding)
        model.session.run_with_iobinding(self.binding)
        self.cached = length
        return self.binding.get_outputs()[0].numpy().reshape(len(ids), -1)
