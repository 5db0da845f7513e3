"""The KV cache: each layer's keys and values on the device, written by GroupQueryAttention."""

from __future__ import annotations

import onnxruntime as ort

from .. import model_format as io
from .pad import Padder
from .session import Model

SEQ_AXIS = 2  # [batch, kv_heads, max_seq_len, head_dim]


class KVCache:
    """Where the provider allows it, past_key.i and present_key.i are bound to the same buffer, so a step
    appends its rows in place. Otherwise there are two copies that take turns like the masks: turn t reads
    copy t and writes copy 1 - t (attention copies the past over, then appends).

    The buffers start uninitialized: attention reads only the positions the attention mask marks.
    """

    def __init__(self, model: Model, batch: int, capacity: int):
        self.model = model
        self.batch = batch
        self.capacity = capacity
        self.copies = [self._allocate(capacity) for _ in range(1 if model.provider.updates_kv_in_place else 2)]

    def bind(self, binding: ort.IOBinding, turn: int) -> None:
        past, present = self.copies[turn % len(self.copies)], self.copies[(turn + 1) % len(self.copies)]
        for i in range(self.model.spec.num_layers):
            binding.bind_ortvalue_input(io.past_key(i), past.keys[i])
            binding.bind_ortvalue_output(io.present_key(i), present.keys[i])
            binding.bind_ortvalue_input(io.past_value(i), past.values[i])
            binding.bind_ortvalue_output(io.present_value(i), present.values[i])

    def grow(self, padder: Padder, capacity: int, turn: int) -> None:
        """Make room for `capacity` positions, keeping every row the next step (turn `turn`) reads; the caller
        rebinds.

        One buffer at a time, so the device holds at most one layer's old and new buffer together.
        """
        current = self.copies[turn % len(self.copies)]
        for buffers in (current.keys, current.values):
            for i, old in enumerate(buffers):
                buffers[i] = padder.grow(old, SEQ_AXIS, capacity)
        if len(self.copies) == 2:  # the other copy is only written: drop it before allocating its successor
            self.copies[1 - turn % 2] = None
            self.copies[1 - turn % 2] = self._allocate(capacity)
        self.capacity = capacity

    def _allocate(self, capacity: int) -> _Layers:
        spec = self.model.spec
        shape = (self.batch, spec.num_kv_heads, capacity, spec.head_dim)
        allocate = self.model.allocate
        return _Layers([allocate(shape, self.model.kv_dtype) for _ in range(spec.num_layers)],
                       [allocate(shape, self.model.kv_dtype) for _ in range(spec.num_layers)])


class _Layers:
    """One copy of the cache: a key and a value buffer per layer."""

    def __init__(self, keys: list[ort.OrtValue], values: list[ort.OrtValue]):
        self.keys = keys
        self.values = values
