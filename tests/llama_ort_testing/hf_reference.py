"""transformers as the oracle: compare what our readers produce with what transformers loads."""

from __future__ import annotations

import numpy as np

from llama_ort.checkpoint import Checkpoint, ModelSpec


def assert_same_tensors(checkpoint: Checkpoint, state_dict: dict) -> None:
    """Every tensor the spec calls for equals the reference's exactly (as float32), name by name."""
    assert set(checkpoint.tensor_names()) <= set(state_dict)
    for name, ours in checkpoint.tensors():
        theirs = state_dict[name].float().numpy()
        assert ours.dtype in (np.float32, np.float16), name
        ours = ours.astype(np.float32)
        if not np.array_equal(ours, theirs):  # the fast check first; the assert explains a failure
            np.testing.assert_array_equal(ours, theirs, err_msg=name)


def assert_spec_matches_config(spec: ModelSpec, config) -> None:
    """The spec says what transformers' config says, field by field."""
    rope = config.rope_parameters
    eos = config.eos_token_id
    assert (spec.num_layers, spec.hidden_size, spec.num_heads, spec.num_kv_heads) == (
        config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.num_key_value_heads)
    assert (spec.intermediate_size, spec.vocab_size, spec.head_dim) == (
        config.intermediate_size, config.vocab_size, getattr(config, "head_dim", None) or
        config.hidden_size // config.num_attention_heads)
    assert spec.rope_theta == rope["rope_theta"]
    if spec.rope_scaling is None:
        assert rope.get("rope_type", "default") == "default"
    else:
        scaling = spec.rope_scaling
        assert (scaling.kind, scaling.factor) == (rope["rope_type"], rope["factor"])
        if scaling.kind == "llama3":
            assert (scaling.low_freq_factor, scaling.high_freq_factor, scaling.original_max_position_embeddings) == (
                rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"])
    assert spec.rms_norm_eps == config.rms_norm_eps
    assert spec.tie_word_embeddings == config.tie_word_embeddings
    assert spec.bos_token_id == config.bos_token_id
    assert list(spec.eos_token_ids) == (eos if isinstance(eos, list) else [eos])
    assert spec.context_length == config.max_position_embeddings
