"""GGUF files (llama.cpp's format): metadata -> ModelSpec, tensors dequantized to float32 on read.

The file is memory-mapped and its layout read by gguf_file.py. Quantized tensors are dequantized a band of
rows at a time into one output array, so reading costs about the tensor's float32 size and no more. llama.cpp
stores Q and K rows in interleaved rotary order; they are turned back into rotate-half order band by band.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
from gguf.quants import dequantize

from ..errors import fail
from ..quant.int4 import Int4Weight, pack_codes
from . import names
from .base import Checkpoint
from .gguf_file import GGUFFile
from .spec import ARCHITECTURES, ModelSpec, RopeScaling

Q = gguf.GGMLQuantizationType
VIEWED = (Q.F32, Q.F16)  # returned as views of the map
ROPE_FREQS = "rope_freqs.weight"  # llama.cpp's form of Llama 3.1 rope scaling: one divisor per frequency
BAND_ELEMENTS = 1 << 22  # dequantize ~16 MB of float32 at a time
# ggml's block_q4_0: 32 weights as a float16 scale d and 16 bytes of 4-bit codes q, w = d * (q - 8), weight j
# in the low nibble of byte j and weight j + 16 in its high nibble.
Q4_0_BLOCK = 32
Q4_0_BYTES = 2 + Q4_0_BLOCK // 2
MISSING = object()


class GGUFCheckpoint(Checkpoint):
    """One .gguf file. `file` is its open GGUFFile: the tokenizer.* metadata are in its fields."""

    format = "gguf"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise fail(self.path, "no such file")
        try:
            self.file = GGUFFile(self.path)
        except Exception as e:  # ValueError, struct.error, UnicodeDecodeError ... on damaged files
            raise fail(self.path, f"is not a readable GGUF file, or is truncated ({type(e).__name__}: {e})") from None
        self._tensors = {t.name: t for t in self.file.tensors}
        self.spec = self._spec()

    def metadata(self, key: str, default=MISSING):
        """The value of a metadata key (a number, string or list), `default` if absent."""
        if key not in self.file.fields:
            if default is MISSING:
                raise fail(self.path, f"metadata {key} is missing")
            return default
        return self.file.fields[key]

    def _spec(self) -> ModelSpec:
        arch = self.metadata("general.architecture")
        if arch not in ARCHITECTURES:
            raise fail(self.path, f"general.architecture is {arch!r}; llama-ort reads {', '.join(ARCHITECTURES)}")
        if self.metadata("split.count", 1) > 1:
            raise fail(self.path, "is one part of a split GGUF: merge the parts first (llama-gguf-split --merge)")

        def hparam(suffix: str, default=MISSING):  # the architecture's own keys: llama.block_count ...
            return self.metadata(f"{arch}.{suffix}", default)

        hidden_size, num_heads = hparam("embedding_length"), hparam("attention.head_count")
        # As llama.cpp: head size from key_length, else hidden / heads; rotary must span the whole head.
        head_dim = hparam("attention.key_length", hidden_size // num_heads)
        if hparam("rope.dimension_count", head_dim) != head_dim:
            raise fail(self.path, f"rotary embeddings cover {hparam('rope.dimension_count')} of {head_dim} head dims; "
                                  "llama-ort supports only full-head rotary")
        rope_theta = float(hparam("rope.freq_base", 10000.0))
        vocab_size = hparam("vocab_size", None)
        if vocab_size is None:
            tokens = self.file.fields.get("tokenizer.ggml.tokens")
            if tokens is None:
                raise fail(self.path, f"metadata {arch}.vocab_size and tokenizer.ggml.tokens are both missing")
            vocab_size = len(tokens)
        end_ids = [self.metadata(f"tokenizer.ggml.{k}_token_id", None) for k in ("eos", "eot", "eom")]
        return ModelSpec(
            num_layers=hparam("block_count"),
            hidden_size=hidden_size,
            num_heads=num_heads,
            num_kv_heads=hparam("attention.head_count_kv", num_heads),
            intermediate_size=hparam("feed_forward_length"),
            vocab_size=vocab_size,
            head_dim=head_dim,
            rope_theta=rope_theta,
            rope_scaling=self._rope_scaling(hparam, rope_theta, head_dim),
            rms_norm_eps=float(hparam("attention.layer_norm_rms_epsilon", 1e-5)),
            tie_word_embeddings=names.to_gguf(names.LM_HEAD) not in self._tensors,
            bos_token_id=self.metadata("tokenizer.ggml.bos_token_id", None),
            eos_token_ids=tuple(dict.fromkeys(i for i in end_ids if i is not None)),  # EOS, then end-of-turn ids
            context_length=hparam("context_length"),
            architecture=arch,
            name=self.path.stem,
            where=self.path,
        )

    def _rope_scaling(self, hparam, rope_theta: float, head_dim: int) -> RopeScaling | None:
        if ROPE_FREQS in self._tensors:
            return self._llama3_scaling(rope_theta, head_dim)
        kind = hparam("rope.scaling.type", None)
        scale_linear = hparam("rope.scale_linear", 1.0)  # what older converters wrote instead
        if kind is None and scale_linear != 1.0:
            return RopeScaling("linear", float(scale_linear))
        if kind in (None, "none"):
            return None
        if kind == "linear":
            return RopeScaling("linear", float(hparam("rope.scaling.factor")))
        raise fail(self.path, f"rope scaling type {kind!r} is not supported; llama-ort reads linear and llama3")

    def _llama3_scaling(self, rope_theta: float, head_dim: int) -> RopeScaling:
        """llama.cpp keeps Llama 3.1 scaling only as the resulting divisors. The largest is the factor; its
        converter always used the default low/high factors and original context, which we check."""
        divisors = self._dequantized(self._tensors[ROPE_FREQS]).reshape(-1)
        scaling = RopeScaling("llama3", float(divisors.max()))
        inv_freq = rope_theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
        expected = inv_freq / scaling.scale_inv_freq(inv_freq)
        if divisors.shape != expected.shape or not np.allclose(divisors, expected, rtol=1e-4):
            raise fail(self.path, f"tensor {ROPE_FREQS} is not Llama 3.1 rope scaling with the default parameters")
        return scaling

    def tensor_names(self) -> list[str]:
        return [n for n in names.canonical_names(self.spec.num_layers, False) if names.to_gguf(n) in self._tensors]

    def read(self, name: str) -> np.ndarray:
        gguf_name = names.to_gguf(name)
        if gguf_name not in self._tensors:
            raise fail(self.path, f"holds no tensor {gguf_name} (the {name} of Hugging Face's layout)")
        tensor = self._tensors[gguf_name]
        heads = names.rotary_heads(name, self.spec)
        if tensor.tensor_type in VIEWED:
            w = tensor.data  # a view of the map
            return w if heads is None else names.rotate_half_rows(w, heads)
        return self._dequantized(tensor, heads)

    def int4_blocks(self, name: str, block_size: int) -> Int4Weight | None:
        """Q4_0 tensors at block 32 are MatMulNBits' symmetric blocks already: only the nibbles move."""
        tensor = self._tensors.get(names.to_gguf(name))
        if tensor is None or tensor.tensor_type != Q.Q4_0 or block_size != Q4_0_BLOCK:
            return None
        n, k = tensor.shape
        blocks = np.asarray(tensor.data).reshape(n, k // Q4_0_BLOCK, Q4_0_BYTES)
        scales = np.ascontiguousarray(blocks[..., :2]).view(np.float16)[..., 0]  # [n, k_blocks]
        low_high = blocks[..., 2:]
        packed = pack_codes(np.concatenate([low_high & 0x0F, low_high >> 4], axis=-1))  # codes in weight order
        heads = names.rotary_heads(name, self.spec)
        if heads is not None:
            packed, scales = names.rotate_half_rows(packed, heads), names.rotate_half_rows(scales, heads)
        return Int4Weight(packed, scales, None, k, n, Q4_0_BLOCK)

    def _dequantized(self, tensor, heads: int | None = None) -> np.ndarray:
        """Dequantize band by band into one float32 array; bands hold whole heads so Q/K reorder per band."""
        shape = tensor.shape
        rows = tensor.data.reshape(-1, tensor.data.shape[-1])  # [rows, bytes per row]
        out = np.empty(shape, dtype=np.float32).reshape(rows.shape[0], -1)
        rows_per_head = rows.shape[0] // heads if heads else 1
        band = max(1, BAND_ELEMENTS // out.shape[1] // rows_per_head) * rows_per_head
        for start in range(0, rows.shape[0], band):
            try:
                with np.errstate(invalid="ignore", over="ignore"):  # a NaN or infinite scale: checked() names it
                    w = dequantize(rows[start:start + band], tensor.tensor_type)
            except NotImplementedError:
                raise fail(self.path, f"tensor {tensor.name} has type {tensor.tensor_type.name}, which llama-ort "
                                      "cannot dequantize (gguf's numpy dequantizers lack it)") from None
            out[start:start + band] = w if heads is None else names.rotate_half_rows(w, w.shape[0] // rows_per_head)
        return out.reshape(shape)

