"""The continuous-batching engine (tiny model, char tokenizer): staggered requests, prompt chunks, prefix reuse,
cancellation, against transformers' greedy tokens and against each request run alone."""

import numpy as np
import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.runtime.engine import Engine, EngineConfig
from llama_ort.runtime.generate import GenerateOptions
from llama_ort.runtime.sampling import SamplingParams
from llama_ort.runtime.session import load_model
from llama_ort.tokenizer import Tokenizer
from llama_ort_testing.tiny_models import PROMPTS, hf_greedy

MAX_SEQ_LEN = 96
NEW_TOKENS = 24


@pytest.fixture(scope="module", params=["single", "merged"])
def built(request, tiny, tiny_merged):
    return tiny if request.param == "single" else tiny_merged


@pytest.fixture(scope="module")
def model(built):
    return load_model(built.folder, max_seq_len=MAX_SEQ_LEN)


@pytest.fixture(scope="module")
def tokenizer(built):
    return Tokenizer.from_folder(built.folder)


def run_until_done(engine: Engine, arrivals: dict[int, list[tuple[list[int], GenerateOptions]]],
                   on_step=lambda step, tokens: None) -> dict[int, list[int]]:
    """Step the engine, queueing arrivals[step]'s requests before that step and adding queued ones while a slot
    is free; each request's tokens, in arrival order."""
    order, out, step, waiting = [], {}, 0, []
    while engine.has_work or waiting or any(s >= step for s in arrivals):
        waiting += arrivals.get(step, [])
        while waiting and (row := engine.add(*waiting[0])) is not None:
            waiting.pop(0)
            order.append(row)
            out[row] = []
        tokens = engine.step()
        for row, token in tokens.items():
            out[row].append(token.id)
        on_step(step, tokens)
        step += 1
    return [out[row] for row in order]


def greedy(max_new_tokens=NEW_TOKENS, **kwargs) -> GenerateOptions:
    return GenerateOptions(max_new_tokens=max_new_tokens, **kwargs)


def test_staggered_requests_give_transformers_greedy_tokens(built, model, tokenizer):
    engine = Engine(model, tokenizer, EngineConfig(slots=4, prefill_chunk=4))
    arrivals = {i * 3: [(prompt, greedy())] for i, prompt in enumerate(PROMPTS)}
    outputs = run_until_done(engine, arrivals)
    for prompt, tokens in zip(PROMPTS, outputs):
        assert tokens == hf_greedy(built, prompt, NEW_TOKENS)


def test_32_staggered_requests_equal_each_request_alone(model, tokenizer):
    """fp32 products give a row the same numbers at every row count, one included: no companion row needed."""
    rng = np.random.default_rng(7)
    prompts = [[1, *rng.integers(2, 128, int(rng.integers(2, 30))).tolist()] for _ in range(32)]
    alone = []
    for prompt in prompts:
        alone += run_until_done(Engine(model, tokenizer, EngineConfig(slots=1, prefill_chunk=8)),
                                {0: [(prompt, greedy(ignore_eos=True))]})
    engine = Engine(model, tokenizer, EngineConfig(slots=8, prefill_chunk=8))
    arrivals = {}
    for i, prompt in enumerate(prompts):
        arrivals.setdefault(int(rng.integers(0, 60)), []).append((prompt, greedy(ignore_eos=True)))
    # Requests added in arrival order: line the expected outputs up the same way.
    order = [prompts.index(p) for step in sorted(arrivals) for p, _ in arrivals[step]]
    batched = run_until_done(engine, dict(sorted(arrivals.items())))
    assert batched == [alone[i] for i in order]
    assert engine.min_rows == 1


def test_prefix_reuse_gives_the_tokens_of_a_fresh_prefill(built, model, tokenizer):
    first = PROMPTS[3]
    engine = Engine(model, tokenizer, EngineConfig(slots=2, prefill_chunk=5))
    [answer] = run_until_done(engine, {0: [(first, greedy(ignore_eos=True))]})
    follow_up = first + answer + [17, 42, 8]  # the next turn: the history, the answer, then new tokens
    row = engine.add(follow_up, greedy())
    assert engine.reused_tokens(row) == len(first) + len(answer) - 1  # the answer's last token was never fed
    tokens = []
    while engine.has_work:
        tokens += [t.id for t in engine.step().values()]
    assert tokens == hf_greedy(built, follow_up, NEW_TOKENS)


