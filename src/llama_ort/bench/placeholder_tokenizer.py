"""A tokenizer for random-weight checkpoints: one made-up word per token id, so that every tool that insists on
a tokenizer (llama-ort optimize, onnxruntime-genai's builder, transformers) accepts the checkpoint.

Benchmarks feed token ids, never text, so the words do not matter; the vocabulary's size and the special
tokens' ids match the model's, so any id the model produces decodes.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint.spec import ModelSpec

UNK, BOS, EOS = "<unk>", "<s>", "</s>"


def token_strings(spec: ModelSpec) -> list[str]:
    """`t{id}` for every id, with the special tokens at the ids the model's config gives them."""
    tokens = [f"t{i}" for i in range(spec.vocab_size)]
    tokens[0] = UNK
    if spec.bos_token_id is not None:
        tokens[spec.bos_token_id] = BOS
    for eos in spec.eos_token_ids:
        tokens[eos] = EOS if eos == spec.eos_token_ids[0] else f"</s{eos}>"
    return tokens


def write_hf_tokenizer(spec: ModelSpec, folder: Path) -> None:
    """tokenizer.json (a word-level vocabulary) and tokenizer_config.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokens = token_strings(spec)
    tokenizer = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens([t for t in (UNK, BOS, EOS) if t in tokens])
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": UNK, "model_max_length": spec.context_length,
              "bos_token": BOS if spec.bos_token_id is not None else None, "eos_token": EOS}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_sentencepiece_tokenizer(spec: ModelSpec, folder: Path) -> None:
    """tokenizer.model, as Meta ships beside its weights: a unigram model whose pieces are the made-up words."""
    from sentencepiece import sentencepiece_model_pb2 as sp

    kinds = {UNK: sp.ModelProto.SentencePiece.UNKNOWN, BOS: sp.ModelProto.SentencePiece.CONTROL,
             EOS: sp.ModelProto.SentencePiece.CONTROL}
    model = sp.ModelProto()
    model.trainer_spec.model_type = sp.TrainerSpec.UNIGRAM
    model.trainer_spec.vocab_size = spec.vocab_size
    tokens = token_strings(spec)
    model.trainer_spec.unk_id = 0
    model.trainer_spec.bos_id = spec.bos_token_id if spec.bos_token_id is not None else -1
    model.trainer_spec.eos_id = spec.eos_token_ids[0] if spec.eos_token_ids else -1
    model.trainer_spec.pad_id = -1
    for token in tokens:
        piece = model.pieces.add()
        piece.piece = token if token in kinds or token.startswith("<") else "\u2581" + token
        piece.score = 0.0
        piece.type = kinds.get(token, sp.ModelProto.SentencePiece.CONTROL if token.startswith("<")
                               else sp.ModelProto.SentencePiece.NORMAL)
    (folder / "tokenizer.model").write_bytes(model.SerializeToString())
