"""tokenizer.model, run by sentencepiece, as Meta ships Llama 2.

sentencepiece reads "<s>" in text as three characters, but chat templates write BOS and EOS as text, so the text
is cut at special tokens first and each piece between them encoded on its own, with sentencepiece's leading
space. That is what Meta's reference chat code does (each turn encoded separately, BOS/EOS added as ids) and what
Hugging Face's tokenizer.json for Llama 2 does.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import sentencepiece
from sentencepiece import sentencepiece_model_pb2

from ..errors import fail

SPACE = "\u2581"  # sentencepiece's visible space


class SentencePieceVocab:
    def __init__(self, path: Path, add_bos: bool, add_eos: bool):
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
        except (RuntimeError, OSError) as e:
            raise fail(path, f"is not a sentencepiece model ({e}); restore it from the checkpoint") from e
        proto = sentencepiece_model_pb2.ModelProto.FromString(self.sp.serialized_model_proto())
        # sentencepiece drops the first piece's leading space when it decodes; we need to know when it does.
        self.has_dummy_prefix = proto.normalizer_spec.add_dummy_prefix
        self.size = self.sp.get_piece_size()
        self.special = {self.sp.id_to_piece(i): i for i in range(self.size)
                        if self.sp.is_control(i) or self.sp.is_unknown(i)}
        longest_first = sorted(self.special, key=len, reverse=True)
        self.special_pattern = re.compile("(" + "|".join(map(re.escape, longest_first)) + ")") if self.special else None
        self.bos_token = self.sp.id_to_piece(self.sp.bos_id()) if self.sp.bos_id() >= 0 else None
        self.eos_token = self.sp.id_to_piece(self.sp.eos_id()) if self.sp.eos_id() >= 0 else None
        self.prefix = [self.sp.bos_id()] if add_bos and self.sp.bos_id() >= 0 else []
        self.suffix = [self.sp.eos_id()] if add_eos and self.sp.eos_id() >= 0 else []

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        ids = []
        parts = self.special_pattern.split(text) if self.special_pattern else [text]
        for part in parts:  # with special tokens, every other part is one
            if part in self.special:
                ids.append(self.special[part])
            elif part:
                ids.extend(self.sp.encode(part))
        return self.prefix + ids + self.suffix if add_special_tokens else ids

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        special_ids = set(self.special.values())
        if skip_special_tokens:
            return self.sp.decode([i for i in ids if i not in special_ids])
        chunks = []
        for is_special, run in itertools.groupby(ids, key=special_ids.__contains__):
            if is_special:
                chunks += [self.sp.id_to_piece(i) for i in run]
            else:
                chunks.append(self._decode_run(list(run), is_first=not chunks))
        return "".join(chunks)

    def _decode_run(self, run: list[int], is_first: bool) -> str:
        # sentencepiece strips the leading space of every run it decodes; only the text's start should lose it.
        text = self.sp.decode(run)
        if not is_first and self.has_dummy_prefix and self.sp.id_to_piece(run[0]).startswith(SPACE):
            text = " " + text
        return text

    def token_to_id(self, token: str) -> int | None:
        token_id = self.sp.piece_to_id(token)  # the unknown token's id for text that is no piece
        return token_id if self.sp.id_to_piece(token_id) == token else None
