"""The engine on llama_ort.runtime: rows of many requests decoded with the runtime's generate_step, each
with its own sampling, detokenized and cut at stop strings by the runtime's RowText."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import fail
from ..runtime import Model, load_model
from ..runtime.generate import generate_step
from ..runtime.sampling import Sampler
from ..runtime.sampling import SamplingParams as RuntimeSampling
from ..runtime.stopping import RowText
from ..tokenizer import Tokenizer
from .engine import SamplingParams, Token

MAX_SEQ_LEN = 2048  # tokens of one request, prompt and answer: bounds each row's KV cache


def load_engine(folder: str | Path, provider: str = "cpu", max_seq_len: int = MAX_SEQ_LEN,
                device_id: int = 0) -> RuntimeEngine:
    """The model folder on `provider`'s device number `device_id`, named by its folder. A row holds at most
    max_seq_len tokens (capped at the model's context length); the cache grows with the longest row of a group
    (the runtime's dynamic mode)."""
    if max_seq_len < 2:
        raise fail("max_seq_len", f"must be at least 2 (a prompt token and an answer token), got {max_seq_len}")
    folder = Path(folder)
    model = load_model(folder, provider, device_id=device_id)
    return RuntimeEngine(model, Tokenizer.from_folder(folder), folder.name,
                         min(max_seq_len, model.spec.context_length))


class RuntimeEngine:
    def __init__(self, model: Model, tokenizer: Tokenizer, name: str, max_seq_len: int):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_seq_len = max_seq_len

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.encode_chat(messages)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def open_batch(self, max_rows: int) -> RuntimeBatch:
        return RuntimeBatch(self, max_rows)


@dataclass
class Row:
    index: int  # in its group's prompts
    text: RowText  # detokenizes, and ends the row at EOS, a stop string or its max_tokens


class Group:
    """Rows that started together: one run of the runtime's generate_step, which decodes a fixed set of prompts."""

    def __init__(self, engine: RuntimeEngine):
        self.engine = engine
        self.prompts: list[list[int]] = []
        self.params: list[SamplingParams] = []
        self.rows: dict[int, Row] = {}  # the rows still going, by id
        self.steps: Iterator[np.ndarray] | None = None  # the runtime's token rows, once started

    @property
    def has_started(self) -> bool:
        return self.steps is not None

    def has_room_for(self, prompt_ids: list[int], params: SamplingParams) -> bool:
        """Whether the row keeps every row within the context length. generate_step decodes every row until the
        group's largest max_tokens, and a row that reaches the context length slides every row of the group."""
        longest = max(map(len, [*self.prompts, prompt_ids]))
        most = max(p.max_tokens for p in [*self.params, params])
        return longest + most <= self.engine.model.spec.context_length

    def add(self, row_id: int, prompt_ids: list[int], params: SamplingParams) -> None:
        tokenizer = self.engine.tokenizer
        self.rows[row_id] = Row(len(self.prompts), RowText(tokenizer, tokenizer.eos_token_ids, params.stop,
                                                            params.max_tokens))
        self.prompts.append(prompt_ids)
        self.params.append(params)

    def step(self) -> dict[int, Token]:
        if self.steps is None:  # the first step runs the prompts
            sampler = RowSampler([RuntimeSampling(temperature=p.temperature, top_p=p.top_p, seed=p.seed)
                                  for p in self.params])
            self.steps = generate_step(self.engine.model, self.prompts, max(p.max_tokens for p in self.params),
                                       sampler)
        ids = next(self.steps)
        tokens = {}
        for row_id, row in list(self.rows.items()):
            token_id = int(ids[row.index])
            text = row.text.push(token_id)
            tokens[row_id] = Token(token_id, text, row.text.finish_reason)
            if row.text.finish_reason:
                self.drop(row_id)
        return tokens

    def drop(self, row_id: int) -> None:
        del self.rows[row_id]
        if not self.rows and self.steps is not None:  # nobody reads the remaining steps: stop decoding
            self.steps.close()


class RuntimeBatch:
    """Rows in groups, stepped in turn. generate_step cannot take a row once it has started, so a new row joins
    the group that has not started yet or starts one: it decodes from the next step on, without waiting for the
    rows already running to end. Rows that arrive together share one group, and one session run per step."""

    def __init__(self, engine: RuntimeEngine, max_rows: int):
        self.engine = engine
        self.max_rows = max_rows
        self.row_ids = itertools.count()
        self.groups: list[Group] = []
        self.group_of: dict[int, Group] = {}  # row id -> its group

    def add(self, prompt_ids: list[int], params: SamplingParams) -> int | None:
        if len(self.group_of) >= self.max_rows:
            return None
        forming = self.groups[-1] if self.groups and not self.groups[-1].has_started else None
        if forming is None or not forming.has_room_for(prompt_ids, params):
            self.groups.append(Group(self.engine))
        row_id = next(self.row_ids)
        self.groups[-1].add(row_id, prompt_ids, params)
        self.group_of[row_id] = self.groups[-1]
        return row_id

    def step(self) -> dict[int, Token]:
        tokens = {}
        for group in self.groups:
            tokens.update(group.step())
        for row_id, token in tokens.items():
            if token.finish_reason:
                del self.group_of[row_id]
        self.groups = [group for group in self.groups if group.rows]
        return tokens

    def drop(self, row: int) -> None:
        self.group_of.pop(row).drop(row)
        self.groups = [group for group in self.groups if group.rows]


class RowSampler(Sampler):
    """Every row samples with its own request's parameters and random generator, so a seeded request gives the
    same text whichever requests share its batch."""

    def __init__(self, rows: list[RuntimeSampling]):
        # generate_step reads the logits unless its sampler is greedy: it is not if any row samples.
        super().__init__(next((p for p in rows if not p.is_greedy), rows[0]))
        self.rows = [Sampler(p) for p in rows]

    def __call__(self, logits: np.ndarray, history: list[list[int]]) -> np.ndarray:
        return np.array([sampler(logits[b:b + 1], history[b:b + 1])[0] for b, sampler in enumerate(self.rows)])
