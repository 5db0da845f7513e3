"""A NaN or an infinity in a checkpoint's weights is an error naming the tensor, in every format, as it is read.

Checkpoints are the tiny seeded model (random_tensors, seed 0) with one value replaced, or, for a GGUF file whose
Q4_0 blocks are taken as stored, one block's float16 scale overwritten in the file.
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from llama_ort.checkpoint import open_checkpoint
from llama_ort.checkpoint.base import all_finite
from llama_ort.checkpoint.random import random_tensors, write_gguf, write_hf, write_meta
from llama_ort.errors import LlamaOrtError

Q_PROJ = "model.layers.1.self_attn.q_proj.weight"
NORM = "model.layers.0.post_attention_layernorm.weight"


def tensors_with(spec, name: str, value: float):
    """The tiny model's tensors with `value` in the last element of `name` (read last in its tensor's rows)."""
    for each, w in random_tensors(spec, 0):
        if each == name:
            w = w.copy()
            w.reshape(-1)[-1] = value
        yield each, w


def read_error(path) -> str:
    with pytest.raises(LlamaOrtError) as caught, open_checkpoint(path) as checkpoint:
        list(checkpoint.tensors())
    return str(caught.value)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_all_finite_finds_one_bad_value_anywhere(dtype, value):
    for shape, index in (((70, 5000), (65, 4999)), ((3,), (2,)), ((), ())):  # past the first chunk; 1-D; scalar
        x = np.ones(shape, dtype)
        assert all_finite(x) and all_finite(x.T)
        x[index] = value
        assert not all_finite(x) and not all_finite(x.T)
    assert all_finite(np.full(4, np.finfo(dtype).max, dtype)) and all_finite(np.zeros((0, 4), dtype))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name, value, found", [(Q_PROJ, np.nan, "1 NaN and 0 infinite values"),
                                                (NORM, -np.inf, "0 NaN and 1 infinite values")])
def test_hugging_face(tiny_spec, tmp_path, dtype, name, value, found):
    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, tensors_with(tiny_spec, name, value), dtype)
    assert read_error(folder) == (f"{folder}: tensor {name} holds {found}: the checkpoint is damaged; download or "
                                  "convert it again")


@pytest.mark.parametrize("dtype", ["F32", "F16", "Q8_0"])
@pytest.mark.parametrize("name, value", [(Q_PROJ, np.inf), (NORM, np.nan)])
def test_gguf(tiny_spec, tmp_path, dtype, name, value):
    path = tmp_path / "tiny.gguf"
    write_gguf(tiny_spec, path, tensors_with(tiny_spec, name, value), dtype)
    assert read_error(path).startswith(f"{path}: tensor {name} holds ")


def test_meta(tiny_spec, tmp_path):
    pytest.importorskip("torch")
    folder = tmp_path / "meta"
    write_meta(tiny_spec, folder, tensors_with(tiny_spec, Q_PROJ, np.nan), num_shards=2, dtype="bfloat16")
    assert read_error(folder).startswith(f"{folder}: tensor {Q_PROJ} holds 1 NaN and 0 infinite values")


@pytest.mark.parametrize("scale_bits, found", [(0x7E00, "1 NaN and 0 infinite values"),
                                               (0xFC00, "0 NaN and 1 infinite values")])
def test_gguf_q4_0_blocks_taken_as_stored(tiny_spec, tmp_path, scale_bits, found):
    """The int4 build takes Q4_0 blocks as they are: their float16 scales are what is checked."""
    path = tmp_path / "q4_0.gguf"
    write_gguf(tiny_spec, path, random_tensors(tiny_spec, 0), "Q4_0")
    reader = gguf.GGUFReader(path, "r+")
    blocks = next(t for t in reader.tensors if t.name == "blk.1.attn_q.weight").data  # [rows, blocks x 18 bytes]
    blocks[3, 18 * 1:18 * 1 + 2] = np.array([scale_bits], "<u2").view(np.uint8)  # row 3, block 1's scale
    del reader, blocks  # a shared memory map: the file holds the change
    with open_checkpoint(path) as checkpoint, pytest.raises(LlamaOrtError) as caught:
        checkpoint.checked_int4_blocks(Q_PROJ, 32)
    assert str(caught.value).startswith(f"{path}: tensor {Q_PROJ} holds {found}")
    assert read_error(path).startswith(f"{path}: tensor {Q_PROJ} holds ")  # dequantized: the same values, as floats
