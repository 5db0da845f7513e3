"""Multi-turn chat in the model's template: the history, /reset, and dropping the oldest turns."""

import logging

import pytest

from llama_ort_testing.tiny_models import hf_greedy
from llama_ort.errors import LlamaOrtError
from llama_ort.runtime.chat import Chat
from llama_ort.runtime.generate import GenerateOptions
from llama_ort.runtime.session import load_model
from llama_ort.tokenizer import Tokenizer


def answer(chat, message):
    return "".join(r.text for r in chat.send(message))


def test_each_turn_runs_the_whole_history_in_the_template(tiny):
    tokenizer = Tokenizer.from_folder(tiny.folder)
    chat = Chat(load_model(tiny.folder), tokenizer, GenerateOptions(max_new_tokens=12), system="Be brief")
    first = answer(chat, "Hi")
    second = answer(chat, "More")
    messages = [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": first}, {"role": "user", "content": "More"}]
    prompt = tokenizer.encode_chat(messages)
    expected = hf_greedy(tiny, prompt, 12)
    if expected[-1] in tokenizer.eos_token_ids:
        expected = expected[:-1]
    assert second == tokenizer.decode(expected, skip_special_tokens=True)
    assert chat.turns[-1] == {"role": "assistant", "content": second}


def test_reset_forgets_the_conversation(tiny):
    chat = Chat(load_model(tiny.folder), Tokenizer.from_folder(tiny.folder), GenerateOptions(max_new_tokens=8))
    first = answer(chat, "Hi")
    answer(chat, "Something else")
    chat.reset()
    assert answer(chat, "Hi") == first


def test_the_oldest_turns_are_dropped_when_the_history_no_longer_fits(tiny, caplog):
    model = load_model(tiny.folder, max_seq_len=48)  # static: 48 - 16 new tokens leaves 32 for the prompt
    chat = Chat(model, Tokenizer.from_folder(tiny.folder), GenerateOptions(max_new_tokens=16), system="S")
    with caplog.at_level(logging.WARNING, logger="llama_ort.runtime"):
        for message in ["one", "two", "three"]:
            answer(chat, message)
    assert "dropped its oldest turn" in caplog.text
    assert chat.turns[0]["role"] == "user" and chat.turns[-2]["content"] == "three"
    assert len(chat.tokenizer.encode_chat(chat.system + chat.turns[:-1])) <= chat.max_prompt_tokens


def test_a_message_too_long_even_alone_is_refused_and_forgotten(tiny):
    chat = Chat(load_model(tiny.folder, max_seq_len=48), Tokenizer.from_folder(tiny.folder),
                GenerateOptions(max_new_tokens=16))
    with pytest.raises(LlamaOrtError, match="message: is too long"):
        answer(chat, "x" * 40)
    assert chat.turns == []


def test_in_static_mode_a_turn_runs_only_its_new_tokens_and_answers_the_same(tiny):
    tokenizer = Tokenizer.from_folder(tiny.folder)
    options = GenerateOptions(max_new_tokens=12)
    fresh = Chat(load_model(tiny.folder), tokenizer, options, system="Be brief")  # dynamic: the whole history
    kept = Chat(load_model(tiny.folder, max_seq_len=160), tokenizer, options, system="Be brief")
    for turn, message in enumerate(["Hi", "More", "And again"]):
        history = len(tokenizer.encode_chat(kept.system + kept.turns))
        responses = list(kept.send(message))
        assert "".join(r.text for r in responses) == answer(fresh, message)
        if turn:  # the history up to the last answer's text, which is tokenized anew after it
            assert responses[-1].cached_tokens >= history - 12 > 0


def test_a_turn_left_early_frees_the_conversations_slot(tiny):
    chat = Chat(load_model(tiny.folder, max_seq_len=160), Tokenizer.from_folder(tiny.folder),
                GenerateOptions(max_new_tokens=12))
    for _ in chat.send("Hi"):
        break  # the caller stops reading after one token
    assert chat.engine.free_slots == 1 and not chat.engine.has_work
    assert answer(chat, "More")
