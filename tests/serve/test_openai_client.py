"""The official `openai` package against the server: chat and text completions, streamed and not, usage,
stop strings, max_tokens, seeds and the model list."""

from __future__ import annotations

import openai
import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_lists_the_served_model(client, server):
    assert [m.id for m in client.models.list().data] == [server.model]
    assert client.models.retrieve(server.model).id == server.model


def test_chat_completion_answers_with_usage(client, server, engine):
    reply = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=24)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and choice.message.role == "assistant"
    assert "Paris" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens == len(engine.encode_chat(QUESTION))
    assert 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_equals_the_whole_answer(client, server):
    whole = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=24)
    chunks = list(client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=24,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([d for d in deltas if d]) > 1, "the answer came in one piece, not as a stream"
    assert "".join(deltas) == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_text_completion_streamed_and_not(client, server):
    prompt = "The three primary colors are"
    whole = client.completions.create(model=server.model, prompt=prompt, temperature=0, max_tokens=12)
    assert whole.object == "text_completion" and whole.choices[0].text
    assert whole.usage.completion_tokens == 12 and whole.choices[0].finish_reason == "length"
    streamed = client.completions.create(model=server.model, prompt=prompt, temperature=0, max_tokens=12, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == whole.choices[0].text


def test_stop_string_ends_the_answer_before_it(client, server):
    full = client.completions.create(model=server.model, prompt="1, 2, 3, 4,", temperature=0, max_tokens=12)
    text = full.choices[0].text
    stop = text.strip().split()[1]  # a word the greedy answer reaches after its first
    cut = client.completions.create(model=server.model, prompt="1, 2, 3, 4,", temperature=0, max_tokens=12,
                                    stop=[stop, "never appears"])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == text[: text.index(stop)]


def test_max_tokens_ends_with_length(client, server):
    reply = client.chat.completions.create(model=server.model, messages=QUESTION, temperature=0, max_tokens=2)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 2


def test_a_seed_repeats_a_sampled_answer(client, server):
    def sample(seed):
        return client.chat.completions.create(model=server.model, messages=QUESTION, temperature=1.0, top_p=0.9,
                                              seed=seed, max_tokens=16).choices[0].message.content

    assert sample(7) == sample(7)


def test_multi_turn_chat_sees_the_earlier_turns(client, server, engine):
    turns = [*QUESTION, {"role": "assistant", "content": "Paris."},
             {"role": "user", "content": "And what is the capital of Germany?"}]
    reply = client.chat.completions.create(model=server.model, messages=turns, temperature=0, max_tokens=16)
    assert reply.usage.prompt_tokens == len(engine.encode_chat(turns))
    assert "Berlin" in reply.choices[0].message.content
