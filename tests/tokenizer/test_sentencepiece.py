"""Llama 2's tokenizer format: a sentencepiece model, as Meta ships it and as a GGUF stores it.

The model is the tiny one conftest.py trains with Llama 2's options. Oracles: sentencepiece itself, Meta's
reference chat encoding, and transformers' LlamaTokenizer.
"""

from __future__ import annotations

from types import SimpleNamespace

import gguf
import pytest
import sentencepiece

from llama_ort.errors import LlamaOrtError
from llama_ort.tokenizer import LLAMA2_CHAT_TEMPLATE, Tokenizer, export_tokenizer

SPECIALS = ("<s>", "</s>", "<unk>")

DIALOGS = {
    "user only": [{"role": "user", "content": "hello world"}],
    "with system": [{"role": "system", "content": "Answer in one word."},
                    {"role": "user", "content": "naïve café 日本語?"}],
    "multi-turn": [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "the quick brown fox"},
                   {"role": "assistant", "content": " jumps over 2024 lazy dogs 😀 "},
                   {"role": "user", "content": "def return (x) {\n  code\n}"}],
}


@pytest.fixture(scope="module")
def sp(spm_model):
    return sentencepiece.SentencePieceProcessor(model_file=str(spm_model))


@pytest.fixture(scope="module")
def reference(llama2_folder):
    transformers = pytest.importorskip("transformers")
    return transformers.LlamaTokenizer.from_pretrained(llama2_folder)


def meta_reference_ids(sp, dialog: list[dict]) -> list[int]:
    """How Meta's llama/generation.py (chat_completion) encodes a dialog: each turn pair on its own."""
    if dialog[0]["role"] == "system":
        first = "<<SYS>>\n" + dialog[0]["content"] + "\n<</SYS>>\n\n" + dialog[1]["content"]
        dialog = [{"role": "user", "content": first}, *dialog[2:]]
    ids = []
    for prompt, answer in zip(dialog[:-1:2], dialog[1::2]):
        text = f"[INST] {prompt['content'].strip()} [/INST] {answer['content'].strip()} "
        ids += [sp.bos_id(), *sp.encode(text), sp.eos_id()]
    return ids + [sp.bos_id(), *sp.encode(f"[INST] {dialog[-1]['content'].strip()} [/INST]")]


def test_encode_matches_sentencepiece(llama2, sp, varied_texts):
    for text in varied_texts:
        if not any(special in text for special in SPECIALS):
            assert llama2.encode(text) == [sp.bos_id(), *sp.encode(text)], repr(text)


def test_encode_matches_transformers(llama2, reference, varied_texts):
    # transformers 5's Metaspace adds no "▁" to a text that already starts with a space, where sentencepiece
    # (and Meta's code) adds one: those texts are compared with sentencepiece above instead.
    for text in varied_texts:
        if not text[:1].isspace():
            assert llama2.encode(text) == reference.encode(text), repr(text)


def test_decode_matches_transformers(llama2, reference, varied_texts):
    for text in varied_texts:
        ids = llama2.encode(text)
        for skip in (False, True):
            assert llama2.decode(ids, skip) == reference.decode(ids, skip_special_tokens=skip), repr(text)


@pytest.mark.parametrize("name", DIALOGS)
def test_chat_matches_meta_reference(llama2, sp, name):
    assert llama2.encode_chat(DIALOGS[name]) == meta_reference_ids(sp, DIALOGS[name])


@pytest.mark.parametrize("name", DIALOGS)
def test_chat_matches_transformers(llama2, reference, name):
    messages = DIALOGS[name]
    assert llama2.apply_chat_template(messages) == reference.apply_chat_template(
        messages, chat_template=LLAMA2_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True)
    assert llama2.encode_chat(messages) == reference.apply_chat_template(
        messages, chat_template=LLAMA2_CHAT_TEMPLATE, tokenize=True, add_generation_prompt=True, return_dict=False)


def test_chat_rejects_roles_out_of_turn(llama2):
    with pytest.raises(LlamaOrtError, match="roles must alternate"):
        llama2.encode_chat([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


def test_meta_special_tokens(llama2):
    assert llama2.bos_token_id == 1 and llama2.eos_token_ids == (2,)
    assert llama2.encode("</s>", add_special_tokens=False) == [2]


def test_missing_tokenizer_model_is_a_clear_error(tmp_path):
    (tmp_path / "llama-2-7b").mkdir()
    with pytest.raises(LlamaOrtError, match="tokenizer.model"):
        export_tokenizer(SimpleNamespace(format="meta", path=tmp_path / "llama-2-7b"), tmp_path / "out")


def sentencepiece_metadata(sp) -> dict:
    """The tokenizer metadata llama.cpp's converter writes for a sentencepiece vocabulary."""
    def token_type(i: int) -> gguf.TokenType:
        for is_kind, kind in ((sp.is_unknown, gguf.TokenType.UNKNOWN), (sp.is_control, gguf.TokenType.CONTROL),
                              (sp.is_byte, gguf.TokenType.BYTE), (sp.is_unused, gguf.TokenType.UNUSED)):
            if is_kind(i):
                return kind
        return gguf.TokenType.NORMAL

    size = sp.get_piece_size()
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": [sp.id_to_piece(i) for i in range(size)],
        "tokenizer.ggml.scores": [sp.get_score(i) for i in range(size)],
        "tokenizer.ggml.token_type": [int(token_type(i)) for i in range(size)],
        "tokenizer.ggml.bos_token_id": sp.bos_id(),
        "tokenizer.ggml.eos_token_id": sp.eos_id(),
        "tokenizer.ggml.unknown_token_id": sp.unk_id(),
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.chat_template": LLAMA2_CHAT_TEMPLATE,
    }


def test_gguf_sentencepiece_vocab_matches_sentencepiece(sp, llama2, varied_texts, write_gguf, tmp_path):
    write_gguf(tmp_path / "tiny.gguf", sentencepiece_metadata(sp))
    export_tokenizer(SimpleNamespace(format="gguf", path=tmp_path / "tiny.gguf"), tmp_path / "out")
    rebuilt = Tokenizer.from_folder(tmp_path / "out")
    assert (tmp_path / "out" / "tokenizer.json").exists()
    for text in varied_texts:
        ids = llama2.encode(text)
        assert rebuilt.encode(text) == ids, repr(text)
        for skip in (False, True):
            assert rebuilt.decode(ids, skip) == llama2.decode(ids, skip), repr(text)
    for dialog in DIALOGS.values():
        assert rebuilt.encode_chat(dialog) == meta_reference_ids(sp, dialog)
