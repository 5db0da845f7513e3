"""An int4 model computes what transformers computes on its dequantized weights: every projection, the lm_head
and (where the target reads quantized tables) the embeddings in each of their forms, tied or not; GGUF Q4_0
weights are taken as stored.

The expected weights are the checkpoint's quantized and dequantized again by llama-ort's quantizers (the blocks
MatMulNBits and GatherBlockQuantized read). Activations stay float (accuracy level 1), so what is left is
float rounding.
"""

import dataclasses

import gguf as gguf_package
import numpy as np
import onnx
import pytest

from llama_ort.checkpoint import names
from llama_ort.checkpoint.gguf_reader import GGUFCheckpoint
from llama_ort.checkpoint.memory import MemoryCheckpoint
from llama_ort.checkpoint.random import write_gguf
from llama_ort.errors import LlamaOrtError
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.quant.options import QuantOptions
from llama_ort.model_format import Manifest
from llama_ort.quant.int4 import dequantize_int4, quantize_int4
from llama_ort.quant.int8 import dequantize_int8, quantize_int8
from llama_ort.verify.check import prompt_logits
from llama_ort_testing.reference import hf_last_logits, hf_model, random_checkpoint, tiny_spec

BLOCK = 32
IDS = [1, 17, 42, 8, 9, 120, 3]


def as_int4_model_sees_them(checkpoint, embeddings: str, block: int = BLOCK) -> MemoryCheckpoint:
    """The checkpoint's weights as the int4 model reads them, untied: a tied table is the lm_head's 4-bit blocks
    there and the embeddings' own form here."""
    def int4(w):
        return dequantize_int4(quantize_int4(w, block, True, np.float32))

    tensors = {name: checkpoint.read(name) for name in checkpoint.tensor_names()}
    table = tensors[names.EMBED]
    tensors = {name: int4(w) if w.ndim == 2 else w for name, w in tensors.items()}
    tensors[names.LM_HEAD] = tensors.pop(names.LM_HEAD, tensors[names.EMBED])
    tensors[names.EMBED] = {"int4": int4(table), "int8": dequantize_int8(quantize_int8(table, block)),
                            "float": table}[embeddings]
    return MemoryCheckpoint(dataclasses.replace(checkpoint.spec, tie_word_embeddings=False), tensors)


def int4_folder(tmp_path, checkpoint, layout, block=BLOCK, **quant):
    options = QuantOptions(block_size=block, accuracy_level=1, **quant)
    build_model(checkpoint, tmp_path, BuildOptions(target="cpu", precision="int4", layout=layout, quant=options))
    return tmp_path


@pytest.mark.parametrize("embeddings", ["int8", "int4", "float"])
@pytest.mark.parametrize("layout", ["single", "merged"])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("hidden, heads, block", [(128, 4, 32), (96, 6, 64)])  # 96: a last block half padding
def test_int4_logits_match_transformers_on_the_dequantized_weights(tmp_path, tied, layout, hidden, heads, block,
                                                                   embeddings):
    spec = tiny_spec(hidden_size=hidden, num_heads=heads, num_kv_heads=2, tie_word_embeddings=tied)
    checkpoint = random_checkpoint(spec)
    expected = hf_last_logits(hf_model(as_int4_model_sees_them(checkpoint, embeddings, block)), IDS)
    actual = prompt_logits(int4_folder(tmp_path, checkpoint, layout, block, embeddings=embeddings), IDS)
    assert np.abs(actual - expected).max() < 1e-3


@pytest.mark.parametrize("embeddings", ["int8", "int4"])
def test_a_tied_table_stays_float_with_a_float_lm_head(tmp_path, embeddings):
    """No quantized copy beside the float table that the lm_head reads."""
    spec = tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2, vocab_size=320, tie_word_embeddings=True)
    folder = int4_folder(tmp_path, random_checkpoint(spec), "single", quantize_lm_head=False, embeddings=embeddings)
    graph = onnx.load(folder / "decoder_model.onnx", load_external_data=False).graph
    assert "GatherBlockQuantized" not in {node.op_type for node in graph.node}
    assert [i.name for i in graph.initializer if i.data_type == onnx.TensorProto.UINT8
            and i.dims[0] == spec.vocab_size] == []
    assert Manifest.load(folder).quantization["embeddings"] == "float"


