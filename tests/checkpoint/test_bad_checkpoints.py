"""Bad input gives one LlamaOrtError naming the file (and what is wrong), never a traceback type."""

from __future__ import annotations

import json
import shutil

import gguf
import numpy as np
import pytest
import safetensors.numpy

from llama_ort.checkpoint import open_checkpoint
from llama_ort.errors import LlamaOrtError


def error_of(path, tensor: str | None = None) -> str:
    """Open `path` and read `tensor` (default: every tensor); return the message of the LlamaOrtError this must
    raise."""
    with pytest.raises(LlamaOrtError) as caught:
        with open_checkpoint(path) as checkpoint:
            checkpoint.read(tensor) if tensor else list(checkpoint.tensors())
    return str(caught.value)


def copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / folder.name)


def edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def truncate(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


def test_missing_path(tmp_path):
    assert "no such file or folder" in error_of(tmp_path / "nowhere")


def test_hf_folder_without_weights(tiny_hf, tmp_path):
    folder = copy(tiny_hf, tmp_path)
    (folder / "model.safetensors").unlink()
    assert f"{folder}: has no model.safetensors or model.safetensors.index.json" in error_of(folder)


def test_shard_listed_in_index_is_missing(tiny_spec, tmp_path):
    from llama_ort.checkpoint.random import random_tensors, write_hf

    folder = tmp_path / "hf"
    write_hf(tiny_spec, folder, random_tensors(tiny_spec, 0), "float16", shard_bytes=40_000)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shard = folder / sorted(set(index["weight_map"].values()))[1]
    shard.unlink()
    assert f"{shard}: no such file" in error_of(folder)


@pytest.mark.parametrize("size, what", [
    (5, "is truncated: 5 bytes, shorter than the 8-byte safetensors header length"),
    (100, "is truncated or not safetensors: its header claims"),
    (-1000, "is truncated: tensor"),
])
def test_truncated_safetensors(tiny_hf, tmp_path, size, what):
    folder = copy(tiny_hf, tmp_path)
    file = folder / "model.safetensors"
    truncate(file, size if size > 0 else file.stat().st_size + size)
    assert f"{file}: {what}" in error_of(folder)


def test_corrupt_safetensors_header(tiny_hf, tmp_path):
    folder = copy(tiny_hf, tmp_path)
    file = folder / "model.safetensors"
    with open(file, "r+b") as f:
        f.seek(8)
        f.write(b"{not json")
    assert f"{file}: has a corrupt safetensors header (not JSON" in error_of(folder)


def test_safetensors_entry_disagreeing_with_its_size(tiny_hf, tmp_path):
    folder = copy(tiny_hf, tmp_path)
    file = folder / "model.safetensors"
    data = bytearray(file.read_bytes())
    # Same length, so the header stays in place: claim float16 where float32 bytes are stored
    data[:200] = data[:200].replace(b'"F32"', b'"F16"', 1)
    file.write_bytes(bytes(data))
    assert "cannot take" in error_of(folder) and str(file) in error_of(folder)


def test_unsupported_safetensors_dtype(tmp_path, tiny_hf):
    folder = copy(tiny_hf, tmp_path)
    safetensors.numpy.save_file({"model.embed_tokens.weight": np.zeros((128, 64), np.int8)},
                                folder / "model.safetensors")
    assert "tensor model.embed_tokens.weight has dtype I8; llama-ort reads F32, F16 and BF16" in error_of(folder)


@pytest.mark.parametrize("changes, what", [
    ({"architectures": ["GPT2LMHeadModel"]}, "field 'architectures' is 'GPT2LMHeadModel'; llama-ort reads"),
    ({"architectures": None}, "field 'architectures' is missing"),
    ({"hidden_size": None}, "field 'hidden_size' is missing"),
    ({"num_hidden_layers": "2"}, "field 'num_hidden_layers' should be an integer, found '2'"),
    ({"num_key_value_heads": 3}, "num_heads (4) is not a multiple of num_kv_heads (3)"),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope scaling type 'yarn' is not supported"),
])
def test_bad_config(tiny_hf, tmp_path, changes, what):
    folder = copy(tiny_hf, tmp_path)
    edit_json(folder / "config.json", **changes)
    assert f"{folder / 'config.json'}: {what}" in error_of(folder)


def test_config_not_json(tiny_hf, tmp_path):
    folder = copy(tiny_hf, tmp_path)
    (folder / "config.json").write_text("{")
    assert f"{folder / 'config.json'}: is not valid JSON" in error_of(folder)


def test_shape_disagreeing_with_config(tiny_hf, tmp_path):
    folder = copy(tiny_hf, tmp_path)
    edit_json(folder / "config.json", intermediate_size=96)
    message = error_of(folder)
    assert f"{folder}: tensor model.layers.0.mlp.gate_proj.weight has shape (128, 64)" in message
    assert "the config implies (96, 64)" in message


def test_corrupt_pth(tiny_meta, tmp_path):
    folder = copy(tiny_meta, tmp_path)
    shard = folder / "consolidated.00.pth"
    truncate(shard, shard.stat().st_size // 2)
    assert f"{shard}: is not a readable PyTorch checkpoint" in error_of(folder)


def test_pth_missing_a_tensor(tiny_meta, tmp_path):
    torch = pytest.importorskip("torch")
    folder = copy(tiny_meta, tmp_path)
    shard = folder / "consolidated.00.pth"
    tensors = torch.load(shard, weights_only=True)
    del tensors["layers.1.feed_forward.w2.weight"]
    torch.save(tensors, shard)
    assert f"{shard}: holds no tensor layers.1.feed_forward.w2.weight" in error_of(folder)


def test_bad_params(tiny_meta, tmp_path):
    folder = copy(tiny_meta, tmp_path)
    edit_json(folder / "params.json", n_heads=None)
    assert f"{folder / 'params.json'}: field 'n_heads' is missing" in error_of(folder)


def test_truncated_gguf(tiny_gguf, tmp_path):
    file = shutil.copy(tiny_gguf, tmp_path / "cut.gguf")
    truncate(file, 4000)
    assert f"{file}: is not a readable GGUF file, or is truncated" in error_of(file)


def test_not_a_gguf(tmp_path):
    file = tmp_path / "text.gguf"
    file.write_text("hello, this is not a model")
    assert f"{file}: is not a readable GGUF file" in error_of(file)


def write_small_gguf(path, arch: str, tensor_type: gguf.GGMLQuantizationType):
    """A GGUF with the metadata of a 1-layer model and only its attn_q tensor, stored as `tensor_type`."""
    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(1)
    writer.add_context_length(128)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_vocab_size(128)
    block_size, block_bytes = gguf.GGML_QUANT_SIZES[tensor_type]
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64 // block_size * block_bytes), np.uint8),
                      raw_dtype=tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_unsupported_gguf_type(tmp_path):
    file = write_small_gguf(tmp_path / "q8_1.gguf", "llama", gguf.GGMLQuantizationType.Q8_1)
    message = error_of(file, "model.layers.0.self_attn.q_proj.weight")
    assert f"{file}: tensor blk.0.attn_q.weight has type Q8_1, which llama-ort cannot dequantize" in message


def test_unknown_gguf_architecture(tmp_path):
    file = write_small_gguf(tmp_path / "qwen.gguf", "qwen2", gguf.GGMLQuantizationType.F32)
    assert f"{file}: general.architecture is 'qwen2'; llama-ort reads llama, mistral" in error_of(file)


def test_gguf_missing_a_tensor(tmp_path):
    file = write_small_gguf(tmp_path / "partial.gguf", "llama", gguf.GGMLQuantizationType.F32)
    assert f"{file}: holds no tensor token_embd.weight" in error_of(file)
