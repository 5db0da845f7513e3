"""Rotary position embedding tables, computed once at build time from the model's rope parameters."""

from __future__ import annotations

import numpy as np

from ..checkpoint.spec import ModelSpec


def inverse_frequencies(spec: ModelSpec) -> np.ndarray:
    """[head_dim / 2] float64, with the spec's rope scaling (linear, or Llama 3's NTK-by-parts) applied."""
    inv_freq = 1.0 / spec.rope_theta ** (np.arange(0, spec.head_dim, 2, dtype=np.float64) / spec.head_dim)
    return inv_freq if spec.rope_scaling is None else spec.rope_scaling.scale_inv_freq(inv_freq)


def cos_sin_tables(spec: ModelSpec, num_positions: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin, each [num_positions, head_dim / 2]: the caches GroupQueryAttention rotates with."""
    angles = np.outer(np.arange(num_positions, dtype=np.float64), inverse_frequencies(spec))
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
