"""Weights as the graph wants them: read from the checkpoint, cast or quantized, written, let go.

`Weights.linear(b, x, names, out)` emits y = x @ W.T for the canonical weights `names` stacked along
their output rows (one MatMul for Q, K and V when packed), as MatMul or MatMulNBits by precision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..checkpoint import names as canonical
from ..checkpoint.base import Checkpoint
from ..checkpoint.spec import ModelSpec
from ..quant.int4 import quantize_int4
from .builder import MS_DOMAIN, GraphBuilder


@dataclass(frozen=True)
class QuantOptions:
    block_size: int = 32
    # Symmetric blocks run fastest everywhere. Min/max blocks with float zero points (symmetric=False) are
    # lossless on GGUF Q4_1 sources and closer on others, but the CPU provider has no fast kernel for them.
    symmetric: bool = True
    accuracy_level: int = 4  # MatMulNBits: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations (CPU)
    quantize_lm_head: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class Weights:
    def __init__(self, checkpoint: Checkpoint, spec: ModelSpec, precision: str, activation_dtype: str,
                 quant: QuantOptions, on_read=None):
        self.checkpoint = checkpoint
        self.spec = spec  # the checkpoint's, or fewer layers of it
        self.precision = precision
        self.dtype = np.dtype(activation_dtype)
        self.quant = quant
        self.on_read = on_read or (lambda name, nbytes: None)

    def read(self, name: str) -> np.ndarray:
        tensor = self.checkpoint.checked(name)
        self.on_read(name, tensor.nbytes)
        return tensor

    def stacked(self, names: list[str]) -> np.ndarray:
        """[sum of out rows, in]: the canonical weights stacked along their outputs."""
        if len(names) == 1:
            return self.read(names[0])
        return np.concatenate([self.read(n) for n in names], axis=0)

    def vector(self, b: GraphBuilder, name: str) -> str:
        """A norm weight or an embedding table, in the activation dtype.

        Embeddings stay in float: Gather reads one row per token, so int4 would save memory, not time.
        """
        return b.weights.get(name, lambda: self.read(name).astype(self.dtype))

    def linear(self, b: GraphBuilder, x: str, names: list[str], out: str, quantize: bool = True) -> str:
        key = out + ".weight"
        if self.precision == "int4" and quantize:
            return self._matmul_nbits(b, x, key, names, out)
        w = b.weights.get(key, lambda: np.ascontiguousarray(self.stacked(names).T.astype(self.dtype)))  # [in, out]
        return b.op("MatMul", x, w, name=out)

    def _matmul_nbits(self, b: GraphBuilder, x: str, key: str, names: list[str], out: str) -> str:
        q = self.quant
        n = sum(canonical.expected_shape(name, self.spec)[0] for name in names)
        k = canonical.expected_shape(names[0], self.spec)[1]
        parts = {}

        def quantized(part: str):
            if not parts:
                qw = quantize_int4(self.stacked(names), q.block_size, q.symmetric, self.dtype)
                parts.update(int4=qw.packed, scales=qw.scales.reshape(-1), zero_points=qw.zero_points)
            return parts.pop(part)  # each part is written once, then let go

        packed = b.weights.get(key + ".int4", lambda: quantized("int4"))
        scales = b.weights.get(key + ".scales", lambda: quantized("scales"))
        zero_points = None
        if not q.symmetric:
            zero_points = b.weights.get(key + ".zero_points", lambda: quantized("zero_points").reshape(-1))
        return b.op("MatMulNBits", x, packed, scales, zero_points, name=out, domain=MS_DOMAIN,
                    K=k, N=n, bits=4, block_size=q.block_size, accuracy_level=q.accuracy_level)
