"""An engine without a model for serving tests: its generations advance only while `release` is set, so a test
decides when anything finishes (nothing does before: the batch and the queue stay exactly as full as it made them)."""

from __future__ import annotations

import itertools
import threading

from llama_ort.serve.engine import GenerateOptions, Token


class HeldEngine:
    """One token a character; every generated token is "x"."""

    name = "held"
    max_seq_len = 64

    def __init__(self):
        self.release = threading.Event()
        self.fail_next_step = threading.Event()  # the next step raises, as a provider error would

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return self.encode("".join(m["content"] for m in messages))

    def open_batch(self, max_rows: int) -> HeldBatch:
        return HeldBatch(self.release, max_rows, self.fail_next_step)


class HeldBatch:
    def __init__(self, release: threading.Event, max_rows: int, fail_next_step: threading.Event):
        self.release = release
        self.fail_next_step = fail_next_step
        self.max_rows = max_rows
        self.tokens_left: dict[int, int] = {}  # row -> tokens it has still to generate
        self.row_ids = itertools.count()

    def add(self, prompt_ids: list[int], options: GenerateOptions) -> int | None:
        if len(self.tokens_left) >= self.max_rows:
            return None
        row = next(self.row_ids)
        self.tokens_left[row] = options.max_new_tokens
        return row

    def step(self) -> dict[int, Token]:
        self.release.wait()
        if self.fail_next_step.is_set():
            self.fail_next_step.clear()
            raise RuntimeError("the provider failed")
        tokens = {}
        for row in list(self.tokens_left):
            self.tokens_left[row] -= 1
            is_last = self.tokens_left[row] == 0
            tokens[row] = Token(ord("x"), "x", "length" if is_last else None)
            if is_last:
                del self.tokens_left[row]
        return tokens

    def drop(self, row: int) -> None:
        self.tokens_left.pop(row, None)
