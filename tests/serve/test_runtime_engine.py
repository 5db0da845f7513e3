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


QUESTIONS = ["Who wrote Hamlet?", "What is the capital of France?", "Name three primary colors.",
             "What is 12 times 12?", "Why is the sky blue?", "What do bees make?"]


def test_int4_greedy_answers_are_the_same_alone_and_beside_others(engine):
    """The CPU's int4 MatMulNBits computes one row on another path than several: the engine never runs one."""
    options = GenerateOptions(max_new_tokens=24, ignore_eos=True)
    prompts = [engine.encode_chat([{"role": "user", "content": q}]) for q in QUESTIONS]
    alone = []
    for prompt in prompts:
        batch = engine.open_batch(2)
        batch.add(prompt, options)
        alone += list(run(batch).values())
    batch = engine.open_batch(4)
    rows, waiting, tokens = [], list(prompts), {}
    while waiting or batch.has_work:  # one arrival a step while a slot is free
        if waiting and (row := batch.add(waiting[0], options)) is not None:
            rows.append(row)
            waiting.pop(0)
        for row, token in batch.step().items():
            tokens.setdefault(row, []).append(token.id)
    assert [tokens[row] for row in rows] == alone
    assert batch.min_rows == 2  # the throwaway companion row of a lone request


def test_without_batch_invariance_a_lone_request_decodes_one_row(engine):
    import dataclasses

    free = runtime_engine.RuntimeEngine(engine.model, engine.tokenizer, engine.name,
                                        dataclasses.replace(engine.config, batch_invariant=False))
    assert free.open_batch(2).min_rows == 1


def test_int4_answers_are_the_same_when_a_slot_already_holds_the_prompt(engine):
    """A reused prefix leaves at least two prompt tokens to run: a one-token chunk would take the one-row path."""
    options = GenerateOptions(max_new_tokens=16, ignore_eos=True)
    batch = engine.open_batch(2)
    for question in QUESTIONS[:3]:
        prompt = engine.encode_chat([{"role": "user", "content": question}])
        first = batch.add(prompt, options)
        fresh = run(batch)[first]
        again = batch.add(prompt, options)
        assert batch.reused_tokens(again) == len(prompt) - 2
        assert run(batch)[again] == fresh
