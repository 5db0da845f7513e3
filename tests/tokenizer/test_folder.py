"""Loading a model folder's tokenizer files, and exporting a Hugging Face folder's."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.tokenizer import Tokenizer, export_tokenizer


@pytest.fixture
def hf_folder(smollm_folder, tmp_path):
    """A Hugging Face style folder: SmolLM2's tokenizer.json with hand-written config files."""
    folder = tmp_path / "hf"
    folder.mkdir()
    shutil.copy(smollm_folder / "tokenizer.json", folder)
    (folder / "config.json").write_text("{}")
    return folder


def write(folder, name, data):
    (folder / name).write_text(json.dumps(data))


def test_hf_export_copies_the_tokenizer_files(hf_folder, tmp_path):
    write(hf_folder, "tokenizer_config.json", {"eos_token": "<|im_end|>"})
    write(hf_folder, "special_tokens_map.json", {"bos_token": {"content": "<|im_start|>", "special": True}})
    write(hf_folder, "generation_config.json", {"eos_token_id": [2, 0]})
    (hf_folder / "chat_template.jinja").write_text("{{ messages[0].content }}")
    written = export_tokenizer(SimpleNamespace(format="hf", path=hf_folder), tmp_path / "out")
    assert sorted(p.name for p in written) == ["chat_template.jinja", "generation_config.json",
                                               "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
    tokenizer = Tokenizer.from_folder(tmp_path / "out")
    assert tokenizer.bos_token_id == 1  # named in special_tokens_map.json, as an AddedToken object
    assert tokenizer.eos_token_ids == (2, 0)  # the config's EOS, then generation_config.json's end tokens
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}]) == "hi"


def test_hf_export_without_tokenizer_files_fails(tmp_path):
    with pytest.raises(LlamaOrtError, match="tokenizer.json or tokenizer.model"):
        export_tokenizer(SimpleNamespace(format="hf", path=tmp_path), tmp_path / "out")


def test_config_flags_decide_bos_and_eos(hf_folder):
    write(hf_folder, "tokenizer_config.json",
          {"bos_token": "<|im_start|>", "eos_token": "<|endoftext|>", "add_bos_token": True, "add_eos_token": True})
    tokenizer = Tokenizer.from_folder(hf_folder)
    assert tokenizer.encode("hi") == [1, *tokenizer.encode("hi", add_special_tokens=False), 0]


def test_flag_naming_a_missing_token_fails(hf_folder):
    write(hf_folder, "tokenizer_config.json", {"bos_token": "<nope>", "add_bos_token": True})
    with pytest.raises(LlamaOrtError, match="tokenizer_config.json: asks to add special token '<nope>'"):
        Tokenizer.from_folder(hf_folder)


def test_named_chat_templates_use_the_default(hf_folder):
    write(hf_folder, "tokenizer_config.json", {"chat_template": [{"name": "tool_use", "template": "tools"},
                                                                 {"name": "default", "template": "plain"}]})
    assert Tokenizer.from_folder(hf_folder).apply_chat_template([]) == "plain"


def test_folder_without_chat_template_says_so(hf_folder):
    with pytest.raises(LlamaOrtError, match="has no chat template"):
        Tokenizer.from_folder(hf_folder).encode_chat([{"role": "user", "content": "hi"}])


def test_broken_config_names_the_file(hf_folder):
    (hf_folder / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(LlamaOrtError, match="tokenizer_config.json: is not valid JSON"):
        Tokenizer.from_folder(hf_folder)


def test_folder_without_tokenizer_fails(tmp_path):
    with pytest.raises(LlamaOrtError, match="has no tokenizer"):
        Tokenizer.from_folder(tmp_path)
