"""The streaming decoder, fed one id at a time, reproduces `decode` of all the ids exactly."""

from __future__ import annotations

import random

import pytest


def streamed(tokenizer, ids: list[int], skip_special_tokens: bool = False) -> list[str]:
    decoder = tokenizer.stream_decoder(skip_special_tokens)
    return [decoder.push(token_id) for token_id in ids] + [decoder.flush()]


@pytest.mark.parametrize("name", ["smollm", "llama2"])
@pytest.mark.parametrize("skip_special_tokens", [False, True])
def test_stream_reproduces_decode(name, skip_special_tokens, varied_texts, request):
    tokenizer = request.getfixturevalue(name)
    for text in varied_texts:
        ids = tokenizer.encode(text)
        chunks = streamed(tokenizer, ids, skip_special_tokens)
        assert "".join(chunks) == tokenizer.decode(ids, skip_special_tokens), repr(text)


@pytest.mark.parametrize("name", ["smollm", "llama2"])
def test_stream_of_random_ids_reproduces_decode(name, request):
    # Random ids make byte sequences no text encodes to: characters cut anywhere, stray continuation bytes.
    tokenizer = request.getfixturevalue(name)
    rng = random.Random(0)
    for _ in range(100):
        ids = [rng.randrange(tokenizer.vocab_size) for _ in range(rng.randint(1, 30))]
        assert "".join(streamed(tokenizer, ids)) == tokenizer.decode(ids), ids


def test_multibyte_character_waits_for_its_last_byte(smollm):
    ids = smollm.encode("😀")
    assert len(ids) > 1  # the emoji's four bytes span tokens
    chunks = streamed(smollm, ids)
    assert chunks[:-2] == [""] * (len(ids) - 1) and chunks[-2] == "😀"


def test_sentencepiece_word_keeps_its_leading_space(llama2):
    ids = llama2.encode("hello world", add_special_tokens=False)
    assert streamed(llama2, ids) == ["hello", " world", ""]
