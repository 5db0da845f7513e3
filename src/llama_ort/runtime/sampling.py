"""Choosing the next token from logits on the host: temperature, top-k, top-p and a repetition penalty.

Greedy decoding never comes here: the model's own next_token output is the argmax, on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import fail


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0  # 0: greedy
    top_k: int = 0  # 0: every token
    top_p: float = 1.0  # 1: every token
    repetition_penalty: float = 1.0  # 1: none; >1 makes tokens already in the row less likely (CTRL's rule)
    # Whether the prompt's tokens count as seen, as in transformers; False: only the answer's. A question's words
    # come back in its answer ("What is 2 + 2?" -> "... is 4."): counting them turns right answers away.
    penalty_counts_prompt: bool = True
    seed: int | None = None  # the same seed, prompt and model give the same text

    def __post_init__(self):
        if self.temperature < 0:
            raise fail("--temperature", f"must be 0 (greedy) or more, got {self.temperature}")
        if self.top_k < 0:
            raise fail("--top-k", f"must be 0 (off) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise fail("--top-p", f"must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise fail("--repetition-penalty", f"must be positive, got {self.repetition_penalty}")

    @property
    def is_greedy(self) -> bool:
        """Whether the model's on-device argmax is the answer, so no logits need to reach the host."""
        return self.temperature == 0 and self.repetition_penalty == 1


class Sampler:
    """One generation's sampling: a new Sampler for each, since it keeps the random generator and the prompts'
    lengths."""

    def __init__(self, params: SamplingParams):
        self.params = params
        self.rng = np.random.default_rng(params.seed)
        self.prompt_lengths: list[int] | None = None

    def __call__(self, logits: np.ndarray, history: list[list[int]]) -> np.ndarray:
        """Next token per row from logits [batch, vocab]; history[b] is every token of row b so far.

        The first call comes right after the prompt step, so its history is the prompts.
        """
        p = self.params
        if self.prompt_lengths is None:
            self.prompt_lengths = [len(row) for row in history]
        logits = logits.astype(np.float64)  # a copy: the caller's buffer is the device's
        if p.repetition_penalty != 1:
            seen = history if p.penalty_counts_prompt else [row[n:] for row, n in zip(history, self.prompt_lengths)]
            logits = penalize_repeats(logits, seen, p.repetition_penalty)
        if p.temperature == 0:
            return logits.argmax(-1)
        logits /= p.temperature
        if p.top_k:
            logits = keep_top_k(logits, p.top_k)
        if p.top_p < 1:
            logits = keep_top_p(logits, p.top_p)
        return np.array([self.rng.choice(len(row), p=softmax(row)) for row in logits])


def penalize_repeats(logits: np.ndarray, history: list[list[int]], penalty: float) -> np.ndarray:
    """Divide positive logits of seen tokens by `penalty` and multiply negative ones (as transformers does)."""
    for row, seen in zip(logits, history):
        ids = np.unique(np.asarray(seen, np.int64))
        scores = row[ids]
        row[ids] = np.where(scores > 0, scores / penalty, scores * penalty)
    return logits


def keep_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    if k >= logits.shape[-1]:
        return logits
    kth = np.partition(logits, -k, axis=-1)[:, -k, None]
    return np.where(logits < kth, -np.inf, logits)


def keep_top_p(logits: np.ndarray, top_p: float) -> np.ndarray:
    """The smallest set of most likely tokens whose probabilities add up to at least top_p (nucleus sampling)."""
    order = np.argsort(-logits, axis=-1)
    probs = np.take_along_axis(np.apply_along_axis(softmax, -1, logits), order, axis=-1)
    before = np.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
    drop = np.zeros_like(logits, dtype=bool)
    np.put_along_axis(drop, order, before >= top_p, axis=-1)
    return np.where(drop, -np.inf, logits)


def softmax(row: np.ndarray) -> np.ndarray:
    e = np.exp(row - row.max())
    return e / e.sum()
