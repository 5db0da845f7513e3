"""`llama-ort verify` and `llama-ort eval` on a tiny model: parity with the reference, and perplexity equal to
transformers' on the same weights (teacher-forced through the runtime)."""

import re

import pytest
import torch

from llama_ort.checkpoint import names
from llama_ort.checkpoint import random as random_checkpoint
from llama_ort.cli import main
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime.session import load_model
from llama_ort.tokenizer import Tokenizer
from llama_ort.verify.perplexity import teacher_forced_perplexity
from llama_ort_testing.reference import random_checkpoint as seeded_checkpoint
from llama_ort_testing.tiny_models import SPEC

TEXT = "The lightest element is hydrogen; helium comes next. Stars fuse hydrogen into helium.\n"


@pytest.fixture(scope="module")
def checkpoint_folder(tiny, tmp_path_factory):
    """The tiny model's weights written as a Hugging Face folder, as a user's checkpoint would be."""
    folder = tmp_path_factory.mktemp("verify") / "hf"
    tensors = ((name, tiny.checkpoint.read(name)) for name in names.canonical_names(SPEC.num_layers,
                                                                                    SPEC.tie_word_embeddings))
    random_checkpoint.write_hf(SPEC, folder, tensors)
    return folder


def test_verify_reports_parity_with_the_checkpoint(tiny, checkpoint_folder, capsys):
    assert main(["verify", str(checkpoint_folder), "--model", str(tiny.folder)]) == 0
    out = capsys.readouterr().out
    assert "top-1 agreement 4/4" in out
    assert float(re.search(r"max \|dlogit\| (\S+),", out).group(1)) < 1e-3
    assert out.splitlines()[-1] == "PASS"


def test_verify_refuses_a_model_built_from_another_checkpoint(tmp_path, checkpoint_folder, capsys):
    other = seeded_checkpoint(SPEC.__class__(**{**SPEC.to_dict(), "hidden_size": 128}), seed=3)
    build_model(other, tmp_path, BuildOptions())
    assert main(["verify", str(checkpoint_folder), "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was not built from" in err


def test_eval_perplexity_equals_transformers_on_the_same_weights(tiny, tmp_path, capsys):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    assert main(["eval", str(text_file), "--model", str(tiny.folder)]) == 0
    ours = float(re.search(r"perplexity (\S+) over (\d+) tokens", capsys.readouterr().out).group(1))

    ids = Tokenizer.from_folder(tiny.folder).encode(TEXT)
    with torch.no_grad():
        logits = tiny.hf(torch.tensor([ids])).logits[0, :-1].double()
    nll = -torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    expected = float(torch.exp(nll.mean()))
    assert ours == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("content, message", [(None, "no such text file"), (b"\xff\xfe", "is not UTF-8 text")])
def test_eval_refuses_bad_text_with_one_line(tiny, tmp_path, capsys, content, message):
    path = tmp_path / "text.txt"
    if content is not None:
        path.write_bytes(content)
    assert main(["eval", str(path), "--model", str(tiny.folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err


def test_teacher_forced_perplexity_with_int32_ids_equals_transformers(tiny, tmp_path):
    """The webgpu model's int32 input_ids go through a host buffer written and bound again each step
    (docs/runtime.md): every fed token must reach its step. (On the CPU nothing is copied at binding; the GPU
    test of webgpu checks that part.)"""
    build_model(tiny.checkpoint, tmp_path, BuildOptions(target="webgpu", precision="fp32"))
    ids = [1, 40, 7, 99, 12, 63, 5, 88, 21, 34, 2, 77]
    ours = teacher_forced_perplexity(load_model(tmp_path, max_seq_len=32), ids)
    with torch.no_grad():
        logits = tiny.hf(torch.tensor([ids])).logits[0, :-1].double()
    nll = -torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    assert ours == pytest.approx(float(torch.exp(nll.mean())), rel=1e-4)
