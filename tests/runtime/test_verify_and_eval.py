"""`llama-ort verify` and `llama-ort eval` on a tiny model: parity with the reference, and perplexity equal to
transformers' on the same weights (every position's logits through the runtime, in chunks and windows)."""

import re

import numpy as np
import pytest
import torch

from llama_ort.checkpoint import names
from llama_ort.checkpoint import random as random_checkpoint
from llama_ort.cli import main
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime.binding import DecoderBinding
from llama_ort.runtime.session import load_model
from llama_ort.tokenizer import Tokenizer
from llama_ort.verify.perplexity import perplexity
from llama_ort_testing.reference import random_checkpoint as seeded_checkpoint
from llama_ort_testing.tiny_models import SPEC

TEXT = "The lightest element is hydrogen; helium comes next. Stars fuse hydrogen into helium.\n"
# Seeded token ids, longer than the windows the strided tests use.
IDS = [int(t) for t in np.random.default_rng(7).integers(2, SPEC.vocab_size, 61)]


def hf_nll(built, ids: list[int]) -> torch.Tensor:
    """transformers' -log p(ids[t] | ids[:t]) for t = 1 .. len(ids) - 1, in float64."""
    with torch.no_grad():
        logits = built.hf(torch.tensor([ids])).logits[0, :-1].double()
    return -torch.log_softmax(logits, -1)[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]


def hf_perplexity(built, ids: list[int]) -> float:
    return float(torch.exp(hf_nll(built, ids).mean()))


def hf_strided_perplexity(built, ids: list[int], window: int, stride: int) -> float:
    """Hugging Face's strided perplexity (docs: "Perplexity of fixed-length models"): windows `stride` apart,
    each scoring the tokens after the previous window's end."""
    losses, previous_end = [], 0
    for begin in range(0, len(ids), stride):
        end = min(begin + window, len(ids))
        scored = end - max(previous_end, begin + 1)  # the first token of the text is never scored
        losses.append(hf_nll(built, ids[begin:end])[-scored:])
        previous_end = end
        if end == len(ids):
            break
    return float(torch.exp(torch.cat(losses).mean()))


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
    out = capsys.readouterr().out
    ours = float(re.search(r"perplexity (\S+) over (\d+) tokens", out).group(1))
    assert "sliding window" not in out  # the text fits the context: scored exactly
    ids = Tokenizer.from_folder(tiny.folder).encode(TEXT)
    assert ours == pytest.approx(hf_perplexity(tiny, ids), rel=1e-3)


def test_eval_scores_a_text_longer_than_the_window_with_a_stated_sliding_window(tiny, tmp_path, capsys):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    assert main(["eval", str(text_file), "--model", str(tiny.folder), "--window", "32", "--stride", "12"]) == 0
    out = capsys.readouterr().out
    ids = Tokenizer.from_folder(tiny.folder).encode(TEXT)
    assert f"over {len(ids)} tokens" in out
    assert "a sliding window of 32 tokens, stride 12: each token given at least 20 before it" in out
    ours = float(re.search(r"perplexity (\S+) over", out).group(1))
    assert ours == pytest.approx(hf_strided_perplexity(tiny, ids, 32, 12), rel=1e-3)


@pytest.mark.parametrize("chunk", [1, 4, 60, 256])
def test_chunks_extending_the_cache_score_every_token_as_transformers_does(tiny, chunk):
    """A text within one window, fed `chunk` positions a step: exactly transformers' perplexity whatever the
    chunk, and never more than a chunk's logits at a time."""
    counts = []
    result = perplexity(load_model(tiny.folder, every_position=True), IDS, chunk=chunk, on_scored=counts.append)
    assert result.value == pytest.approx(hf_perplexity(tiny, IDS), rel=1e-4)
    assert not result.is_strided and sum(counts) == len(IDS) - 1 and max(counts) <= chunk


@pytest.mark.parametrize("window, stride, chunk", [(16, 8, 5), (16, 15, 16), (20, 3, 7), (60, 30, 256)])
def test_sliding_windows_equal_transformers_strided_perplexity(tiny, window, stride, chunk):
    counts = []
    result = perplexity(load_model(tiny.folder, every_position=True), IDS, window, stride, chunk,
                        on_scored=counts.append)
    assert result.is_strided and (result.window, result.stride) == (window, stride)
    assert result.value == pytest.approx(hf_strided_perplexity(tiny, IDS, window, stride), rel=1e-4)
    assert sum(counts) == len(IDS) - 1  # every token but the first, once


