"""Rotary position embedding tables, computed once at build time from the model's rope parameters."""

from __future__ import annotations

import math

import numpy as np

from ..checkpoint.spec import ModelSpec


def inverse_frequencies(spec: ModelSpec) -> np.ndarray:
    """[head_dim / 2] float64, with Llama 3's NTK-by-parts or linear scaling applied."""
    dim = spec.head_dim
    inv_freq = 1.0 / spec.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    scaling = spec.rope_scaling
    if scaling is None:
        return inv_freq
    if scaling.kind == "linear":
        return inv_freq / scaling.factor
    # llama3: keep high frequencies, divide low ones by `factor`, interpolate in between.
    low_wavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor
    high_wavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
    smooth = (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor)
    smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    is_medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return np.where(is_medium, smoothed, scaled)


def cos_sin_tables(spec: ModelSpec, num_positions: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin, each [num_positions, head_dim / 2]: the caches GroupQueryAttention rotates with."""
    angles = np.outer(np.arange(num_positions, dtype=np.float64), inverse_frequencies(spec))
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