def test_a_cancelled_request_frees_its_slot(model, tokenizer):
    engine = Engine(model, tokenizer, EngineConfig(slots=2))
    rows = [engine.add(p, greedy(ignore_eos=True)) for p in PROMPTS[:2]]
    assert engine.add(PROMPTS[2], greedy()) is None  # both slots busy
    engine.step()
    engine.drop(rows[0])
    assert engine.free_slots == 1
    row = engine.add(PROMPTS[2], greedy())
    assert row is not None
    tokens = engine.step()
    assert rows[0] not in tokens and row in tokens and rows[1] in tokens


def test_a_long_prompt_costs_the_running_streams_at_most_one_chunk_per_step(model, tokenizer):
    engine = Engine(model, tokenizer, EngineConfig(slots=2, prefill_chunk=8))
    running = engine.add(PROMPTS[0], greedy(max_new_tokens=40, ignore_eos=True))
    engine.step()
    long_prompt = [1, *range(2, 62)]  # 61 tokens: 8 chunks
    late = engine.add(long_prompt, greedy(ignore_eos=True))
    steps_until_first_token = 0
    while True:
        tokens = engine.step()
        steps_until_first_token += 1
        assert running in tokens, "the running stream missed a step while the long prompt ran"
        if late in tokens:
            break
    assert steps_until_first_token == 8


def test_sampled_rows_follow_their_own_seed_whatever_shares_the_batch(model, tokenizer):
    sampled = GenerateOptions(max_new_tokens=16, ignore_eos=True, sampling=SamplingParams(temperature=0.8, seed=5))
    [alone] = run_until_done(Engine(model, tokenizer, EngineConfig(slots=1)), {0: [(PROMPTS[1], sampled)]})
    engine = Engine(model, tokenizer, EngineConfig(slots=3))
    outputs = run_until_done(engine, {0: [(PROMPTS[0], greedy())], 2: [(PROMPTS[1], sampled)],
                                      3: [(PROMPTS[2], greedy())]})
    assert outputs[1] == alone


def test_stop_strings_and_limits_end_a_request(model, tokenizer):
    engine = Engine(model, tokenizer, EngineConfig(slots=2))
    row = engine.add(PROMPTS[0], greedy(max_new_tokens=3, ignore_eos=True))
    finish = []
    while engine.has_work:
        finish += [t.finish_reason for t in engine.step().values()]
    assert finish == [None, None, "length"]
    assert engine.free_slots == 2 and row is not None


def test_a_prompt_that_fills_the_slot_is_refused(model, tokenizer):
    engine = Engine(model, tokenizer, EngineConfig(slots=1))
    with pytest.raises(LlamaOrtError, match="positions"):
        engine.add([1] * MAX_SEQ_LEN, greedy())


def test_the_engine_needs_a_static_cache(built, tokenizer):
    with pytest.raises(LlamaOrtError, match="max_seq_len"):
        Engine(load_model(built.folder), tokenizer)


def test_a_request_dropped_while_its_prompt_runs_frees_its_slot(model, tokenizer):
    engine = Engine(model, tokenizer, EngineConfig(slots=1, prefill_chunk=8))
    row = engine.add([1, *range(2, 42)], greedy())  # 41 tokens: 6 chunks
    assert engine.step() == {}  # one chunk in, no token yet
    engine.drop(row)
    assert engine.free_slots == 1 and not engine.has_work
    assert engine.add(PROMPTS[0], greedy()) is not None


@pytest.mark.parametrize("prompt_len", [2, 8, 9, 17, 18])
def test_where_one_row_takes_another_path_no_prompt_chunk_is_one_token(model, tokenizer, monkeypatch, prompt_len):
    engine = Engine(model, tokenizer, EngineConfig(slots=2, prefill_chunk=8))
    engine.min_rows = 2  # as for int4 on the CPU (Provider.one_row_paths)
    chunks = []
    run_chunk = engine._run_prompt_chunk
    monkeypatch.setattr(engine, "_run_prompt_chunk", lambda request, chunk: (chunks.append(len(chunk)),
                                                                             run_chunk(request, chunk)))
    run_until_done(engine, {0: [([1, *range(2, prompt_len + 1)], greedy(max_new_tokens=2))]})
    assert sum(chunks) == prompt_len and min(chunks) >= 2 and max(chunks) <= 9
