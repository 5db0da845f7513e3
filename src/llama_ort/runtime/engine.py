"""Continuous batching on the static cache: every running request is in every decode step, whenever it arrived.

A request takes a free slot of the SlotCache (the one holding the longest start of its prompt, so the next turn
of a chat or a shared system prompt is not run again), its prompt runs into that slot in chunks of at most
`prefill_chunk` tokens between decode steps, so a long prompt never stalls the streams already running, and from
its first token on it is a row of every decode step until it ends.

A decode step runs the first n slots as one batch, n one past the busiest slot: idle slots below it ride along
and their rows are thrown away. A request takes the lowest free slot unless another holds more of its prompt,
so the batch stays short. With CUDA graphs, n is rounded up to a bucket (1, 2, 4, ...) and each bucket's step is
captured once and replayed for the life of the engine.

    engine = Engine(load_model(folder, max_seq_len=2048), tokenizer, EngineConfig(slots=16))
    row = engine.add(prompt_ids, GenerateOptions(max_new_tokens=64))
    while engine.has_work:
        for row, token in engine.step().items(): ...
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from .. import model_format as io
from ..errors import fail
from ..graph.rope import prompt_rotary_feeds
from ..graph.target import get_target
from .generate import GenerateOptions
from .sampling import Sampler
from .session import Model
from .slots import SlotCache
from .stopping import RowText


# Prompt tokens a slot other than the lowest free one must save to be taken: reuse that saves less costs more
# in the longer decode batch than it saves.
REUSE_WORTH = 64


@dataclass(frozen=True)
class EngineConfig:
    slots: int = 16  # requests decoded together
    prefill_chunk: int = 256  # prompt tokens run between two decode steps
    # A request's tokens the same alone as beside others: where the provider computes one row on another path
    # (Provider.one_row_paths), a lone request is decoded with a throwaway companion row, at a cost
    # (docs/serve.md); off, a lone int4 request on the CPU decodes faster and may get other tokens. An engine
    # of one slot always decodes one row: one request at a time is consistent with itself.
    batch_invariant: bool = True

    def __post_init__(self):
        if self.slots < 1:
            raise fail("slots", f"must be at least 1, got {self.slots}")
        if self.prefill_chunk < 1:
            raise fail("prefill_chunk", f"must be at least 1, got {self.prefill_chunk}")


@dataclass(frozen=True)
class Token:
    id: int
    text: str  # the text this token adds: held back while it may be the start of a stop string
    finish_reason: str | None = None  # "stop" or "length" on a request's last token


class Slot:
    def __init__(self, index: int):
        self.index = index
        self.tokens: list[int] = []  # the ids whose keys and values the slot holds, at positions 0, 1, ...
        self.request: Request | None = None


class Request:
    def __init__(self, row: int, slot: Slot, prompt: list[int], reused: int, options: GenerateOptions,
                 text: RowText):
        self.row = row
        self.slot = slot
        self.pending = prompt[reused:]  # prompt tokens not in the slot yet
        self.history = list(prompt)  # prompt and answer, for repetition penalties
        self.reused = reused  # prompt tokens the slot already held
        self.sampler = Sampler(options.sampling)
        self.text = text
        self.next_input: int | None = None  # the token the next decode step feeds

    @property
    def is_decoding(self) -> bool:
        return not self.pending


class StepBuffers:
    """One batch size's inputs and outputs on the device, bound once (a captured graph keeps its addresses)."""

    def __init__(self, model: Model, cache: SlotCache, batch: int, graph_id: int | None):
        self.model = model
        self.batch = batch
        self.graph_id = graph_id
        index, length = model.index_dtype, cache.max_seq_len
        self.ids = model.allocate((batch, 1), index, on_host=not model.provider.tokens_on_device)
        self.mask = model.allocate((batch, length), index)
        self.binding = model.session.io_binding()
        self.logits, self.next_token = bind_step_outputs(model, self.binding, batch, length)
        self.rotary = []
        if model.manifest.rotary_io:
            shape = (batch, 1, model.spec.head_dim // 2)
            self.rotary = [(name, model.allocate(shape, model.kv_dtype)) for name in (io.COS, io.SIN)]
        cache.bind(self.binding, 0, batch)

    def run(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        """One token for each of the batch's rows, row b then holding lengths[b] positions."""
        model = self.model
        self.ids.update_inplace(ids.astype(model.index_dtype).reshape(self.batch, 1))
        self.mask.update_inplace(mask_for(lengths, self.mask.shape()[1], model.index_dtype))
        # Bound again after each write: a host input is copied to the device when it is bound (webgpu).
        self.binding.bind_ortvalue_input(io.INPUT_IDS, self.ids)
        self.binding.bind_ortvalue_input(io.ATTENTION_MASK, self.mask)
        if self.rotary:
            feeds = prompt_rotary_feeds(model.spec, [1] * self.batch, list(lengths), model.kv_dtype)
            for name, buffer in self.rotary:
                buffer.update_inplace(feeds[name])
                self.binding.bind_ortvalue_input(name, buffer)
        model.run_bound(self.binding, self.graph_id)


def bind_step_outputs(model: Model, binding: ort.IOBinding, batch: int, max_seq_len: int):
    """Bind a step's outputs: logits and next_token, which are read, and the next mask and rotary embeddings,
    which the engine computes on the host instead (rows join and leave between steps) and so only writes.
    Returns (logits, next_token)."""
    logits = model.allocate((batch, model.spec.vocab_size), np.float32)
    next_token = model.allocate((batch,), model.next_token_dtype)
    binding.bind_ortvalue_output(io.LOGITS, logits)
    binding.bind_ortvalue_output(io.NEXT_TOKEN, next_token)
    binding.bind_ortvalue_output(io.NEXT_ATTENTION_MASK, model.allocate((batch, max_seq_len), model.index_dtype))
    if model.manifest.rotary_io:
        shape = (batch, 1, model.spec.head_dim // 2)
        for name in (io.NEXT_COS, io.NEXT_SIN):
            binding.bind_ortvalue_output(name, model.allocate(shape, model.kv_dtype))
    return logits, next_token


class Engine:
    def __init__(self, model: Model, tokenizer, config: EngineConfig = EngineConfig()):
        if not model.is_static:
            raise fail("max_seq_len", "the engine runs on a static cache: load the model with a max_seq_len")
        if config.slots > 1 and not model.provider.binds_at_offsets:
            raise fail("slots", f"the {model.provider.name} provider cannot bind part of a buffer, so its engine "
                                f"has one slot: give slots=1 (serve: --max-batch-size 1)")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.max_seq_len = model.max_seq_len
        self.cache = SlotCache(model, config.slots, self.max_seq_len)
        self.slots = [Slot(i) for i in range(config.slots)]
        # Where the cuda target derives total_sequence_length from shapes (docs/model-format.md), a prompt must
        # start on an empty cache: one run per prompt, and no prefix reuse.
        self.extends_cache = not get_target(model.manifest.target).shape_only_total_length
        self.min_rows = 2 if config.batch_invariant and model.manifest.precision in model.provider.one_row_paths else 1
        self.requests: dict[int, Request] = {}  # by row id, in arrival order
        self.row_ids = itertools.count()
        self.steps: dict[int, StepBuffers] = {}  # by batch size
        self.prefill_binding = model.session.io_binding()
        self.prefill_mask = model.allocate((1, self.max_seq_len), model.index_dtype)
        self.prefill_logits, self.prefill_token = bind_step_outputs(model, self.prefill_binding, 1, self.max_seq_len)

    @property
    def has_work(self) -> bool:
        return bool(self.requests)

    @property
    def free_slots(self) -> int:
        return sum(slot.request is None for slot in self.slots)

    def add(self, prompt_ids: list[int], options: GenerateOptions = GenerateOptions()) -> int | None:
        """Start a request; its row id, or None while every slot is busy. Its first token comes from a later step."""
        prompt = [int(t) for t in prompt_ids]
        if not prompt:
            raise fail("prompt", "is empty: give at least one token")
        if len(prompt) >= self.max_seq_len:
            raise fail("prompt", f"has {len(prompt)} tokens; a slot holds {self.max_seq_len} positions with the "
                                 "answer: shorten it")
        slot, reused = self._choose_slot(prompt)
        if slot is None:
            return None
        del slot.tokens[reused:]
        max_new_tokens = min(options.max_new_tokens, self.max_seq_len - len(prompt))
        eos = () if options.ignore_eos else self.tokenizer.eos_token_ids
        text = RowText(self.tokenizer, eos, options.stop_strings, max_new_tokens)
        request = Request(next(self.row_ids), slot, prompt, reused, options, text)
        slot.request = request
        self.requests[request.row] = request
        return request.row

    def drop(self, row: int) -> None:
        """End a request before it finishes (its client went away); its slot is free for the next step. A row
        that has already ended is left alone."""
        if row in self.requests:
            self._release(self.requests[row])

    def reused_tokens(self, row: int) -> int:
        """How many of the request's prompt tokens its slot already held."""
        return self.requests[row].reused

    def step(self) -> dict[int, Token]:
        """Prompt chunks of at most prefill_chunk tokens, then one decode step of every request past its prompt.

        Returns the tokens made, by row: a request's first comes with its prompt's last chunk. A token with a
        finish_reason ends its request, which has then left the engine."""
        tokens = self._prefill_some()
        tokens.update(self._decode(skip=tokens.keys()))
        return tokens

    # --- prompts

    def _choose_slot(self, prompt: list[int]) -> tuple[Slot | None, int]:
        """The lowest free slot, or the one holding the longest start of the prompt where that saves at least
        REUSE_WORTH more tokens (a shared chat template's first tokens are not worth a longer batch), and how
        many of its tokens it keeps: the prompt's last token (its last two where one row takes another path,
        so that no prompt chunk is a single row) runs again, for its logits."""
        free = [slot for slot in self.slots if slot.request is None]
        if not free:
            return None, 0
        if not self.extends_cache:
            return free[0], 0
        keep_at_most = max(len(prompt) - (2 if self.min_rows > 1 else 1), 0)
        reuse = {slot.index: min(common_prefix(slot.tokens, prompt), keep_at_most) for slot in free}
        best = max(free, key=lambda slot: (reuse[slot.index], -slot.index))
        if reuse[best.index] - reuse[free[0].index] < REUSE_WORTH:
            best = free[0]
        return best, reuse[best.index]

    def _prefill_some(self) -> dict[int, Token]:
        """Prompt chunks, oldest request first, while they fit in prefill_chunk tokens (at least one chunk).

        A request's chunks start every prefill_chunk tokens from where its prompt starts in the slot, whatever
        else runs in the step, so its prompt runs the same alone or beside others (the same product shapes, and
        so the same numbers)."""
        budget = self.config.prefill_chunk
        tokens = {}
        for request in [r for r in self.requests.values() if r.pending]:
            while request.pending:
                chunk = request.pending[:self._chunk_size(request)]
                if len(chunk) > budget and budget < self.config.prefill_chunk:
                    return tokens  # the next step runs it
                self._run_prompt_chunk(request, chunk)
                budget -= len(chunk)
            token = self._choose_token(request, self.prefill_token.numpy()[0], self.prefill_logits.numpy()[0])
            tokens[request.row] = self._emit(request, token)
        return tokens

    def _chunk_size(self, request: Request) -> int:
        """Up to the next multiple of prefill_chunk past the request's first new position; the whole prompt
        where a prompt must start on an empty cache. Where one row takes another path, a last chunk of one token
        joins the chunk before it."""
        if not self.extends_cache:
            return len(request.pending)
        done = len(request.slot.tokens) - request.reused
        size = self.config.prefill_chunk - done % self.config.prefill_chunk
        if self.min_rows > 1 and len(request.pending) - size == 1:
            size += 1
        return size

    def _run_prompt_chunk(self, request: Request, chunk: list[int]) -> None:
        model, slot, binding = self.model, request.slot, self.prefill_binding
        length = len(slot.tokens) + len(chunk)
        binding.bind_cpu_input(io.INPUT_IDS, np.array([chunk], model.index_dtype))
        self.prefill_mask.update_inplace(mask_for(np.array([length]), self.max_seq_len, model.index_dtype))
        binding.bind_ortvalue_input(io.ATTENTION_MASK, self.prefill_mask)
        if model.manifest.rotary_io:
            for name, value in prompt_rotary_feeds(model.spec, [len(chunk)], [length], model.kv_dtype).items():
                binding.bind_cpu_input(name, value)
        self.cache.bind(binding, slot.index, 1)
        model.run_bound(binding)  # a prompt's shape changes from run to run: never captured
        slot.tokens.extend(chunk)
        request.pending = request.pending[len(chunk):]

    # --- decode steps

    def _decode(self, skip) -> dict[int, Token]:
        """One token for every request past its prompt, except those in `skip` (their first just came)."""
        decoding = [r for r in self.requests.values() if r.is_decoding and r.row not in skip]
        if not decoding:
            return {}
        buffers = self._step_buffers(max(r.slot.index for r in decoding) + 1)
        ids = np.zeros(buffers.batch, np.int64)
        # An idle slot's row writes one throwaway position after what the slot holds, which a later prompt in
        # that slot overwrites: the positions before it stay reusable.
        lengths = np.array([len(slot.tokens) + 1 for slot in self.slots[:buffers.batch]])
        for request in decoding:
            ids[request.slot.index] = request.next_input
        buffers.run(ids, lengths)
        next_tokens = buffers.next_token.numpy()
        needs_logits = any(not r.sampler.params.is_greedy for r in decoding)
        logits = buffers.logits.numpy() if needs_logits else None
        tokens = {}
        for request in decoding:
            index = request.slot.index
            request.slot.tokens.append(request.next_input)
            token = self._choose_token(request, next_tokens[index], None if logits is None else logits[index])
            tokens[request.row] = self._emit(request, token)
        return tokens

    def _step_buffers(self, rows: int) -> StepBuffers:
        batch = self._bucket(rows)
        if batch not in self.steps:
            graph_id = self.model.take_graph_ids(1)[0] if self.model.graph else None
            self.steps[batch] = StepBuffers(self.model, self.cache, batch, graph_id)
        return self.steps[batch]

    def _bucket(self, rows: int) -> int:
        """The batch a step of `rows` rows runs.

        At least min_rows: where the provider computes one row on another path than several (the CPU's int4
        MatMulNBits, whose rows come out the same for every count from two up), a request alone would otherwise
        get other numbers than beside others, and at times other tokens (docs/serve.md). Each captured graph has
        a fixed batch, so with graphs the rows are rounded up to a power of two (or all slots), for a few graphs
        that cover every count."""
        rows = min(max(rows, self.min_rows), len(self.slots))
        if not self.model.graph:
            return rows
        return min(1 << (rows - 1).bit_length(), len(self.slots))

    # --- tokens

    def _choose_token(self, request: Request, argmax: int, logits: np.ndarray | None) -> int:
        if request.sampler.params.is_greedy:
            return int(argmax)
        return int(request.sampler(logits[None, :], [request.history])[0])

    def _emit(self, request: Request, token: int) -> Token:
        request.history.append(token)
        text = request.text.push(token)
        if request.text.finish_reason:
            self._release(request)
        else:
            request.next_input = token
        return Token(token, text, request.text.finish_reason)

    def _release(self, request: Request) -> None:
        request.slot.request = None
        del self.requests[request.row]


def mask_for(lengths: np.ndarray, max_seq_len: int, dtype) -> np.ndarray:
    """Each row's attention mask: ones over its first lengths[b] positions."""
    return (np.arange(max_seq_len)[None, :] < np.asarray(lengths)[:, None]).astype(dtype)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    differs = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differs[0]) if differs.size else n
