"""Cutting a weight into the blocks that blockwise quantization scales one by one."""

from __future__ import annotations

import numpy as np


def padded_blocks(w: np.ndarray, block_size: int) -> np.ndarray:
    """W [N, K] -> float32 [N, ceil(K / block_size), block_size], the last block of each row padded with zeros
    (which quantize to the zero code and change no scale)."""
    n, k = w.shape
    k_blocks = -(-k // block_size)
    blocks = np.zeros((n, k_blocks * block_size), np.float32)
    blocks[:, :k] = w
    return blocks.reshape(n, k_blocks, block_size)
