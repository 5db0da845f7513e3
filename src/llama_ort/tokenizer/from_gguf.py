"""A GGUF file's tokenizer, rebuilt as tokenizer.json + tokenizer_config.json + generation_config.json.

A GGUF has no tokenizer files: llama.cpp stores the vocabulary as metadata (`tokenizer.ggml.*`). Two kinds occur
in Llama-family files:
- "gpt2": byte-level BPE (Llama 3, SmolLM2): tokens spelled in GPT-2's byte alphabet, the merges, and the name
  of the pre-tokenizer (pretokenizers.py).
- "llama": sentencepiece BPE (Llama 2, Mistral, TinyLlama): tokens with scores and no merges. sentencepiece
  merges the adjacent pair whose joined piece scores highest, so BPE merges ranked by that score do the same.
Tokens typed control (`<|im_end|>`, `<s>`) become special tokens, matched whole in text and skippable when
decoding; user-defined ones are matched whole but are plain text.
"""

from __future__ import annotations

import json
from pathlib import Path

import tokenizers
from tokenizers import AddedToken, decoders, models, normalizers

from ..checkpoint.gguf_file import GGUFFile
from ..errors import fail
from .config import CONFIG_FILE, GENERATION_CONFIG_FILE
from .pretokenizers import BY_GGUF_NAME
from .vocab import TOKENIZER_JSON, bos_eos_processor

SPACE = "\u2581"  # sentencepiece's visible space

# llama.cpp's token types (gguf.TokenType)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED = 1, 2, 3, 4

# Where a special token's id is stored, by the role tokenizer_config.json gives it.
SPECIAL_ID_KEYS = {
    "bos_token": "tokenizer.ggml.bos_token_id",
    "eos_token": "tokenizer.ggml.eos_token_id",
    "unk_token": "tokenizer.ggml.unknown_token_id",
    "pad_token": "tokenizer.ggml.padding_token_id",
}
# Tokens that end generation besides EOS: end of turn, end of message (tool calls).
END_ID_KEYS = ("tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")


def read_metadata(path: Path) -> dict:
    """The `tokenizer.*` and `general.sampling.*` metadata of the GGUF at `path`, as Python values."""
    try:
        fields = GGUFFile(path).fields
    except (ValueError, OSError) as e:
        raise fail(path, f"is not a readable GGUF file ({e})") from e
    return {key: value for key, value in fields.items() if key.startswith(("tokenizer.", "general.sampling."))}


