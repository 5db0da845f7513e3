"""How byte-level BPE vocabularies cut text into words before merging, by the name GGUF files give it.

A GGUF names its pre-tokenizer in `tokenizer.ggml.pre` (llama.cpp's names); the merges were learned on words cut
that way, so the same cut is needed to reproduce the tokens. Each entry is written the way the model's own
tokenizer.json writes it, as llama.cpp's llama-vocab.cpp maps the name to a regex.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenizers import Regex, pre_tokenizers

# Llama 3's: case-insensitive contractions, numbers in groups of up to three, newlines kept apart.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass(frozen=True)
class PreTokenizer:
    split: str | None  # a regex applied before the byte-level step; None: GPT-2's, which ByteLevel applies itself
    digits_apart: bool = False  # every digit its own word (StarCoder, SmolLM)
    ignore_merges: bool = False  # a word already in the vocabulary is one token, merges or not (Llama 3)

    def build(self) -> pre_tokenizers.PreTokenizer:
        steps = [pre_tokenizers.Digits(individual_digits=True)] if self.digits_apart else []
        if self.split is None:
            steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
        else:
            steps += [pre_tokenizers.Split(Regex(self.split), behavior="isolated"),
                      pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        return steps[0] if len(steps) == 1 else pre_tokenizers.Sequence(steps)


GPT2 = PreTokenizer(split=None)
STARCODER = PreTokenizer(split=None, digits_apart=True)
LLAMA3 = PreTokenizer(split=LLAMA3_SPLIT, ignore_merges=True)

BY_GGUF_NAME = {
    # Files written before llama.cpp named pre-tokenizers say nothing, or "default"; GPT-2's regex is what
    # transformers uses for them too.
    "default": GPT2,
    "gpt-2": GPT2,
    "phi-2": GPT2,
    "roberta-bpe": GPT2,
    "mpt": GPT2,
    "olmo": GPT2,
    "smollm": STARCODER,
    "starcoder": STARCODER,
    "refact": STARCODER,
    "codeshell": STARCODER,
    "llama3": LLAMA3,
    "llama-v3": LLAMA3,
    "llama-bpe": LLAMA3,
    "falcon3": LLAMA3,
}
