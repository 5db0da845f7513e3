"""GGUFCheckpoint against transformers' GGUF loading, which dequantizes with the same gguf.quants functions:
tensors must match exactly, not just within quantization noise."""

from __future__ import annotations

import numpy as np
import pytest
from llama_ort_testing.hf_reference import assert_same_tensors, assert_spec_matches_config

from llama_ort.checkpoint import gguf_reader, open_checkpoint
from llama_ort.checkpoint.gguf_reader import GGUFCheckpoint
from llama_ort.checkpoint.random import random_tensors, tiny_spec, write_gguf
from llama_ort.checkpoint.spec import RopeScaling

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def transformers_gguf(path):
    return transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)


def test_smollm2_matches_transformers(embedded_gguf, smollm2_reference):
    with open_checkpoint(embedded_gguf) as checkpoint:
        assert isinstance(checkpoint, GGUFCheckpoint) and checkpoint.format == "gguf"
        assert_spec_matches_config(checkpoint.spec, smollm2_reference.config)
        assert checkpoint.spec.tie_word_embeddings  # SmolLM2 has no output.weight
        assert_same_tensors(checkpoint, smollm2_reference.state_dict())
        # the tokenizer engineer reads the vocabulary through the open file's metadata
        assert len(checkpoint.metadata("tokenizer.ggml.tokens")) == checkpoint.spec.vocab_size


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_1"])
def test_tiny_matches_transformers(tiny_spec, tmp_path, dtype):
    path = tmp_path / f"tiny-{dtype}.gguf"
    write_gguf(tiny_spec, path, random_tensors(tiny_spec, 0), dtype)
    reference = transformers_gguf(path)
    with GGUFCheckpoint(path) as checkpoint:
        assert_spec_matches_config(checkpoint.spec, reference.config)
        assert_same_tensors(checkpoint, reference.state_dict())


def test_float32_round_trip_is_exact(tiny_gguf, tiny_tensors):
    """Our writer interleaves Q/K rows and the reader undoes it; transformers agreeing (above) fixes the direction."""
    with GGUFCheckpoint(tiny_gguf) as checkpoint:
        assert sorted(checkpoint.tensor_names()) == sorted(tiny_tensors)
        for name, w in checkpoint.tensors():
            np.testing.assert_array_equal(w, tiny_tensors[name], err_msg=name)


def test_dequantizing_in_bands_changes_nothing(tmp_path, monkeypatch):
    """Bands of a few rows (whole heads for Q/K) give what one dequantization of the whole tensor gives."""
    spec = tiny_spec(num_heads=8, num_kv_heads=4, hidden_size=128)
    path = tmp_path / "tiny.gguf"
    write_gguf(spec, path, random_tensors(spec, 0), "Q8_0")
    whole = dict(GGUFCheckpoint(path).tensors())
    monkeypatch.setattr(gguf_reader, "BAND_ELEMENTS", 300)  # 2 rows per band; Q/K: one head (16 rows)
    for name, w in GGUFCheckpoint(path).tensors():
        np.testing.assert_array_equal(w, whole[name], err_msg=name)


@pytest.mark.parametrize("scaling", [RopeScaling("llama3", 32.0), RopeScaling("linear", 4.0)])
def test_rope_scaling(tmp_path, scaling):
    """Llama 3.1 scaling lives in a rope_freqs tensor (divisors per frequency); linear in metadata."""
    spec = tiny_spec(rope_scaling=scaling, rope_theta=500000.0)
    path = tmp_path / "tiny.gguf"
    write_gguf(spec, path, random_tensors(spec, 0), "F16")
    assert GGUFCheckpoint(path).spec.rope_scaling == scaling


def test_rope_scaling_matches_transformers():
    """RopeScaling.scale_inv_freq, which the GGUF reader checks rope_freqs with, is transformers' llama3 rule."""
    config = transformers.LlamaConfig(hidden_size=256, num_attention_heads=2, rope_parameters={
        "rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    init = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS["llama3"]
    theirs, _ = init(config, "cpu")
    inv_freq = 500000.0 ** (-np.arange(0, 128, 2, dtype=np.float64) / 128)
    ours = RopeScaling("llama3", 32.0).scale_inv_freq(inv_freq)
    np.testing.assert_allclose(ours, theirs.double().numpy(), rtol=1e-6)
