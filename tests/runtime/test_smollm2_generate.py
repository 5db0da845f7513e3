"""SmolLM2-135M-Instruct (the embedded GGUF, dequantized to fp32 by `llama-ort optimize`) against
transformers' generate(do_sample=False) on the same GGUF: token for token.

EOS is ignored on both sides so every prompt runs its 64 tokens. The full comparison takes minutes on
two cores: it is marked slow (`pytest -m slow tests/runtime`); one short prompt runs by default.
"""

from collections import Counter

import pytest

from llama_ort.graph.llama import BuildOptions
from llama_ort.pipeline import optimize
from llama_ort.runtime import GenerateOptions, generate_ids, load_model
from llama_ort.runtime.generation_config import DEFAULT_SAMPLING, sampling_defaults
from llama_ort.runtime.stream import stream_generate
from llama_ort.tokenizer import Tokenizer

torch = pytest.importorskip("torch")

QUESTIONS = [
    "What is the lightest element?",
    "Write a haiku about the sea.",
    "Explain in two sentences why the sky is blue.",
    "List three prime numbers greater than 50.",
    "Translate 'good morning' into French and German.",
]
NEW_TOKENS = 64


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "smollm2-135m-instruct-cpu-fp32"
    optimize(None, out, BuildOptions(target="cpu", precision="fp32"), tmp_path_factory.mktemp("cache"),
             verify=False, show_progress=False)
    return out


@pytest.fixture(scope="module")
def tokenizer(folder):
    return Tokenizer.from_folder(folder)


@pytest.fixture(scope="module")
def prompts(tokenizer):
    """Each question as a user message in SmolLM2's chat template (different lengths: 30 to 40 tokens)."""
    return [tokenizer.encode_chat([{"role": "user", "content": q}]) for q in QUESTIONS]


@pytest.fixture(scope="module")
def expected(smollm2_reference):
    """transformers' greedy tokens per prompt, computed once each."""
    memo = {}

    def greedy(prompt, max_new_tokens=NEW_TOKENS):
        key = (tuple(prompt), max_new_tokens)
        if key not in memo:
            with torch.no_grad():
                out = smollm2_reference.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                                                 dtype=torch.long), max_new_tokens=max_new_tokens, do_sample=False,
                                                 eos_token_id=None, pad_token_id=0)
            memo[key] = out[0, len(prompt):].tolist()
            assert len(memo[key]) == max_new_tokens
        return memo[key]

    return greedy


def test_a_short_answer_matches_transformers(folder, prompts, expected):
    model = load_model(folder, max_seq_len=64)
    ours = generate_ids(model, prompts[:1], GenerateOptions(max_new_tokens=16, ignore_eos=True))
    assert ours == [expected(prompts[0], 16)]


def most_repeats(tokens: list[int], n: int = 10) -> int:
    """How often the most frequent run of n tokens occurs in `tokens`."""
    return max(Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)).values())


def test_the_commands_default_ends_an_answer_that_greedy_repeats(folder, tokenizer, prompts):
    """Greedy SmolLM2 answers "What is the lightest element?" with one sentence over and over until the limit; the
    default of generate and chat (the embedded model has no sampling of its own) ends the answer instead."""
    assert sampling_defaults(folder) == DEFAULT_SAMPLING
    model, eos = load_model(folder), tokenizer.eos_token_ids
    greedy = generate_ids(model, prompts[:1], GenerateOptions(max_new_tokens=160), eos)[0]
    assert len(greedy) == 160 and most_repeats(greedy) >= 3
    default = generate_ids(model, prompts[:1], GenerateOptions(max_new_tokens=160, sampling=DEFAULT_SAMPLING), eos)[0]
    assert default[-1] in eos and most_repeats(default) == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_each_prompt_alone_matches_transformers(folder, prompts, expected, mode):
    # dynamic: a 32-position cache to start with, grown 3 times over a 30-40 token prompt and 64 tokens
    model = load_model(folder, max_seq_len=128 if mode == "static" else None)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS, ignore_eos=True, padding=32)
    for prompt in prompts:
        assert generate_ids(model, [prompt], options) == [expected(prompt)]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_a_batch_of_the_prompts_matches_each_alone(folder, prompts, expected, mode):
    model = load_model(folder, max_seq_len=128 if mode == "static" else None)
    options = GenerateOptions(max_new_tokens=NEW_TOKENS, ignore_eos=True, padding=32)
    assert generate_ids(model, prompts, options) == [expected(prompt) for prompt in prompts]


@pytest.mark.slow
def test_the_text_answer_ends_at_the_end_of_turn(folder, tokenizer, expected):
    """With EOS on, the answer stops at <|im_end|> (the tokenizer's eos id) and decodes cleanly."""
    prompt = tokenizer.encode_chat([{"role": "user", "content": "What is the capital of France?"}])
    responses = list(stream_generate(load_model(folder), tokenizer, prompt, GenerateOptions(max_new_tokens=32)))
    tokens = expected(prompt, 32)
    end = next(i for i, t in enumerate(tokens) if t in tokenizer.eos_token_ids)
    assert [r.token for r in responses] == tokens[: end + 1]
    assert responses[-1].finish_reason == "stop"
    assert "".join(r.text for r in responses) == tokenizer.decode(tokens[:end], skip_special_tokens=True)