def test_int4_embeddings_with_zero_points_are_refused(tmp_path):
    checkpoint = random_checkpoint(tiny_spec())
    with pytest.raises(LlamaOrtError, match="--embeddings int4 reads symmetric blocks only"):
        int4_folder(tmp_path, checkpoint, "single", symmetric=False, embeddings="int4")


def test_tied_embeddings_and_lm_head_share_one_4_bit_table(tmp_path):
    spec = tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2, vocab_size=320, tie_word_embeddings=True)
    folder = int4_folder(tmp_path, random_checkpoint(spec), "single", embeddings="int4")
    graph = onnx.load(folder / "decoder_model.onnx", load_external_data=False).graph
    [gather] = [node for node in graph.node if node.op_type == "GatherBlockQuantized"]
    [head] = [node for node in graph.node if node.op_type == "MatMulNBits" and "lm_head" in node.name]
    assert gather.input[0] == head.input[1]
    # the one [vocab, ...] table left is that 4-bit one (its scales aside): no float copy of the embeddings
    tables = [i.name for i in graph.initializer if i.dims[:1] == [spec.vocab_size] and len(i.dims) > 1]
    assert tables == [head.input[1]]
    assert "Gather" not in {node.op_type for node in graph.node}


def test_other_targets_keep_float_embeddings(tmp_path):
    checkpoint = random_checkpoint(tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2))
    asked = QuantOptions(embeddings="int8")
    manifest = build_model(checkpoint, tmp_path, BuildOptions(target="cuda", precision="int4", quant=asked))
    graph = onnx.load(tmp_path / manifest.model_file, load_external_data=False).graph
    assert "GatherBlockQuantized" not in {node.op_type for node in graph.node}
    assert manifest.quantization["embeddings"] == "float"  # the target's decision, recorded


def q4_0_blocks_without_code_0(w: np.ndarray) -> np.ndarray:
    """Q4_0 bytes [rows, blocks * 18] whose codes span 1..15 (d = max |w| / 7), as a quantizer that fits its
    scales (llama.cpp's with an importance matrix) may write; llama.cpp's plain one always uses code 0, which
    re-quantizing would reproduce."""
    blocks = w.reshape(w.shape[0], -1, 32)
    d = (np.abs(blocks).max(axis=2, keepdims=True) / 7).astype(np.float16)
    codes = (np.clip(np.round(blocks / d.astype(np.float32)), -7, 7) + 8).astype(np.uint8)
    nibbles = codes[..., :16] | (codes[..., 16:] << 4)
    return np.concatenate([d.view(np.uint8), nibbles], axis=2).reshape(w.shape[0], -1)


@pytest.mark.parametrize("tied", [False, True])
def test_gguf_q4_0_weights_are_kept_exactly(tmp_path, monkeypatch, tied):
    """Q4_0 blocks are MatMulNBits' symmetric block-32 form: taken as stored, the model computes with exactly the
    file's weights, where re-quantizing them would move every block that does not use code 0."""
    spec = tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2, tie_word_embeddings=tied)
    path = tmp_path / "model.gguf"
    quantize = gguf_package.quants.quantize
    monkeypatch.setattr(gguf_package.quants, "quantize", lambda w, qtype: q4_0_blocks_without_code_0(w)
                        if qtype == gguf_package.GGMLQuantizationType.Q4_0 else quantize(w, qtype))
    write_gguf(spec, path, random_checkpoint(spec).tensors(), "Q4_0")
    monkeypatch.undo()
    for folder in ("int4", "block64"):
        (tmp_path / folder).mkdir()
    with GGUFCheckpoint(path) as gguf:
        matrices = [n for n in gguf.tensor_names() if gguf.read(n).ndim == 2]
        expected = hf_last_logits(hf_model(gguf), IDS)  # the file's weights, dequantized by gguf
        manifest = build_model(gguf, tmp_path / "int4", BuildOptions(precision="int4", quant=QuantOptions(
            accuracy_level=1, embeddings="int4")))
        assert manifest.quantization["weights_kept_as_stored"] == len(matrices)
        assert np.abs(prompt_logits(tmp_path / "int4", IDS) - expected).max() < 1e-3
        other = build_model(gguf, tmp_path / "block64", BuildOptions(precision="int4", quant=QuantOptions(
            block_size=64)))
        assert other.quantization["weights_kept_as_stored"] == 0