def export_gguf_tokenizer(path: Path, dest: Path) -> list[Path]:
    """Write the tokenizer of the GGUF at `path` into the folder `dest`; returns the files written."""
    meta = read_metadata(path)
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.tokens"):
        if key not in meta:
            raise fail(path, f"has no {key} metadata, so no tokenizer can be built; convert the model again "
                       "with a recent llama.cpp, or give its Hugging Face folder")
    config = tokenizer_config(meta)
    tokenizer = build_tokenizer(meta, path)
    tokenizer.post_processor = bos_eos_processor(
        special(config, "bos_token", meta, path) if config["add_bos_token"] else None,
        special(config, "eos_token", meta, path) if config["add_eos_token"] else None)
    tokenizer.save(str(dest / TOKENIZER_JSON))
    (dest / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (dest / GENERATION_CONFIG_FILE).write_text(json.dumps(generation_config(meta), indent=2) + "\n")
    return [dest / TOKENIZER_JSON, dest / CONFIG_FILE, dest / GENERATION_CONFIG_FILE]


def build_tokenizer(meta: dict, where: Path) -> tokenizers.Tokenizer:
    kind = meta["tokenizer.ggml.model"]
    if kind == "gpt2":
        tokenizer = byte_level_bpe(meta, where)
    elif kind == "llama":
        tokenizer = sentencepiece_bpe(meta)
    else:
        raise fail(where, f"tokenizer.ggml.model is {kind!r}; llama-ort builds 'gpt2' (byte-level BPE) and "
                   "'llama' (sentencepiece) tokenizers")
    tokenizer.add_tokens(added_tokens(meta))
    return tokenizer


def byte_level_bpe(meta: dict, where: Path) -> tokenizers.Tokenizer:
    """GPT-2 style: the text cut into words by the named pre-tokenizer, bytes spelled as characters, the merges."""
    pre_name = meta.get("tokenizer.ggml.pre", "default")
    if pre_name not in BY_GGUF_NAME:
        raise fail(where, f"tokenizer.ggml.pre is {pre_name!r}, a pre-tokenizer llama-ort does not know; "
                   f"known: {', '.join(sorted(BY_GGUF_NAME))}. Use the model's Hugging Face folder instead")
    if "tokenizer.ggml.merges" not in meta:
        raise fail(where, "has a byte-level BPE vocabulary but no tokenizer.ggml.merges; convert it again")
    pre = BY_GGUF_NAME[pre_name]
    merges = [tuple(merge.split(" ", 1)) for merge in meta["tokenizer.ggml.merges"]]
    tokenizer = tokenizers.Tokenizer(models.BPE(vocab=vocab_ids(meta), merges=merges, ignore_merges=pre.ignore_merges))
    tokenizer.pre_tokenizer = pre.build()
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def sentencepiece_bpe(meta: dict) -> tokenizers.Tokenizer:
    """Llama 2 style: spaces as "▁", merges recovered from the scores, unknown characters as <0xNN> byte tokens."""
    tokens = meta["tokenizer.ggml.tokens"]
    types = meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    # sentencepiece sorts its pieces best first, so without scores the order stands in for them.
    scores = meta.get("tokenizer.ggml.scores") or [-float(i) for i in range(len(tokens))]
    unk_id = meta.get("tokenizer.ggml.unknown_token_id", 0)
    model = models.BPE(vocab=vocab_ids(meta), merges=merges_by_score(tokens, scores, types),
                       unk_token=tokens[unk_id] if 0 <= unk_id < len(tokens) else None,
                       fuse_unk=True, byte_fallback=True)
    tokenizer = tokenizers.Tokenizer(model)
    # sentencepiece writes spaces as "▁" and, with add_space_prefix, starts every text with one; a piece of text
    # between special tokens counts as a text, as in Meta's reference code.
    has_space_prefix = meta.get("tokenizer.ggml.add_space_prefix", True)
    steps = [normalizers.Prepend(SPACE)] if has_space_prefix else []
    tokenizer.normalizer = normalizers.Sequence(steps + [normalizers.Replace(" ", SPACE)])
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if has_space_prefix:
        steps.append(decoders.Strip(" ", 1, 0))  # the prefix space is not part of the text
    tokenizer.decoder = decoders.Sequence(steps)
    return tokenizer


def merges_by_score(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """Every (left, right) pair of normal tokens that joins into a normal token, best joined score first."""
    normal = {token: i for i, (token, kind) in enumerate(zip(tokens, types)) if kind == NORMAL}
    ranked = []
    for token, i in normal.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in normal and right in normal:
                ranked.append((-scores[i], i, normal[left], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def vocab_ids(meta: dict) -> dict[str, int]:
    # A token listed twice keeps its first id, as llama.cpp's text-to-token lookup would find it.
    ids: dict[str, int] = {}
    for i, token in enumerate(meta["tokenizer.ggml.tokens"]):
        ids.setdefault(token, i)
    return ids


def added_tokens(meta: dict) -> list[AddedToken]:
    """Tokens matched whole in text before BPE: control and unknown ones as special tokens, user-defined as text."""
    tokens = meta["tokenizer.ggml.tokens"]
    types = meta.get("tokenizer.ggml.token_type") or []
    return [AddedToken(token, special=kind != USER_DEFINED, normalized=False)
            for token, kind in zip(tokens, types) if kind in (UNKNOWN, CONTROL, USER_DEFINED)]


def tokenizer_config(meta: dict) -> dict:
    """Special tokens by their text, BOS/EOS flags and the chat template, as tokenizer_config.json writes them."""
    tokens = meta["tokenizer.ggml.tokens"]
    config = {}
    for role, key in SPECIAL_ID_KEYS.items():
        # Some converters write ids past the vocabulary for roles a model lacks; llama.cpp ignores those too.
        if 0 <= meta.get(key, -1) < len(tokens):
            config[role] = tokens[meta[key]]
    # llama.cpp adds BOS to sentencepiece vocabularies that don't say otherwise, and to no others.
    is_sentencepiece = meta["tokenizer.ggml.model"] == "llama"
    config["add_bos_token"] = bool(meta.get("tokenizer.ggml.add_bos_token", is_sentencepiece))
    config["add_eos_token"] = bool(meta.get("tokenizer.ggml.add_eos_token", False))
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    return config


def special(config: dict, role: str, meta: dict, where: Path) -> tuple[str, int]:
    """(text, id) of the special token in `role`, which the file asks to add to every text."""
    if role not in config:
        raise fail(where, f"asks to add its {role} to every text but has no valid {SPECIAL_ID_KEYS[role]}")
    return config[role], meta[SPECIAL_ID_KEYS[role]]


def generation_config(meta: dict) -> dict:
    """generation_config.json's keys: the ids that end generation, BOS, and the sampling the file recommends."""
    end_ids = [meta[key] for key in ("tokenizer.ggml.eos_token_id", *END_ID_KEYS) if key in meta]
    config = {"eos_token_id": list(dict.fromkeys(end_ids))}
    if "tokenizer.ggml.bos_token_id" in meta:
        config["bos_token_id"] = meta["tokenizer.ggml.bos_token_id"]
    return config | sampling_config(meta)


# The sampling a GGUF recommends (general.sampling.*, llama.cpp's defaults for the file) under transformers' names.
# llama.cpp's other knobs (min_p, penalty_last_n, mirostat ...) have no such name and are left out.
SAMPLING_KEYS = {"general.sampling.temp": "temperature", "general.sampling.top_k": "top_k",
                 "general.sampling.top_p": "top_p", "general.sampling.penalty_repeat": "repetition_penalty"}


def sampling_config(meta: dict) -> dict:
    config = {name: meta[key] for key, name in SAMPLING_KEYS.items() if key in meta}
    config = {name: value if isinstance(value, int) else float(f"{value:.6g}")  # float32's 0.7 as 0.7
              for name, value in config.items()}
    if config.keys() & {"temperature", "top_k", "top_p"}:  # llama.cpp samples unless the temperature is 0
        config["do_sample"] = config.get("temperature", 1.0) > 0
    return config
