"""The engine on the runtime, without HTTP: rows of a batch give what they give alone, rows that arrive later
start at the next step, and rows that would carry a group past the context length start a group of their own."""

from __future__ import annotations

import dataclasses
import logging

from llama_ort.serve.engine import SamplingParams
from llama_ort.serve.runtime_engine import RuntimeEngine

GREEDY = {"temperature": 0.0}


def run(batch) -> dict[int, list[int]]:
    """Step `batch` until its rows end; each row's token ids."""
    tokens: dict[int, list[int]] = {}
    while True:
        step = batch.step()
        if not step:
            return tokens
        for row, token in step.items():
            tokens.setdefault(row, []).append(token.id)


def alone(engine, prompt_ids, params) -> list[int]:
    batch = engine.open_batch(1)
    row = batch.add(prompt_ids, params)
    return run(batch)[row]


def test_a_row_that_joins_later_gives_what_it_gives_alone(engine):
    first, second = engine.encode("The sky is"), engine.encode("Once upon a time")
    params = SamplingParams(max_tokens=12, **GREEDY)
    batch = engine.open_batch(4)
    a = batch.add(first, params)
    early = batch.step()
    b = batch.add(second, params)  # the first row has started: the second begins a group of its own
    assert len(batch.groups) == 2
    tokens = run(batch)
    assert [early[a].id, *tokens[a]] == alone(engine, first, params)
    assert tokens[b] == alone(engine, second, params)


def test_rows_that_would_pass_the_context_together_start_apart(engine, caplog):
    short = dataclasses.replace(engine.model, spec=dataclasses.replace(engine.model.spec, context_length=64))
    narrow = RuntimeEngine(short, engine.tokenizer, engine.name, max_seq_len=64)
    long_prompt = narrow.encode(" ".join(["word"] * 40))[:40]
    mid_prompt = narrow.encode("Once upon a time, in a land far away, there lived a king who had three")[:20]
    long_params, mid_params = SamplingParams(max_tokens=8, **GREEDY), SamplingParams(max_tokens=40, **GREEDY)
    expected = [alone(narrow, long_prompt, long_params), alone(narrow, mid_prompt, mid_params)]

    caplog.set_level(logging.WARNING, logger="llama_ort.runtime")
    batch = narrow.open_batch(4)
    rows = [batch.add(long_prompt, long_params), batch.add(mid_prompt, mid_params)]
    assert len(batch.groups) == 2  # 40 + 40 tokens would pass the 64 of the context
    tokens = run(batch)
    assert [tokens[row] for row in rows] == expected
    assert "slide" not in caplog.text


def test_a_dropped_row_stops_its_group(engine):
    batch = engine.open_batch(2)
    row = batch.add(engine.encode("1, 2, 3,"), SamplingParams(max_tokens=100, **GREEDY))
    batch.step()
    batch.drop(row)
    assert batch.groups == [] and batch.step() == {}
