"""make-random: a loadable checkpoint of the asked shape, written atomically, with a tokenizer."""

import numpy as np
import pytest

from llama_ort.bench import random_checkpoint
from llama_ort.bench.random_checkpoint import make_random
from llama_ort.bench.shapes import SHAPES
from llama_ort.checkpoint import open_checkpoint
from llama_ort.checkpoint.random import tiny_spec
from llama_ort.cli import main


@pytest.mark.parametrize("format, dtype", [("hf", "fp16"), ("hf", "bf16"), ("meta", "fp32")])
def test_checkpoint_has_the_shape_and_a_tokenizer(tmp_path, format, dtype):
    spec = tiny_spec()
    folder = make_random(spec, tmp_path / "ckpt", dtype=dtype, format=format, show_progress=False)
    with open_checkpoint(folder) as checkpoint:
        assert checkpoint.format == format
        for field in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "intermediate_size", "vocab_size"):
            assert getattr(checkpoint.spec, field) == getattr(spec, field)
        assert all(np.isfinite(t).all() for _, t in checkpoint.tensors())
    assert (folder / ("tokenizer.json" if format == "hf" else "tokenizer.model")).exists()


def test_hf_tokenizer_decodes_every_id(tmp_path):
    from tokenizers import Tokenizer

    spec = tiny_spec()
    folder = make_random(spec, tmp_path / "ckpt", show_progress=False)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == spec.vocab_size
    assert tokenizer.id_to_token(spec.bos_token_id) == "<s>"


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def failing(spec, seed):
        yield "model.embed_tokens.weight", np.zeros((spec.vocab_size, spec.hidden_size), np.float32)
        raise KeyboardInterrupt

    monkeypatch.setattr(random_checkpoint, "random_tensors", failing)
    with pytest.raises(KeyboardInterrupt):
        make_random(tiny_spec(), tmp_path / "ckpt", show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_existing_folder(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "x").write_text("")
    assert main(["make-random", "--shape", "smollm2-135m", "--output", str(tmp_path / "ckpt")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_named_shapes_are_valid():
    assert {"llama2-7b", "llama2-13b", "llama2-70b-2layers", "smollm2-135m", "tinyllama-1.1b", "mistral-7b",
            "llama3-8b"} <= set(SHAPES)
