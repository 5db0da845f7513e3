"""fp32 parity of the built model with transformers' LlamaForCausalLM: a prompt, then 32 decode steps (the merged
layout's steps feed back the rotary embeddings each step outputs), and the step-to-step outputs themselves."""

import numpy as np
import pytest

from llama_ort.checkpoint.spec import RopeScaling
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.graph.rope import rotary_embeddings
from llama_ort_testing.reference import Stepper, hf_last_logits, hf_model, random_checkpoint, tiny_spec

SPECS = {
    "mha-hd64-theta1e4-untied": tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=4),
    "gqa-hd128-theta5e5-llama3-tied": tiny_spec(
        hidden_size=256, num_heads=2, num_kv_heads=1, head_dim=128, rope_theta=500000.0, tie_word_embeddings=True,
        rope_scaling=RopeScaling("llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                 original_max_position_embeddings=64)),
    "gqa-hd64-theta5e5-tied": tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=2, rope_theta=500000.0,
                                         tie_word_embeddings=True),
}
PROMPTS = [[5, 17, 42, 8, 9], [3, 99, 12, 7, 64, 31, 2, 88, 45], [11, 4, 70]]
DECODE_STEPS = 32


@pytest.mark.parametrize("layout", ["single", "merged"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("spec_name", SPECS)
def test_prompt_and_decode_match_transformers(tmp_path, spec_name, batch, layout):
    checkpoint = random_checkpoint(SPECS[spec_name], seed=1)
    reference = hf_model(checkpoint)
    build_model(checkpoint, tmp_path, BuildOptions(target="cpu", precision="fp32", layout=layout))
    stepper = Stepper(tmp_path, max_seq_len=64)
    prompts = PROMPTS[:batch]
    sequences = [list(p) for p in prompts]

    out = stepper.start(prompts)
    for step in range(DECODE_STEPS + 1):
        for row, seq in enumerate(sequences):
            expected = hf_last_logits(reference, seq)
            np.testing.assert_allclose(out["logits"][row], expected, atol=1e-3, rtol=0,
                                       err_msg=f"row {row}, step {step}")
            assert out["next_token"][row] == expected.argmax()
        tokens = [int(t) for t in out["next_token"]]
        for seq, token in zip(sequences, tokens):
            seq.append(token)
        if step < DECODE_STEPS:
            out = stepper.step(tokens)


def test_next_attention_mask_marks_the_next_position(tmp_path):
    checkpoint = random_checkpoint(SPECS["gqa-hd64-theta5e5-tied"])
    build_model(checkpoint, tmp_path, BuildOptions())
    stepper = Stepper(tmp_path, max_seq_len=16)
    out = stepper.start(PROMPTS[:3])
    lengths = [len(p) for p in PROMPTS[:3]]
    expected = np.zeros((3, 16), np.int64)
    for row, n in enumerate(lengths):
        expected[row, : n + 1] = 1
    np.testing.assert_array_equal(out["next_attention_mask"], expected)
    out = stepper.step([1, 2, 3])
    for row, n in enumerate(lengths):
        expected[row, : n + 2] = 1
    np.testing.assert_array_equal(out["next_attention_mask"], expected)


def test_rotary_outputs_are_the_next_positions_embeddings_and_the_model_rotates_with_its_inputs(tmp_path):
    checkpoint = random_checkpoint(SPECS["gqa-hd128-theta5e5-llama3-tied"])
    build_model(checkpoint, tmp_path, BuildOptions(layout="merged"))
    stepper = Stepper(tmp_path, max_seq_len=32)
    assert stepper.manifest.rotary_io
    out = stepper.start(PROMPTS)
    lengths = np.array([len(p) for p in PROMPTS])
    for step in range(3):  # after the prompt (decoder branch), then after decode steps (decoder_with_past)
        cos, sin = rotary_embeddings(stepper.spec, (lengths + step)[:, None], np.float32)
        np.testing.assert_array_equal(out["next_cos"], cos)
        np.testing.assert_array_equal(out["next_sin"], sin)
        np.testing.assert_array_equal(out["next_attention_mask"].sum(1), lengths + step + 1)
        before = dict(stepper.cache), stepper.mask
        out = stepper.step([1, 2, 3])
    # The same step fed the embeddings of the wrong positions gives other logits: the inputs are what rotates.
    stepper.cache, stepper.mask = before
    stepper.cache["cos"], stepper.cache["sin"] = rotary_embeddings(stepper.spec, (lengths + 7)[:, None], np.float32)
    wrong = stepper.step([1, 2, 3])
    assert np.abs(wrong["logits"] - out["logits"]).max() > 1e-2


def test_max_seq_len_override_gives_the_same_logits(tmp_path):
    checkpoint = random_checkpoint(SPECS["mha-hd64-theta1e4-untied"])
    build_model(checkpoint, tmp_path, BuildOptions(layout="merged"))
    results = []
    for max_seq_len in (16, 48, 200):
        stepper = Stepper(tmp_path, max_seq_len=max_seq_len)
        logits = [stepper.start(PROMPTS[:2])["logits"]]
        for _ in range(4):
            logits.append(stepper.step([int(t) for t in logits[-1].argmax(-1)])["logits"])
        results.append(np.stack(logits))
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("target", ["cuda", "dml", "webgpu"])
def test_other_targets_graphs_run_on_the_cpu_and_match(tmp_path, target):
    """cuda derives total_sequence_length from shapes (for CUDA graphs); dml rotates with RotaryEmbedding
    outside GroupQueryAttention and uses opset 20. Both run on the CPU provider in fp32: check them here."""
    checkpoint = random_checkpoint(SPECS["gqa-hd64-theta5e5-tied"], seed=2)
    reference = hf_model(checkpoint)
    build_model(checkpoint, tmp_path, BuildOptions(target=target, precision="fp32"))
    stepper = Stepper(tmp_path, max_seq_len=48)
    sequences = [list(p) for p in PROMPTS]
    out = stepper.start(PROMPTS)
    for step in range(8):
        for row, seq in enumerate(sequences):
            np.testing.assert_allclose(out["logits"][row], hf_last_logits(reference, seq), atol=1e-3, rtol=0)
        tokens = [int(t) for t in out["next_token"]]
        for seq, token in zip(sequences, tokens):
            seq.append(token)
        out = stepper.step(tokens)
