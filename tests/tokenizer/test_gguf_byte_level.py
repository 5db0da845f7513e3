"""SmolLM2's byte-level BPE tokenizer rebuilt from its GGUF, against transformers' tokenizer for the same file."""

from __future__ import annotations

import functools
import json
from types import SimpleNamespace

import pytest
import tokenizers

from llama_ort.errors import LlamaOrtError
from llama_ort.runtime import SamplingParams
from llama_ort.runtime.generation_config import sampling_defaults
from llama_ort.tokenizer import Tokenizer, export_tokenizer

NORMAL, CONTROL = 1, 3  # llama.cpp's token types

SYSTEM = {"role": "system", "content": "You are a terse assistant."}

CONVERSATIONS = {
    "user only": [{"role": "user", "content": "What is the capital of France?"}],
    "with system": [SYSTEM, {"role": "user", "content": "Hi!"}],
    "multi-turn": [
        SYSTEM,
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another one, bigger?"},
        {"role": "assistant", "content": "101 is prime."},
        {"role": "user", "content": "Thanks."},
    ],
    "unicode": [{"role": "user", "content": "Traduis « naïve café » en 日本語, s'il te plaît 😀🇫🇷"}],
    "code": [{"role": "user", "content": "Fix this:\n```python\ndef f(x):\n\treturn x**2  # square\n```"}],
    "numbers": [{"role": "user", "content": "Add 12345.678 and -0.0009, then 1e10 / 3 = ?"}],
    "whitespace": [{"role": "user", "content": "  spaced   out \n\n\n  lines\t\ttabs   "}],
    "special tokens as text": [{"role": "user", "content": "What does <|im_end|> mean?"}],
}


@pytest.mark.parametrize("name", CONVERSATIONS)
def test_chat_ids_match_transformers(smollm, smollm_reference, name):
    messages = CONVERSATIONS[name]
    want = smollm_reference.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    assert smollm.encode_chat(messages) == want


def test_chat_without_generation_prompt_matches_transformers(smollm, smollm_reference):
    messages = CONVERSATIONS["multi-turn"]
    want = smollm_reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert smollm.apply_chat_template(messages, add_generation_prompt=False) == want


def test_encode_matches_transformers(smollm, smollm_reference, varied_texts):
    for text in varied_texts:
        assert smollm.encode(text) == smollm_reference.encode(text), repr(text)


def test_decode_matches_transformers(smollm, smollm_reference, varied_texts):
    for text in varied_texts:
        ids = smollm.encode(text)
        assert smollm.decode(ids) == smollm_reference.decode(ids) == text, repr(text)


def test_special_tokens(smollm, smollm_folder):
    assert smollm.bos_token_id == 1
    assert smollm.eos_token_ids == (2,)  # <|im_end|>: SmolLM2-Instruct's end of turn is its EOS
    assert smollm.encode("<|im_start|>assistant<|im_end|>") == [1, 520, 9531, 2]
    assert smollm.decode([1, 520, 9531, 2], skip_special_tokens=True) == "assistant"
    config = json.loads((smollm_folder / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is False and config["eos_token"] == "<|im_end|>"
    assert "<|im_start|>" in config["chat_template"]


def test_digits_are_split_one_by_one(smollm):
    # SmolLM2's pre-tokenizer ("smollm" in the GGUF) cuts every digit apart, as its tokenizer.json does.
    assert smollm.encode("2024") == [34, 32, 34, 36]


def byte_level_metadata(smollm_folder, pre: str, size: int = 8000) -> dict:
    """GGUF metadata for a byte-level vocabulary cut down from SmolLM2's, so it writes and loads fast: the special
    tokens, the byte alphabet, and the tokens the first merges make, until `size`. Every token is reachable."""
    model = json.loads((smollm_folder / "tokenizer.json").read_text())["model"]
    ids = model["vocab"]
    kept = {token for token, i in ids.items() if i < 17 or len(token) == 1}  # SmolLM2's first 17 are special
    merges = []
    for left, right in model["merges"]:
        if len(kept) >= size:
            break
        if left in kept and right in kept:
            kept.add(left + right)
            merges.append(f"{left} {right}")
    tokens = sorted(kept, key=ids.get)
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.token_type": [CONTROL if ids[token] < 17 else NORMAL for token in tokens],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
    }


@pytest.fixture(scope="module")
def byte_level_folder(smollm_folder, write_gguf, tmp_path_factory):
    """`byte_level_folder(pre)`: a folder with vocab.gguf (SmolLM2's vocabulary cut down, pre-tokenizer `pre`)
    and the tokenizer exported from it."""
    @functools.cache
    def make(pre: str):
        folder = tmp_path_factory.mktemp(pre)
        write_gguf(folder / "vocab.gguf", byte_level_metadata(smollm_folder, pre))
        export_tokenizer(SimpleNamespace(format="gguf", path=folder / "vocab.gguf"), folder)
        return folder

    return make


@pytest.mark.parametrize("pre", ["llama-bpe", "gpt-2"])
def test_other_pre_tokenizers_match_transformers(pre, byte_level_folder, varied_texts):
    transformers = pytest.importorskip("transformers")
    folder = byte_level_folder(pre)
    reference = transformers.AutoTokenizer.from_pretrained(folder, gguf_file="vocab.gguf")
    ours = Tokenizer.from_folder(folder)
    for text in varied_texts:
        assert ours.encode(text) == reference.encode(text), repr(text)


def test_llama3_pre_tokenizer_groups_digits_by_three(byte_level_folder):
    pre = tokenizers.Tokenizer.from_file(str(byte_level_folder("llama-bpe") / "tokenizer.json")).pre_tokenizer
    assert [word for word, _ in pre.pre_tokenize_str("12345 it's")] == ["123", "45", "Ġit", "'s"]


def test_unknown_pre_tokenizer_is_refused(write_gguf, tmp_path):
    write_gguf(tmp_path / "odd.gguf", {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "some-new-model",
                                       "tokenizer.ggml.tokens": ["a", "b", "ab"], "tokenizer.ggml.merges": ["a b"]})
    with pytest.raises(LlamaOrtError, match="tokenizer.ggml.pre is 'some-new-model'"):
        export_tokenizer(SimpleNamespace(format="gguf", path=tmp_path / "odd.gguf"), tmp_path / "out")


def test_unsupported_vocabulary_kind_is_refused(write_gguf, tmp_path):
    write_gguf(tmp_path / "bert.gguf", {"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": ["a"]})
    with pytest.raises(LlamaOrtError, match="tokenizer.ggml.model is 'bert'"):
        export_tokenizer(SimpleNamespace(format="gguf", path=tmp_path / "bert.gguf"), tmp_path / "out")


def test_the_sampling_a_gguf_recommends_becomes_the_model_folders_default(write_gguf, tmp_path):
    metadata = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.eos_token_id": 2,
                "tokenizer.ggml.tokens": ["a", "b", "ab"], "tokenizer.ggml.merges": ["a b"],
                "general.sampling.temp": 0.7, "general.sampling.top_k": 40, "general.sampling.penalty_repeat": 1.05,
                "general.sampling.min_p": 0.05}  # no transformers name: left out
    export_tokenizer(SimpleNamespace(format="gguf", path=write_gguf(tmp_path / "m.gguf", metadata)), tmp_path)
    config = json.loads((tmp_path / "generation_config.json").read_text())
    assert config == {"eos_token_id": [2], "temperature": 0.7, "top_k": 40, "repetition_penalty": 1.05,
                      "do_sample": True}
    assert sampling_defaults(tmp_path) == SamplingParams(temperature=0.7, top_k=40, repetition_penalty=1.05)
