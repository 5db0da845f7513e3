"""Rotary position embeddings, computed in float64 from the model's rope parameters.

The same function gives the tables the graph holds and the values the runtime feeds a prompt, so the two
agree bit for bit.
"""

from __future__ import annotations

import numpy as np

from .. import model_format as io
from ..checkpoint.spec import ModelSpec


def inverse_frequencies(spec: ModelSpec) -> np.ndarray:
    """[head_dim / 2] float64, with the spec's rope scaling (linear, or Llama 3's NTK-by-parts) applied."""
    inv_freq = 1.0 / spec.rope_theta ** (np.arange(0, spec.head_dim, 2, dtype=np.float64) / spec.head_dim)
    return inv_freq if spec.rope_scaling is None else spec.rope_scaling.scale_inv_freq(inv_freq)


def rotary_embeddings(spec: ModelSpec, positions: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of the given positions, each [*positions.shape, head_dim / 2]."""
    angles = np.asarray(positions, np.float64)[..., None] * inverse_frequencies(spec)
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def cos_sin_tables(spec: ModelSpec, num_positions: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin, each [num_positions, head_dim / 2]: the caches GroupQueryAttention rotates with."""
    return rotary_embeddings(spec, np.arange(num_positions), dtype)


def prompt_positions(rows: list[int], lengths: list[int]) -> np.ndarray:
    """[batch, longest row] int64: the position of each token fed this step.

    rows[b] tokens are fed to row b, which then holds lengths[b] positions, so its new tokens sit at
    lengths[b] - rows[b] onwards. Padding after a row's tokens gets the positions that follow (never read).
    """
    longest = max(rows)
    starts = np.array(lengths, np.int64) - np.array(rows, np.int64)
    return starts[:, None] + np.arange(longest, dtype=np.int64)


def prompt_rotary_feeds(spec: ModelSpec, rows: list[int], lengths: list[int], dtype) -> dict[str, np.ndarray]:
    """The `cos` and `sin` inputs of a step that feeds rows[b] tokens to row b, which then holds lengths[b]
    positions (a model with the seed's rotary inputs: docs/model-format.md)."""
    cos, sin = rotary_embeddings(spec, prompt_positions(rows, lengths), dtype)
    return {io.COS: cos, io.SIN: sin}
