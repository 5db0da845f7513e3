"""The decoder's inputs and outputs for one generation: allocated once on the device and bound once.

Between two greedy steps nothing moves but the next token ids: the KV cache is updated on the device, and the
attention mask, the token ids (where input_ids and next_token have one type) and in the merged layout the rotary
embeddings go from one step to the next on the device. (Where input_ids is int32, as for webgpu, and next_token
int64, the ids are downloaded and uploaded: a few bytes a row.)
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .. import model_format as io
from ..graph.rope import prompt_rotary_feeds
from .kv_cache import KVCache
from .pad import Padder
from .session import Model

MASK_SEQ_AXIS = 1  # [batch, max_seq_len]


class DecoderBinding:
    """Two IO bindings take turns: binding t reads the attention mask from masks[t] and writes the next step's
    into masks[1 - t], so the mask never visits the host; the token ids and the rotary embeddings do the same.

    A step reads nothing it writes (the KV cache aside, whose rows it appends are the same each time), so running
    a step twice with the same bindings gives the same result: with CUDA graphs, onnxruntime runs a graph's first
    step up to three times over (warm-up runs, then the capture)."""

    def __init__(self, model: Model, batch: int, capacity: int):
        self.model = model
        self.batch = batch
        self.index_dtype = model.index_dtype  # of input_ids and the masks
        self.cache = KVCache(model, batch, capacity)
        self.masks = [model.allocate((batch, capacity), self.index_dtype) for _ in range(2)]
        self.logits = model.allocate((batch, model.spec.vocab_size), np.float32)
        # input_ids [batch, 1] is bound to a next_token [batch] buffer's address, read through another shape, so
        # the buffers must be ones a raw pointer reaches: see Provider.
        tokens_on_device = model.provider.tokens_on_device
        self.token_device = (model.provider.device_type, model.device_id) if tokens_on_device else ("cpu", 0)
        self.is_argmax_next_input = model.next_token_dtype == self.index_dtype
        # Binding t reads input_ids from tokens[t] and writes next_token into tokens[1 - t]. Where the types differ,
        # one buffer serves as both entries (both bindings write it), and a decode step's input_ids [batch, 1] has
        # a buffer of its own, written from the host.
        tokens = model.allocate((batch,), model.next_token_dtype, on_host=not tokens_on_device)
        self.tokens = [tokens, tokens]
        self.step_ids = None
        if self.is_argmax_next_input:
            self.tokens[1] = model.allocate((batch,), model.next_token_dtype, on_host=not tokens_on_device)
        else:
            self.step_ids = model.allocate((batch, 1), self.index_dtype, on_host=not tokens_on_device)
        # The seed's rotary contract (merged layout): like the masks, cos/sin [batch, 1, head_dim / 2] of the next
        # position go from one step to the next on the device, in a pair of buffers each.
        self.rotary = None
        if model.manifest.rotary_io:
            shape = (batch, 1, model.spec.head_dim // 2)
            self.rotary = [[model.allocate(shape, model.kv_dtype) for _ in (io.COS, io.SIN)] for _ in range(2)]
        self.bindings = [model.session.io_binding() for _ in range(2)]
        self.turn = 0  # the binding the next step runs
        # One CUDA graph per binding: each keeps the same buffers from step to step, as replay needs.
        self.graph_ids = model.take_graph_ids(2) if model.graph else None
        self._padder: Padder | None = None
        self._bind_all()

    @property
    def capacity(self) -> int:
        return self.cache.capacity

    def feed(self, rows: list[list[int]], lengths: list[int]) -> None:
        """Run several tokens per row, right-padded: a prompt, or new tokens after each row's cached prefix.

        lengths[b] is how many positions row b holds once they are in (its cached prefix plus its new tokens).
        """
        ids = np.zeros((self.batch, max(map(len, rows))), self.index_dtype)
        mask = np.zeros((self.batch, self.capacity), self.index_dtype)
        for b, (row, length) in enumerate(zip(rows, lengths)):
            ids[b, : len(row)] = row
            mask[b, :length] = 1
        t = self.turn
        self.masks[t].update_inplace(mask)
        binding = self.bindings[t]
        binding.bind_cpu_input(io.INPUT_IDS, ids)
        if self.rotary:
            feeds = prompt_rotary_feeds(self.model.spec, [len(row) for row in rows], lengths, self.model.kv_dtype)
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
        self._run(capture=False)  # a prompt's shape changes from run to run: never captured
        self._bind_step_inputs(binding, t)

    def decode(self) -> None:
        """One token per row: the argmax of the last step, or what write_tokens put in its place."""
        self._run()

    def take_argmax(self) -> np.ndarray:
        """The last step's next_token [batch], which is also the next step's input: a greedy step's one download."""
        tokens = self._last_tokens().numpy().copy()  # on the CPU numpy() is a view of a buffer a later step reuses
        if not self.is_argmax_next_input:
            self.write_tokens(tokens)
        return tokens

    def read_logits(self) -> np.ndarray:
        """The last step's logits [batch, vocab], valid until the next step."""
        return self.logits.numpy()

    def write_tokens(self, tokens: np.ndarray) -> None:
        """Make `tokens` [batch] the next step's input (after sampling on the host)."""
        target = self._last_tokens() if self.is_argmax_next_input else self.step_ids
        target.update_inplace(np.asarray(tokens, self.index_dtype).reshape(target.shape()))
        if not self.is_argmax_next_input:
            # An input in host memory for a session whose graph reads it on the device (webgpu) is copied up
            # when it is bound, not when the session runs: bind it again to send the new ids.
            self.bindings[self.turn].bind_ortvalue_input(io.INPUT_IDS, self.step_ids)

    def _last_tokens(self) -> ort.OrtValue:
        """The buffer the last step wrote its next_token into (the one the next step reads as its input_ids, where
        the types agree)."""
        return self.tokens[self.turn]

    def grow(self, capacity: int) -> None:
        """Lengthen the cache and the masks to `capacity` positions on the device, keeping their contents."""
        for binding in self.bindings:  # let go of the old buffers as each is replaced
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
        if self._padder is None:
            self._padder = Padder(self.model)
        self.cache.grow(self._padder, capacity)
        self.masks[self.turn] = self._padder.grow(self.masks[self.turn], MASK_SEQ_AXIS, capacity)
        self.masks[1 - self.turn] = self.model.allocate((self.batch, capacity), self.index_dtype)  # only written
        self._bind_all()

    def _run(self, capture: bool = True) -> None:
        graph_id = self.graph_ids[self.turn] if self.graph_ids and capture else None
        self.model.run_bound(self.bindings[self.turn], graph_id)
        self.turn = 1 - self.turn

    def _bind_all(self) -> None:
        for t, binding in enumerate(self.bindings):
            self.cache.bind(binding)
            binding.bind_ortvalue_input(io.ATTENTION_MASK, self.masks[t])
            binding.bind_ortvalue_output(io.NEXT_ATTENTION_MASK, self.masks[1 - t])
            binding.bind_ortvalue_output(io.LOGITS, self.logits)
            binding.bind_ortvalue_output(io.NEXT_TOKEN, self.tokens[1 - t])
            if self.rotary:
                for name, value in zip((io.NEXT_COS, io.NEXT_SIN), self.rotary[1 - t]):
                    binding.bind_ortvalue_output(name, value)
            self._bind_step_inputs(binding, t)

    def _bind_step_inputs(self, binding: ort.IOBinding, t: int) -> None:
        """Bind a decode step's inputs, which the step before wrote on the device (a prompt binds its own).

        input_ids [batch, 1] is the buffer the step before wrote its next_token [batch] into: the argmax of one step
        is the next step's input where it lies."""
        if self.rotary:
            for name, value in zip((io.COS, io.SIN), self.rotary[t]):
                binding.bind_ortvalue_input(name, value)
        if not self.is_argmax_next_input:
            binding.bind_ortvalue_input(io.INPUT_IDS, self.step_ids)
            return
        device_type, device_id = self.token_device
        binding.bind_input(io.INPUT_IDS, device_type, device_id, self.index_dtype, [self.batch, 1],
                           self.tokens[t].data_ptr())
