"""The serving engine's static KV cache: one buffer per layer of [slots, kv_heads, max_seq_len, head_dim].

Allocated once (the seed's static cache), so the provider plans every buffer once. A slot holds one request's
positions; its part of each buffer is contiguous, and so is the part of the first n slots: a decode step binds
the first n slots as a batch of n, a prompt chunk binds one slot as a batch of 1. past and present are bound to
the same address, so GroupQueryAttention appends in place.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .. import model_format as io
from ..errors import fail
from .session import Model


class SlotCache:
    def __init__(self, model: Model, slots: int, max_seq_len: int):
        spec = model.spec
        self.model = model
        self.slots = slots
        self.max_seq_len = max_seq_len
        self.slot_shape = (spec.num_kv_heads, max_seq_len, spec.head_dim)
        self.slot_bytes = int(np.prod(self.slot_shape)) * model.kv_dtype.itemsize
        # Zeroed, not left uninitialized: a step also runs the idle slots below its busiest one (their rows are
        # thrown away), and garbage there could be NaN.
        zeros = np.zeros((slots, *self.slot_shape), model.kv_dtype)
        self.keys, self.values = [], []
        for _ in range(spec.num_layers):
            for buffers in (self.keys, self.values):
                buffer = model.allocate(zeros.shape, model.kv_dtype)
                buffer.update_inplace(zeros)
                buffers.append(buffer)

    @staticmethod
    def bytes_needed(model: Model, slots: int, max_seq_len: int) -> int:
        spec = model.spec
        return 2 * spec.num_layers * slots * spec.num_kv_heads * max_seq_len * spec.head_dim * model.kv_dtype.itemsize

    def bind(self, binding: ort.IOBinding, first: int, count: int) -> None:
        """Bind slots first .. first + count - 1 as the past and present of a batch of `count` rows."""
        if first < 0 or first + count > self.slots:
            raise fail("slot", f"slots {first}..{first + count - 1} are outside the cache's {self.slots}")
        device_type, device_id = self.model.provider.device_type, self.model.device_id
        shape = [count, *self.slot_shape]
        offset = first * self.slot_bytes
        for i, (key, value) in enumerate(zip(self.keys, self.values)):
            for buffer, past, present in ((key, io.past_key(i), io.present_key(i)),
                                          (value, io.past_value(i), io.present_value(i))):
                address = buffer.data_ptr() + offset
                binding.bind_input(past, device_type, device_id, self.model.kv_dtype, shape, address)
                binding.bind_output(present, device_type, device_id, self.model.kv_dtype, shape, address)
