"""Weights as the graph wants them: read from the checkpoint, cast or quantized, written, let go.

`Weights.linear(b, x, names, out)` emits y = x @ W.T for the canonical weights `names` stacked along
their output rows (one MatMul for Q, K and V when packed), as MatMul or MatMulNBits by precision.
`Weights.embedding(b, ids)` reads rows of the embedding table: a Gather, or in int4 a GatherBlockQuantized of
8-bit blocks, or of 4-bit blocks (shared with a quantized tied lm_head).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..checkpoint import names as canonical
from ..checkpoint.base import Checkpoint, all_finite
from ..checkpoint.spec import ModelSpec
from ..errors import fail
from ..quant.int4 import Int4Weight, quantize_int4
from ..quant.int8 import quantize_int8
from ..quant.options import QuantOptions
from .builder import MS_DOMAIN, GraphBuilder

LM_HEAD_OUTPUT = "lm_head"  # the lm_head node's output, and the prefix of its weights' initializers


def embedding_form(precision: str, quant: QuantOptions, spec: ModelSpec, reads_quantized_tables: bool) -> str:
    """The form the embedding table takes: quant.embeddings where it applies, else float."""
    if precision != "int4" or not reads_quantized_tables:
        return "float"
    if spec.tie_word_embeddings and not quant.quantize_lm_head:
        return "float"  # the float lm_head's table serves both: a quantized copy would only add bytes
    return quant.embeddings


def made_together(make: Callable[[], dict[str, np.ndarray]]) -> Callable[[str], np.ndarray]:
    """A getter of arrays that one computation makes together (codes and scales), made on the first call and each
    handed out once, then let go: the weight store writes each when it first needs it."""
    parts: dict[str, np.ndarray] = {}

    def part(name: str) -> np.ndarray:
        if not parts:
            parts.update(make())
        return parts.pop(name)

    return part


class Weights:
    def __init__(self, checkpoint: Checkpoint, spec: ModelSpec, precision: str, activation_dtype: str,
                 quant: QuantOptions, on_read=None, reads_quantized_tables: bool = False):
        self.checkpoint = checkpoint
        self.spec = spec  # the checkpoint's, or fewer layers of it
        self.precision = precision
        self.dtype = np.dtype(activation_dtype)
        self.quant = quant
        self.embedding_form = embedding_form(precision, quant, spec, reads_quantized_tables)
        self.kept_as_stored = 0  # int4 weights taken from the checkpoint's own 4-bit blocks (GGUF Q4_0)
        self.on_read = on_read or (lambda name, nbytes: None)

    def read(self, name: str) -> np.ndarray:
        tensor = self.checkpoint.checked(name)
        self.on_read(name, tensor.nbytes)
        return tensor

    def cast(self, name: str, tensor: np.ndarray) -> np.ndarray:
        """`tensor` in the activation dtype, failing where a narrowing cast made a checkpoint value infinite."""
        with np.errstate(over="ignore"):  # reported below, with the tensor's name
            converted = tensor.astype(self.dtype)
        return self.in_range(tensor_label([name]), converted) if converted.itemsize < tensor.itemsize else converted

    def in_range(self, what: str, converted: np.ndarray) -> np.ndarray:
        """`converted` (a tensor cast, or quantization scales; `what` names the tensors) unchanged, or an error if it
        holds an infinity that the finite checkpoint did not: a value past float16's ±65504."""
        if converted.dtype == np.float16 and not all_finite(converted):
            raise fail(self.checkpoint.path, f"{what} holds values beyond float16's range (±65504), which would be "
                                             "infinite in this model: build it with --precision fp32")
        return converted

    def stacked(self, names: list[str], cast: bool = False) -> np.ndarray:
        """[sum of out rows, in]: the canonical weights stacked along their outputs, each in the activation dtype
        if `cast`."""
        parts = [self.cast(n, self.read(n)) if cast else self.read(n) for n in names]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def vector(self, b: GraphBuilder, name: str) -> str:
        """A norm weight or a float embedding table, in the activation dtype."""
        return b.weights.get(name, lambda: self.cast(name, self.read(name)))

    def embedding(self, b: GraphBuilder, input_ids: str) -> str:
        """[B, S] token ids -> [B, S, H] rows of the embedding table."""
        if self.embedding_form == "int8":
            return self._int8_embedding(b, input_ids)
        if self.embedding_form == "int4":
            return self._int4_embedding(b, input_ids)
        return b.op("Gather", self.vector(b, canonical.EMBED), input_ids, name="embed")

    def _int8_embedding(self, b: GraphBuilder, input_ids: str) -> str:
        def quantize() -> dict:
            table = quantize_int8(self.read(canonical.EMBED), self.quant.block_size, self.dtype)
            return {"codes": table.codes, "scales": self.in_range(tensor_label([canonical.EMBED]), table.scales)}

        part = made_together(quantize)
        codes = b.weights.get("embed.weight.int8", lambda: part("codes"))  # [vocab, H]
        scales = b.weights.get("embed.weight.int8_scales", lambda: part("scales"))  # [vocab, k_blocks]
        return b.op("GatherBlockQuantized", codes, input_ids, scales, domain=MS_DOMAIN, gather_axis=0,
                    quantize_axis=1, block_size=self.quant.block_size, bits=8, name="embed")

    def _int4_embedding(self, b: GraphBuilder, input_ids: str) -> str:
        key = LM_HEAD_OUTPUT + ".weight" if self.spec.tie_word_embeddings else "embed.weight"
        packed, scales, _ = self._int4(b, key, [canonical.EMBED])
        vocab, hidden = canonical.expected_shape(canonical.EMBED, self.spec)
        block = self.quant.block_size
        # The packed table is [vocab, k_blocks, block_size / 2] as MatMulNBits wants it: gather whole rows of
        # blocks, dequantized along the last axis, then flatten each row's blocks, whose last one is padded with
        # zeros where the block size does not divide the hidden size.
        block_scales = b.op("Reshape", scales, b.const([vocab, -1, 1]))
        rows = b.op("GatherBlockQuantized", packed, input_ids, block_scales, domain=MS_DOMAIN, gather_axis=0,
                    quantize_axis=2, block_size=block, bits=4)
        padded = -(-hidden // block) * block
        if padded == hidden:
            return b.op("Reshape", rows, b.const([0, 0, hidden]), name="embed")
        flat = b.op("Reshape", rows, b.const([0, 0, padded]))
        return b.op("Slice", flat, b.const([0]), b.const([hidden]), b.const([2]), name="embed")

    def linear(self, b: GraphBuilder, x: str, names: list[str], out: str) -> str:
        key = out + ".weight"
        if self.precision == "int4":
            q = self.quant
            n = sum(canonical.expected_shape(name, self.spec)[0] for name in names)
            k = canonical.expected_shape(names[0], self.spec)[1]
            packed, scales, zero_points = self._int4(b, key, names)
            return b.op("MatMulNBits", x, packed, scales, zero_points, name=out, domain=MS_DOMAIN,
                        K=k, N=n, bits=4, block_size=q.block_size, accuracy_level=q.accuracy_level)
        def transposed() -> np.ndarray:  # [in, out]
            return np.ascontiguousarray(self.stacked(names, cast=True).T)

        return b.op("MatMul", x, b.weights.get(key, transposed), name=out)

    def _int4(self, b: GraphBuilder, key: str, names: list[str]) -> tuple[str, str, str | None]:
        """The initializers of the weights `names` stacked and quantized: packed codes [N, k_blocks,
        block_size / 2], scales [N * k_blocks] and (asymmetric) zero points; made once per key."""
        def quantize() -> dict:
            qw = self._int4_weight(names)
            return {"int4": qw.packed, "scales": qw.scales.reshape(-1), "zero_points": qw.zero_points}

        part = made_together(quantize)
        packed = b.weights.get(key + ".int4", lambda: part("int4"))
        scales = b.weights.get(key + ".scales", lambda: part("scales"))
        zero_points = None
        if not self.quant.symmetric:
            zero_points = b.weights.get(key + ".zero_points", lambda: part("zero_points").reshape(-1))
        return packed, scales, zero_points

    def _int4_weight(self, names: list[str]) -> Int4Weight:
        """The weights `names` stacked as 4-bit blocks: the checkpoint's own where it stores every one of them in
        exactly that form (lossless), else quantized from float."""
        q = self.quant
        stored = [self.checkpoint.checked_int4_blocks(name, q.block_size) for name in names] if q.symmetric else []
        if stored and all(w is not None for w in stored):
            for name, w in zip(names, stored):
                self.on_read(name, w.packed.nbytes + w.scales.nbytes)
            self.kept_as_stored += len(names)
            return Int4Weight(np.concatenate([w.packed for w in stored]),
                              np.concatenate([w.scales for w in stored]).astype(self.dtype), None,
                              stored[0].k, sum(w.n for w in stored), q.block_size)
        qw = quantize_int4(self.stacked(names), q.block_size, q.symmetric, self.dtype)
        self.in_range(tensor_label(names), qw.scales)
        return qw


def tensor_label(names: list[str]) -> str:
    """"tensor a" or "tensors a, b": for messages."""
    return ("tensor " if len(names) == 1 else "tensors ") + ", ".join(names)
