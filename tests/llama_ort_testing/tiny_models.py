"""Tiny random Llamas built into model folders (with a one-character-per-token tokenizer), and transformers on
the same weights as the oracle. conftest.py builds them once per test session."""

from __future__ import annotations

import json
import string

from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort_testing.reference import hf_model, random_checkpoint, tiny_spec

# GQA with two query heads per KV head. EOS 95 is one that greedy decoding of PROMPTS reaches in some rows.
SPEC = tiny_spec(hidden_size=64, num_heads=4, num_kv_heads=2, eos_token_ids=(95,))
# Prompts of different lengths (seeded picks from the vocabulary, written out).
PROMPTS = [
    [1, 17, 42, 8, 9],
    [1, 99, 12, 7, 64, 31, 20, 88, 45],
    [1, 11, 4, 70],
    [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    [1, 120, 33],
]


class Built:
    """A checkpoint, its model folder and the transformers model on the same weights."""

    def __init__(self, folder, checkpoint):
        self.folder = folder
        self.checkpoint = checkpoint
        self.spec = checkpoint.spec
        self._hf = None
        self.greedy: dict = {}

    @property
    def hf(self):
        if self._hf is None:
            self._hf = hf_model(self.checkpoint)
        return self._hf


def build(tmp_path_factory, spec, layout: str, seed: int = 1) -> Built:
    folder = tmp_path_factory.mktemp(f"model-{layout}")
    checkpoint = random_checkpoint(spec, seed=seed)
    build_model(checkpoint, folder, BuildOptions(target="cpu", precision="fp32", layout=layout))
    write_char_tokenizer(folder, spec.vocab_size, spec.eos_token_ids[0])
    return Built(folder, checkpoint)


# Some characters of several UTF-8 bytes, so streamed text must not split them.
WIDE_CHARACTERS = "éüß€中文—…αβγδ✓→ñçøåæ™©®°±×÷√∞≈"
CHAT_TEMPLATE = ("{% for m in messages %}{{ m.role[0] }}: {{ m.content }}\n{% endfor %}"
                 "{% if add_generation_prompt %}a: {% endif %}")


def write_char_tokenizer(folder, vocab_size: int, eos_id: int) -> None:
    """tokenizer.json with one token per character (0 <unk>, 1 <s>, eos_id </s>) and a one-line chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    characters = iter(string.ascii_letters + string.digits + string.punctuation + " \n" + WIDE_CHARACTERS)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": eos_id}
    for i in range(vocab_size):
        if i not in vocab.values():
            vocab[next(characters)] = i
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(["<unk>", "<s>", "</s>"])
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
              "chat_template": CHAT_TEMPLATE}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def hf_greedy(built: Built, prompt: list[int], max_new_tokens: int, stop_at_eos: bool = True) -> list[int]:
    """transformers' generate(do_sample=False): the new tokens, EOS included (memoized: it is the slow part)."""
    import torch

    key = (tuple(prompt), max_new_tokens, stop_at_eos)
    if key not in built.greedy:
        eos = list(built.spec.eos_token_ids) if stop_at_eos else None
        with torch.no_grad():
            out = built.hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                    max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=0)
        built.greedy[key] = out[0, len(prompt):].tolist()
    return built.greedy[key]