def test_static_mode_windows_fit_max_seq_len(tiny):
    """A session whose cache length is fixed: the windows default to it."""
    result = perplexity(load_model(tiny.folder, max_seq_len=24, every_position=True), IDS, chunk=5)
    assert (result.window, result.stride) == (24, 12)
    assert result.value == pytest.approx(hf_strided_perplexity(tiny, IDS, 24, 12), rel=1e-4)


@pytest.mark.parametrize("options", [BuildOptions(layout="merged"), BuildOptions(target="webgpu"),
                                     BuildOptions(all_logits=True)], ids=["merged", "webgpu-int32", "all-logits"])
def test_every_layout_scores_as_transformers_does(tiny, tmp_path, options):
    """The merged layout's If (a one-token chunk takes decoder_with_past), webgpu's int32 ids and the seed's
    rotary inputs, and a model built with --all-logits, used as it is."""
    build_model(tiny.checkpoint, tmp_path, options)
    result = perplexity(load_model(tmp_path, every_position=True), IDS, chunk=4 if options.all_logits else 1)
    assert result.value == pytest.approx(hf_perplexity(tiny, IDS), rel=1e-4)


def test_window_and_stride_out_of_range_are_one_line_errors(tiny, tmp_path, capsys):
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    for flags, message in ((["--window", "257"], "--window: 257 tokens: give 2 to 256"),
                           (["--window", "16", "--stride", "16"], "--stride: 16 tokens: give 1 to 15")):
        assert main(["eval", str(text_file), "--model", str(tiny.folder), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err


@pytest.mark.parametrize("content, message", [(None, "no such text file"), (b"\xff\xfe", "is not UTF-8 text")])
def test_eval_refuses_bad_text_with_one_line(tiny, tmp_path, capsys, content, message):
    path = tmp_path / "text.txt"
    if content is not None:
        path.write_bytes(content)
    assert main(["eval", str(path), "--model", str(tiny.folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(path) in err


def test_tokens_written_over_the_argmax_with_int32_ids_reach_their_step(tiny, tmp_path):
    """The webgpu model's int32 input_ids go through a host buffer written and bound again each step
    (docs/runtime.md): every token fed with write_tokens must reach its step, so teacher forcing one token a step
    gives transformers' logits. (On the CPU nothing is copied at binding; the GPU test of webgpu checks that
    part.)"""
    build_model(tiny.checkpoint, tmp_path, BuildOptions(target="webgpu", precision="fp32"))
    ids = [1, 40, 7, 99, 12, 63, 5, 88, 21, 34, 2, 77]
    binding = DecoderBinding(load_model(tmp_path, max_seq_len=32), 1, 32)
    binding.feed([ids[:1]], [1])
    logits = [binding.read_logits()[0].copy()]
    for token in ids[1:-1]:
        binding.write_tokens(np.array([token]))
        binding.decode()
        logits.append(binding.read_logits()[0].copy())
    with torch.no_grad():
        expected = tiny.hf(torch.tensor([ids])).logits[0, :-1]
    np.testing.assert_allclose(np.stack(logits), expected.numpy(), atol=1e-4)


def test_progress_is_plain_lines_on_stderr_when_it_is_not_a_terminal(tiny, tmp_path, capsys, monkeypatch):
    from llama_ort.cli import eval as eval_command

    monkeypatch.setattr(eval_command, "PLAIN_PROGRESS_EVERY_S", 0.0)  # a line after every step but the last
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    assert main(["eval", str(text_file), "--model", str(tiny.folder), "--window", "32", "--stride", "16"]) == 0
    captured = capsys.readouterr()
    total = len(Tokenizer.from_folder(tiny.folder).encode(TEXT)) - 1
    lines = captured.err.splitlines()
    assert lines and all(re.fullmatch(rf"eval: \d+/{total} tokens scored, \d+ tokens/s", line) for line in lines)
    assert captured.out.startswith("perplexity ")


def test_a_model_whose_head_is_not_llama_orts_is_refused_in_one_line(tiny, tmp_path, capsys):
    """A decoder built with --all-logits has no last-position head; its manifest saying otherwise stands for a
    model from another version or tool."""
    build_model(tiny.checkpoint, tmp_path, BuildOptions(all_logits=True))
    manifest = (tmp_path / "llama-ort.json").read_text().replace('"all_logits": true', '"all_logits": false')
    (tmp_path / "llama-ort.json").write_text(manifest)
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    assert main(["eval", str(text_file), "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "head to turn to every position" in err
