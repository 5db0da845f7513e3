"""The model as the scheduler sees it: a batch of rows that all advance one token per step.

A row is one request's generation. Rows join a batch when it has room (`add`), leave it when they finish or
their client goes away (`drop`), and `step` makes one more token for every row. `Engine` and `Batch` are the
whole contract between the server and the runtime: the runtime's continuous-batching engine
(llama_ort.runtime.engine) is the batch, and runtime_engine.py opens it for a model folder. A request's
options are the runtime's own GenerateOptions, from the CLI and the API alike.
"""

from __future__ import annotations

from typing import Protocol

from ..runtime.engine import Token
from ..runtime.generate import GenerateOptions

__all__ = ["Batch", "Engine", "GenerateOptions", "Token"]


class Batch(Protocol):
    def add(self, prompt_ids: list[int], options: GenerateOptions) -> int | None:
        """Start a row; its id, or None while the batch has no room for it."""

    def step(self) -> dict[int, Token]:
        """A token for rows that have one this step. A row whose token has a finish_reason has left the batch."""

    def drop(self, row: int) -> None:
        """End a row before it finishes (its client went away)."""


class Engine(Protocol):
    name: str  # the model id clients ask for
    max_seq_len: int  # prompt and generated tokens of one row

    def encode_chat(self, messages: list[dict]) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def open_batch(self, max_rows: int) -> Batch: ...
