"""Vocabularies: text <-> ids, special tokens matched whole, BOS/EOS added on request; no chat, no config files.

A model folder holds one of two: tokenizer.json (the `tokenizers` library) or tokenizer.model (sentencepiece,
as Meta ships Llama 2). Both are read behind the one `Vocab` interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import tokenizers
from tokenizers import processors

from ..errors import fail
from .config import CONFIG_FILE, TokenizerConfig

TOKENIZER_JSON = "tokenizer.json"
SENTENCEPIECE_MODEL = "tokenizer.model"


class Vocab(Protocol):
    """Text <-> ids. `encode` matches special tokens written in the text whole; with `add_special_tokens` it adds
    the BOS/EOS the folder asks for."""

    size: int
    bos_token: str | None  # what the vocabulary itself names BOS and EOS, if it does
    eos_token: str | None

    def encode(self, text: str, add_special_tokens: bool) -> list[int]: ...

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str: ...

    def token_to_id(self, token: str) -> int | None: ...


def bos_eos_processor(bos: tuple[str, int] | None, eos: tuple[str, int] | None) -> processors.TemplateProcessing:
    """A post-processor that puts `bos` before each text and `eos` after it: (text, id) pairs, or None for none."""
    template = ([f"{bos[0]}:0"] if bos else []) + ["$A:0"] + ([f"{eos[0]}:0"] if eos else [])
    return processors.TemplateProcessing(single=" ".join(template), special_tokens=[t for t in (bos, eos) if t])


class TokenizersVocab:
    """tokenizer.json, run by the `tokenizers` library: its post-processor adds BOS/EOS."""

    def __init__(self, backend: tokenizers.Tokenizer):
        self.backend = backend
        self.size = backend.get_vocab_size(with_added_tokens=True)
        self.bos_token = self.eos_token = None  # tokenizer.json gives tokens no roles; tokenizer_config.json does

    @classmethod
    def from_file(cls, path: Path, config: TokenizerConfig) -> TokenizersVocab:
        """Load `path`. BOS/EOS flags that tokenizer_config.json states replace the file's post-processor, as in
        transformers, so that `add_bos_token: false` there holds even if tokenizer.json adds BOS."""
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for unreadable files
            raise fail(path, f"is not a tokenizer.json the tokenizers library can read ({e}); restore it") from e
        vocab = cls(backend)
        if config.add_bos_token is not None or config.add_eos_token is not None:
            where = path.parent / CONFIG_FILE
            bos = vocab.special_token(config.bos_token, where) if config.add_bos_token else None
            eos = vocab.special_token(config.eos_token, where) if config.add_eos_token else None
            backend.post_processor = bos_eos_processor(bos, eos)
        return vocab

    def special_token(self, token: str | None, where: Path) -> tuple[str, int]:
        """(text, id) of a token the config asks to add to every text."""
        token_id = None if token is None else self.token_to_id(token)
        if token_id is None:
            raise fail(where, f"asks to add special token {token!r}, which the vocabulary does not have; "
                       "fix bos_token/eos_token or add_bos_token/add_eos_token")
        return token, token_id

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        # encode_batch releases the GIL while it works and encode holds it: a server tokenizing a long prompt in a
        # worker thread would stop every other thread for as long (seconds for megabytes of text).
        return self.backend.encode_batch([text], add_special_tokens=add_special_tokens)[0].ids

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self.backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)


def load_vocab(folder: Path, config: TokenizerConfig) -> Vocab:
    """The vocabulary in `folder`: tokenizer.json if present, else tokenizer.model."""
    if (folder / TOKENIZER_JSON).exists():
        return TokenizersVocab.from_file(folder / TOKENIZER_JSON, config)
    if (folder / SENTENCEPIECE_MODEL).exists():
        from .sentencepiece_vocab import SentencePieceVocab

        # Llama's sentencepiece vocabularies add BOS unless the config says otherwise, as Meta's code does.
        add_bos = True if config.add_bos_token is None else config.add_bos_token
        return SentencePieceVocab(folder / SENTENCEPIECE_MODEL, add_bos, add_eos=bool(config.add_eos_token))
    raise fail(folder, f"has no tokenizer: expected {TOKENIZER_JSON} or {SENTENCEPIECE_MODEL}; "
               "export the checkpoint's tokenizer into it")
