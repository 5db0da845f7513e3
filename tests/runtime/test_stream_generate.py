"""Text generation: streamed responses, stop strings, batches, seeded sampling (tiny model, char tokenizer)."""

import pytest

from llama_ort_testing.tiny_models import PROMPTS, hf_greedy
from llama_ort.runtime.generate import GenerateOptions
from llama_ort.runtime.sampling import SamplingParams
from llama_ort.runtime.session import load_model
from llama_ort.runtime.stream import batch_generate, generate, stream_generate
from llama_ort.tokenizer import Tokenizer

TEXTS = ["Hello there", "The lightest element is", "中文 é", "a"]


@pytest.fixture(scope="module")
def model(tiny):
    return load_model(tiny.folder)


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return Tokenizer.from_folder(tiny.folder)


def test_streamed_text_is_the_greedy_tokens_of_transformers_decoded(tiny, model, tokenizer):
    for text in TEXTS:
        ids = tokenizer.encode(text)
        expected = hf_greedy(tiny, ids, 48)
        responses = list(stream_generate(model, tokenizer, text, GenerateOptions(max_new_tokens=48)))
        assert [r.token for r in responses] == expected
        ends_with_eos = expected[-1] in tokenizer.eos_token_ids
        text_tokens = expected[:-1] if ends_with_eos else expected
        assert "".join(r.text for r in responses) == tokenizer.decode(text_tokens, skip_special_tokens=True)
        assert [r.finish_reason for r in responses[:-1]] == [None] * (len(responses) - 1)
        assert responses[-1].finish_reason == ("stop" if ends_with_eos else "length")
        assert responses[-1].prompt_tokens == len(ids) and responses[-1].generation_tokens == len(expected)
        assert responses[-1].generation_tps > 0 and responses[-1].prompt_tps > 0


def test_a_stop_string_ends_the_text_before_it(model, tokenizer):
    options = GenerateOptions(max_new_tokens=64, ignore_eos=True)
    full = generate(model, tokenizer, TEXTS[1], options)
    stop = full[20:23]
    responses = list(stream_generate(model, tokenizer, TEXTS[1], GenerateOptions(
        max_new_tokens=64, ignore_eos=True, stop_strings=("never there", stop))))
    text = "".join(r.text for r in responses)
    assert text == full[: full.index(stop)]
    assert responses[-1].finish_reason == "stop"
    assert len(responses) < 64


def test_the_same_seed_gives_the_same_text(model, tokenizer):
    def sample(seed):
        params = SamplingParams(temperature=0.9, top_p=0.9, seed=seed)
        return generate(model, tokenizer, TEXTS[0], GenerateOptions(max_new_tokens=48, sampling=params,
                                                                    ignore_eos=True))

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_each_batched_row_equals_its_prompt_alone(model, tokenizer):
    options = GenerateOptions(max_new_tokens=40, stop_strings=("zz",))
    alone = [list(stream_generate(model, tokenizer, text, options)) for text in TEXTS]
    batched = batch_generate(model, tokenizer, TEXTS, options)
    for responses, row in zip(alone, batched):
        assert row.text == "".join(r.text for r in responses)
        assert row.tokens == [r.token for r in responses]
        assert row.finish_reason == responses[-1].finish_reason
