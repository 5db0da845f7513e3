"""The model as the scheduler sees it: a batch of rows that all advance one token per step.

A row is one request's generation. Rows join a batch when it has room (`add`), leave it when they finish or
their client goes away (`drop`), and `step` decodes one more token for every row. `Engine` and `Batch` are the
whole contract between the server and the runtime (runtime_engine.py implements them on llama_ort.runtime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Token:
    id: int
    text: str  # the text this token adds: held back while it may be the start of a stop string
    finish_reason: str | None = None  # "stop" or "length" on a row's last token


class Batch(Protocol):
    def add(self, prompt_ids: list[int], params: SamplingParams) -> int | None:
        """Start a row; its id, or None while the batch has no room for it."""

    def step(self) -> dict[int, Token]:
        """One token for every row. A row whose token has a finish_reason has left the batch."""

    def drop(self, row: int) -> None:
        """End a row before it finishes (its client went away)."""


class Engine(Protocol):
    name: str  # the model id clients ask for
    max_seq_len: int  # prompt and generated tokens of one row

    def encode_chat(self, messages: list[dict]) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def open_batch(self, max_rows: int) -> Batch: ...
