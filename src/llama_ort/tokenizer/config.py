"""What a model folder says about its tokenizer besides the vocabulary: special tokens, BOS/EOS flags, chat template.

Hugging Face spreads this over tokenizer_config.json, special_tokens_map.json, generation_config.json and
chat_template.jinja; `TokenizerConfig.from_folder` gathers it into one record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import fail

CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
GENERATION_CONFIG_FILE = "generation_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


@dataclass(frozen=True)
class TokenizerConfig:
    """Special tokens by their text; `add_bos_token` None means the folder does not say (the vocabulary decides)."""

    bos_token: str | None = None
    eos_token: str | None = None
    unk_token: str | None = None
    pad_token: str | None = None
    add_bos_token: bool | None = None
    add_eos_token: bool | None = None
    chat_template: str | None = None
    eos_token_ids: tuple[int, ...] = ()  # generation_config.json's eos_token_id: often several (end of turn too)
    bos_token_id: int | None = None  # generation_config.json's, used when bos_token names no token

    @classmethod
    def from_folder(cls, folder: Path) -> TokenizerConfig:
        config = read_json(folder / CONFIG_FILE)
        special = read_json(folder / SPECIAL_TOKENS_FILE)
        generation = read_json(folder / GENERATION_CONFIG_FILE)
        template_file = folder / CHAT_TEMPLATE_FILE
        template = template_file.read_text() if template_file.exists() else chat_template(config, folder / CONFIG_FILE)

        def token(name: str) -> str | None:
            return token_text(config.get(name, special.get(name)))

        eos_ids = generation.get("eos_token_id")
        return cls(
            bos_token=token("bos_token"),
            eos_token=token("eos_token"),
            unk_token=token("unk_token"),
            pad_token=token("pad_token"),
            add_bos_token=config.get("add_bos_token"),
            add_eos_token=config.get("add_eos_token"),
            chat_template=template,
            eos_token_ids=tuple(eos_ids if isinstance(eos_ids, list) else [] if eos_ids is None else [eos_ids]),
            bos_token_id=generation.get("bos_token_id"),
        )


def read_json(path: Path) -> dict:
    """A JSON object from `path`, {} if there is no such file."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise fail(path, f"is not valid JSON (line {e.lineno}: {e.msg}); restore it from the model's source") from e
    if not isinstance(data, dict):
        raise fail(path, "must hold a JSON object; restore it from the model's source")
    return data


def token_text(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken object with `content`."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def chat_template(config: dict, where: Path) -> str | None:
    """The default chat template: a string, or in some configs a list of named templates."""
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {entry.get("name"): entry.get("template") for entry in template}
        if "default" not in named:
            raise fail(where, f"chat_template lists {sorted(named)} but no 'default' template")
        return named["default"]
    return template
