"""HFCheckpoint against transformers' own loading of the same folders."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from llama_ort_testing.hf_reference import assert_same_tensors, assert_spec_matches_config

from llama_ort.checkpoint import open_checkpoint
from llama_ort.checkpoint.hf import HFCheckpoint
from llama_ort.checkpoint.random import random_tensors, tiny_spec, write_hf
from llama_ort.checkpoint.spec import RopeScaling

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def transformers_state_dict(folder) -> dict:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.state_dict()


@pytest.fixture(scope="module")
def smollm2_hf(smollm2_reference, tmp_path_factory):
    """The embedded SmolLM2 saved by transformers as a float32 Hugging Face folder.

    transformers won't save a model it loaded from GGUF (it counts as quantized), so the weights go into a
    plain model of the same config first.
    """
    config = copy.deepcopy(smollm2_reference.config)
    del config.quantization_config
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    model.load_state_dict(smollm2_reference.state_dict(), assign=True)
    folder = tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct"
    model.save_pretrained(folder)
    return folder


def test_smollm2_matches_transformers(smollm2_hf, smollm2_reference):
    with open_checkpoint(smollm2_hf) as checkpoint:
        assert isinstance(checkpoint, HFCheckpoint) and checkpoint.format == "hf"
        assert_spec_matches_config(checkpoint.spec, transformers.AutoConfig.from_pretrained(smollm2_hf))
        assert checkpoint.spec.name == "SmolLM2-135M-Instruct"
        assert_same_tensors(checkpoint, smollm2_reference.state_dict())


@pytest.mark.parametrize("dtype, shard_bytes", [
    ("float32", None),
    ("bfloat16", None),
    ("float16", 40_000),  # several shards and an index
    ("bfloat16", 40_000),
])
def test_tiny_matches_transformers(tiny_spec, tmp_path, dtype, shard_bytes):
    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, random_tensors(tiny_spec, 0), dtype, shard_bytes)
    assert (folder / "model.safetensors.index.json").exists() == (shard_bytes is not None)
    with HFCheckpoint(folder) as checkpoint:
        assert_spec_matches_config(checkpoint.spec, transformers.AutoConfig.from_pretrained(folder))
        assert_same_tensors(checkpoint, transformers_state_dict(folder))
        # float32 and float16 come back as views of the file, bfloat16 widened to float32
        assert checkpoint.read("model.norm.weight").dtype == np.dtype(np.float16 if dtype == "float16" else np.float32)


def test_float32_round_trip_is_exact(tiny_hf, tiny_tensors):
    with HFCheckpoint(tiny_hf) as checkpoint:
        assert sorted(checkpoint.tensor_names()) == sorted(tiny_tensors)
        for name, w in checkpoint.tensors():
            np.testing.assert_array_equal(w, tiny_tensors[name])


@pytest.mark.parametrize("overrides", [
    dict(rope_scaling=RopeScaling("llama3", 8.0), rope_theta=500000.0, eos_token_ids=(3, 4), bos_token_id=5),
    dict(rope_scaling=RopeScaling("linear", 2.0), tie_word_embeddings=True),
    dict(head_dim=32, architecture="mistral", context_length=512),
])
def test_config_variants_match_transformers(tmp_path, overrides):
    spec = tiny_spec(**overrides)
    folder = tmp_path / "hf"
    write_hf(spec, folder, random_tensors(spec, 1))
    with HFCheckpoint(folder) as checkpoint:
        assert checkpoint.spec == tiny_spec(**overrides, name="hf")
        assert_spec_matches_config(checkpoint.spec, transformers.AutoConfig.from_pretrained(folder))
        assert_same_tensors(checkpoint, transformers_state_dict(folder))


def test_transformers5_rope_parameters_and_sliding_window(tiny_hf, tmp_path):
    """transformers 5 writes rope_parameters instead of rope_theta/rope_scaling; Mistral may set a window."""
    config = json.loads((tiny_hf / "config.json").read_text())
    del config["rope_theta"], config["rope_scaling"]
    config["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 8192}
    config.update(architectures=["MistralForCausalLM"], model_type="mistral", sliding_window=64)
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").symlink_to(tiny_hf / "model.safetensors")
    spec = HFCheckpoint(folder).spec
    assert (spec.rope_theta, spec.rope_scaling) == (500000.0, RopeScaling("llama3", 32.0))
    assert (spec.architecture, spec.context_length) == ("mistral", 64)
