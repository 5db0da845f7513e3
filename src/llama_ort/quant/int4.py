"""Blockwise 4-bit round-to-nearest quantization in com.microsoft.MatMulNBits' layout.

A weight W [N, K] (out_features, in_features: the canonical layout) is cut along K into blocks of
`block_size`. Each block gets a scale (and, if asymmetric, a zero point); codes are 0..15 and
dequantize as (code - zero_point) * scale. Two codes share a byte, the lower index in the low nibble.

Asymmetric blocks map their minimum to code 0 and their maximum to code 15, with a zero point in the
scales' float type rather than a 4-bit integer. That keeps any min/max grid exactly: a GGUF Q4_1 tensor
(block 32, w = d * code + m) re-quantizes without loss, where an integer zero point would round m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blocks import padded_blocks

BLOCK_SIZES = (16, 32, 64, 128, 256)  # those MatMulNBits accepts: a power of two from 16 to 256


@dataclass
class Int4Weight:
    packed: np.ndarray  # uint8 [N, k_blocks, block_size / 2]
    scales: np.ndarray  # [N, k_blocks], the activation dtype
    zero_points: np.ndarray | None  # [N, k_blocks] in the scales' type; None when symmetric (code 8 is zero)
    k: int
    n: int
    block_size: int


def quantize_int4(w: np.ndarray, block_size: int = 32, symmetric: bool = True, scale_dtype=np.float32) -> Int4Weight:
    n, k = w.shape
    blocks = padded_blocks(w, block_size)
    k_blocks = blocks.shape[1]

    if symmetric:
        # The value of largest magnitude maps to code 0 (-8 * scale), using the whole signed range as MLAS does.
        idx = np.abs(blocks).argmax(axis=2)[..., None]
        extreme = np.take_along_axis(blocks, idx, axis=2)[..., 0]
        scales = (extreme / -8.0).astype(scale_dtype)
        zero = np.full((n, k_blocks), 8.0, np.float32)
    else:
        lo, hi = blocks.min(axis=2), blocks.max(axis=2)
        scales = ((hi - lo) / 15.0).astype(scale_dtype)
        s = scales.astype(np.float32)
        zero = np.divide(-lo, s, out=np.zeros_like(lo), where=s != 0).astype(scale_dtype).astype(np.float32)

    # Quantize with the scale as stored (possibly fp16), so dequantization reproduces what we rounded against.
    s = scales.astype(np.float32)[..., None]
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s != 0)
    codes = np.clip(np.round(blocks * inv + zero[..., None]), 0, 15).astype(np.uint8)

    zero_points = None if symmetric else zero.astype(scale_dtype)
    return Int4Weight(pack_codes(codes), scales, zero_points, k, n, block_size)


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """uint8 codes 0..15 [..., block_size] -> [..., block_size / 2]: element 2j in the low nibble, 2j+1 high."""
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


def dequantize_int4(q: Int4Weight) -> np.ndarray:
    """W [N, K] float32 as MatMulNBits sees it: the reference for tests."""
    codes = np.empty(q.packed.shape[:2] + (q.block_size,), np.float32)
    codes[..., 0::2] = q.packed & 0x0F
    codes[..., 1::2] = q.packed >> 4
    zero = 8.0 if q.zero_points is None else q.zero_points.astype(np.float32)[..., None]
    w = (codes - zero) * q.scales.astype(np.float32)[..., None]
    return w.reshape(q.n, -1)[:, : q.k]
