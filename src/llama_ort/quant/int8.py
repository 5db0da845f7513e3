"""Blockwise 8-bit symmetric quantization in com.microsoft.GatherBlockQuantized's layout (bits=8): for tables
that are read a row at a time, such as the embeddings, where 4 bits cost more quality than their size is worth.

A table W [N, K] is cut along K into blocks of `block_size` (the last one may be partial). Each block gets a
scale, max |w| / 127; codes are uint8 and dequantize as (code - 128) * scale, the op's default zero point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blocks import padded_blocks

ZERO_POINT = 128


@dataclass
class Int8Table:
    codes: np.ndarray  # uint8 [N, K]
    scales: np.ndarray  # [N, k_blocks], the activation dtype
    block_size: int


def quantize_int8(w: np.ndarray, block_size: int = 32, scale_dtype=np.float32) -> Int8Table:
    n, k = w.shape
    blocks = padded_blocks(w, block_size)
    scales = (np.abs(blocks).max(axis=2) / 127.0).astype(scale_dtype)
    s = scales.astype(np.float32)[..., None]  # quantize against the scale as stored (possibly fp16)
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s != 0)
    codes = (np.clip(np.round(blocks * inv), -127, 127) + ZERO_POINT).astype(np.uint8)
    return Int8Table(np.ascontiguousarray(codes.reshape(n, -1)[:, :k]), scales, block_size)


def dequantize_int8(q: Int8Table) -> np.ndarray:
    """W [N, K] float32 as GatherBlockQuantized sees it: the reference for tests."""
    n, k = q.codes.shape
    scales = np.repeat(q.scales.astype(np.float32), q.block_size, axis=1)[:, :k]
    return (q.codes.astype(np.float32) - ZERO_POINT) * scales
