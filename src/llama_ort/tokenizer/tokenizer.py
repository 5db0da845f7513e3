"""The tokenizer of a model folder: a vocabulary, its special tokens and its chat template."""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import fail
from .chat import render_chat
from .config import TokenizerConfig
from .stream import StreamDecoder
from .vocab import Vocab, load_vocab


class Tokenizer:
    """Text <-> token ids for one model, with its chat format.

    `eos_token_ids` holds every id that ends generation: the EOS token and the end-of-turn tokens
    (`<|im_end|>`, `<|eot_id|>`) that generation_config.json names.
    """

    def __init__(self, vocab: Vocab, config: TokenizerConfig, where: Path):
        self.vocab = vocab
        self.config = config
        self.where = where
        self.bos_token = config.bos_token or vocab.bos_token
        self.eos_token = config.eos_token or vocab.eos_token
        bos_id = self.token_to_id(self.bos_token) if self.bos_token else None
        self.bos_token_id: int | None = config.bos_token_id if bos_id is None else bos_id
        eos_id = self.token_to_id(self.eos_token) if self.eos_token else None
        eos_ids = [eos_id] if eos_id is not None else []
        self.eos_token_ids: tuple[int, ...] = tuple(dict.fromkeys(eos_ids + list(config.eos_token_ids)))
        self.chat_template = config.chat_template

    @classmethod
    def from_folder(cls, folder: str | Path) -> Tokenizer:
        folder = Path(folder)
        if not folder.is_dir():
            raise fail(folder, "no such folder: give the model folder that holds tokenizer.json or tokenizer.model")
        config = TokenizerConfig.from_folder(folder)
        return cls(load_vocab(folder, config), config, folder)

    @property
    def vocab_size(self) -> int:
        return self.vocab.size

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.token_to_id(token)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; special tokens written in it (`<|im_start|>`) become their ids.
        `add_special_tokens` adds BOS/EOS where the model's config asks for them."""
        return self.vocab.encode(text, add_special_tokens)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self.vocab.decode(list(ids), skip_special_tokens)

    def stream_decoder(self, skip_special_tokens: bool = False) -> StreamDecoder:
        """A decoder to feed generated ids one at a time."""
        return StreamDecoder(functools.partial(self.decode, skip_special_tokens=skip_special_tokens))

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool = True, **variables) -> str:
        """The prompt for `messages` ([{"role": "user", "content": ...}, ...]) in the model's chat format."""
        if not self.chat_template:
            raise fail(self.where, "has no chat template: add chat_template to tokenizer_config.json, "
                       "or prompt the model with plain text")
        return render_chat(self.chat_template, messages, add_generation_prompt,
                           **{**self.special_tokens(), **variables})

    def encode_chat(self, messages: list[dict], add_generation_prompt: bool = True, **variables) -> list[int]:
        """Token ids of the chat prompt. The template writes any BOS itself, so none is added."""
        return self.encode(self.apply_chat_template(messages, add_generation_prompt, **variables),
                           add_special_tokens=False)

    def special_tokens(self) -> dict[str, str]:
        """Special tokens by role, as chat templates name them."""
        named = {"bos_token": self.bos_token, "eos_token": self.eos_token,
                 "unk_token": self.config.unk_token, "pad_token": self.config.pad_token}
        return {role: text for role, text in named.items() if text is not None}
