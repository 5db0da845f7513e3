"""`llama-ort optimize` never writes a model that generates nothing: NaN or infinite weights, weights that float16
cannot hold, and logits that are not finite each stop it with one line naming the cause, exit code 2, and no
output folder.

Checkpoints are the tiny seeded model (random_tensors, seed 0) with some values replaced.
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from llama_ort.checkpoint.random import random_tensors, write_gguf, write_hf
from llama_ort.cli import main

Q_PROJ = "model.layers.1.self_attn.q_proj.weight"
NORM = "model.layers.0.post_attention_layernorm.weight"


def tensors_with(spec, values: dict[str, float]):
    """The tiny model's tensors, with name -> value set in the last element of each named tensor, or in all of it
    for a 1-D one (a norm weight)."""
    for name, w in random_tensors(spec, 0):
        if name in values:
            w = w.copy()
            if w.ndim == 1:
                w[:] = values[name]
            else:
                w.reshape(-1)[-1] = values[name]
        yield name, w


def optimize_error(capsys, checkpoint, tmp_path, *flags) -> str:
    """Run `llama-ort optimize` in this process; check it failed as a user's error should, and return the line."""
    output = tmp_path / "out"
    code = main(["optimize", str(checkpoint), "--output", str(output), "--cache-dir", str(tmp_path / "cache"),
                 *flags])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("llama-ort: error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert err.rstrip("\n").endswith(errors[0])  # the last thing said
    assert not output.exists()
    return errors[0]


@pytest.mark.parametrize("name, value, found", [(Q_PROJ, np.nan, "1 NaN and 0 infinite values"),
                                                (NORM, np.inf, "0 NaN and 64 infinite values")])
def test_hugging_face_weights(capsys, tiny_spec, tmp_path, name, value, found):
    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, tensors_with(tiny_spec, {name: value}))
    assert optimize_error(capsys, folder, tmp_path) == (f"llama-ort: error: {folder}: tensor {name} holds {found}: "
                                                        "the checkpoint is damaged; download or convert it again")


def test_gguf_weights(capsys, tiny_spec, tmp_path):
    """A NaN and an infinity in two tensors: the first one read is named."""
    path = tmp_path / "tiny.gguf"
    write_gguf(tiny_spec, path, tensors_with(tiny_spec, {NORM: np.inf, Q_PROJ: np.nan}), "F16")
    assert f"{path}: tensor {NORM} holds 0 NaN and 64 infinite values" in optimize_error(capsys, path, tmp_path)


def test_gguf_q4_0_blocks_taken_as_stored(capsys, tiny_spec, tmp_path):
    path = tmp_path / "q4_0.gguf"
    write_gguf(tiny_spec, path, random_tensors(tiny_spec, 0), "Q4_0")
    reader = gguf.GGUFReader(path, "r+")
    blocks = next(t for t in reader.tensors if t.name == "blk.1.attn_q.weight").data  # [rows, blocks x 18 bytes]
    blocks[0, :2] = np.array([0x7E00], "<u2").view(np.uint8)  # row 0, block 0's float16 scale: NaN
    del reader, blocks  # a shared memory map: the file holds the change
    message = optimize_error(capsys, path, tmp_path, "--precision", "int4")
    assert f"{path}: tensor {Q_PROJ} holds 1 NaN and 0 infinite values" in message


def test_weights_beyond_float16(capsys, tiny_spec, tmp_path):
    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, tensors_with(tiny_spec, {Q_PROJ: 1e6}))
    message = optimize_error(capsys, folder, tmp_path, "--precision", "fp16")
    assert message == (f"llama-ort: error: {folder}: tensor {Q_PROJ} holds values beyond float16's range (±65504), "
                       "which would be infinite in this model: build it with --precision fp32")


def test_logits_that_are_not_finite_fail_the_verify(capsys, tiny_spec, tmp_path):
    """Every weight fits float16, but the final norm's 60000 times a normalized row does not: today's fp16 model
    gives infinite logits, which the verify's cosine turned into a NaN that passed every bound."""
    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, tensors_with(tiny_spec, {"model.norm.weight": 60000.0}))
    assert main(["optimize", str(folder), "--output", str(tmp_path / "fp32"), "--cache-dir",
                 str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    message = optimize_error(capsys, folder, tmp_path, "--precision", "fp16")
    assert message.startswith("llama-ort: error: verify: the built fp16 model gives ")
    assert message.endswith("so it would generate nothing; its float16 activations may overflow: build it with "
                            "--precision fp32")
