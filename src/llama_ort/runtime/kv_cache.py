"""The KV cache: each layer's keys and values on the device, written in place by GroupQueryAttention."""

from __future__ import annotations

import onnxruntime as ort

from .. import model_format as io
from .pad import Padder
from .session import Model

SEQ_AXIS = 2  # [batch, kv_heads, max_seq_len, head_dim]


class KVCache:
    """past_key.i and present_key.i are bound to the same buffer, so a step appends its rows in place.

    The buffers start uninitialized: attention reads only the positions the attention mask marks.
    """

    def __init__(self, model: Model, batch: int, capacity: int):
        spec = model.spec
        shape = (batch, spec.num_kv_heads, capacity, spec.head_dim)
        self.capacity = capacity
        self.keys = [model.allocate(shape, model.kv_dtype) for _ in range(spec.num_layers)]
        self.values = [model.allocate(shape, model.kv_dtype) for _ in range(spec.num_layers)]

    def bind(self, binding: ort.IOBinding) -> None:
        for i, (key, value) in enumerate(zip(self.keys, self.values)):
            binding.bind_ortvalue_input(io.past_key(i), key)
            binding.bind_ortvalue_output(io.present_key(i), key)
            binding.bind_ortvalue_input(io.past_value(i), value)
            binding.bind_ortvalue_output(io.present_value(i), value)

    def grow(self, padder: Padder, capacity: int) -> None:
        """Make room for `capacity` positions, keeping every cached row (the caller rebinds).

        One buffer at a time, so the device holds at most one layer's old and new buffer together.
        """
        for buffers in (self.keys, self.values):
            for i, old in enumerate(buffers):
                buffers[i] = padder.grow(old, SEQ_AXIS, capacity)
        self.capacity = capacity
