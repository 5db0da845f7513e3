"""The server's engine on the runtime, without HTTP: the KV cache allocated when a batch opens (refused in one
line when it does not fit), the runtime's GenerateOptions as each request's options, slots freed by drop."""

from __future__ import annotations

import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.runtime.generate import GenerateOptions
from llama_ort.serve import runtime_engine

GREEDY = GenerateOptions(max_new_tokens=12)


def run(batch) -> dict[int, list[int]]:
    """Step `batch` until its rows end; each row's token ids."""
    tokens: dict[int, list[int]] = {}
    while batch.has_work:
        for row, token in batch.step().items():
            tokens.setdefault(row, []).append(token.id)
    return tokens


def test_a_row_that_joins_a_running_batch_decodes_in_the_same_steps(engine):
    batch = engine.open_batch(4)
    first = batch.add(engine.encode("The sky is"), GREEDY)
    batch.step()
    second = batch.add(engine.encode("Once upon a time"), GREEDY)
    step = batch.step()
    assert set(step) == {first, second}  # the new row's first token and the running row's next, in one step
    tokens = run(batch)
    assert len(tokens[second]) == GREEDY.max_new_tokens - 1 and len(tokens[first]) == GREEDY.max_new_tokens - 2


def test_a_cache_that_does_not_fit_is_refused_in_one_line(engine, monkeypatch):
    monkeypatch.setattr(runtime_engine, "available_memory_bytes", lambda: engine.cache_bytes(4) - 1)
    with pytest.raises(LlamaOrtError, match=r"--max-batch-size: a KV cache of 4 slots of \d+ positions takes .* GB"):
        engine.open_batch(4)
    assert engine.open_batch(3) is not None


def test_a_dropped_row_frees_its_slot(engine):
    batch = engine.open_batch(1)
    row = batch.add(engine.encode("1, 2, 3,"), GenerateOptions(max_new_tokens=100))
    batch.step()
    assert batch.add(engine.encode("4, 5"), GREEDY) is None
    batch.drop(row)
    assert batch.add(engine.encode("4, 5"), GREEDY) is not None and batch.step()
