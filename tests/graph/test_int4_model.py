"""An int4 model computes what transformers computes on its dequantized weights: every projection, the lm_head
and (where the target reads 4-bit tables) the embeddings, tied or not.

The expected weights are quantize_int4 then dequantize_int4 of the checkpoint's, the blocks MatMulNBits and
GatherBlockQuantized read. Activations stay float (accuracy level 1), so what is left is float rounding.
"""

import dataclasses

import numpy as np
import onnx
import pytest

from llama_ort.checkpoint import names
from llama_ort.checkpoint.memory import MemoryCheckpoint
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.graph.weights import QuantOptions
from llama_ort.quant.int4 import dequantize_int4, quantize_int4
from llama_ort.verify.check import prompt_logits
from reference import hf_last_logits, hf_model, random_checkpoint, tiny_spec

BLOCK = 32
IDS = [1, 17, 42, 8, 9, 120, 3]


def dequantized(checkpoint, quantized_names) -> MemoryCheckpoint:
    def round_trip(w):
        return dequantize_int4(quantize_int4(w, BLOCK, True, np.float32))

    return MemoryCheckpoint(checkpoint.spec, {name: round_trip(checkpoint.read(name)) if name in quantized_names
                                              else checkpoint.read(name) for name in checkpoint.tensor_names()})


def int4_folder(tmp_path, checkpoint, layout, quantize_embeddings=True):
    quant = QuantOptions(block_size=BLOCK, accuracy_level=1, quantize_embeddings=quantize_embeddings)
    build_model(checkpoint, tmp_path, BuildOptions(target="cpu", precision="int4", layout=layout, quant=quant))
    return tmp_path


@pytest.mark.parametrize("layout", ["single", "merged"])
@pytest.mark.parametrize("tied", [False, True])
def test_int4_logits_match_transformers_on_the_dequantized_weights(tmp_path, tied, layout):
    checkpoint = random_checkpoint(tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2, tie_word_embeddings=tied))
    quantized = [n for n in checkpoint.tensor_names() if checkpoint.read(n).ndim == 2]  # the embeddings included
    assert names.EMBED in quantized
    expected = hf_last_logits(hf_model(dequantized(checkpoint, quantized)), IDS)
    actual = prompt_logits(int4_folder(tmp_path, checkpoint, layout), IDS)
    assert np.abs(actual - expected).max() < 1e-3


def test_float_embeddings_stay_float(tmp_path):
    checkpoint = random_checkpoint(tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2))
    quantized = [n for n in checkpoint.tensor_names() if checkpoint.read(n).ndim == 2 and n != names.EMBED]
    expected = hf_last_logits(hf_model(dequantized(checkpoint, quantized)), IDS)
    actual = prompt_logits(int4_folder(tmp_path, checkpoint, "single", quantize_embeddings=False), IDS)
    assert np.abs(actual - expected).max() < 1e-3


def test_tied_embeddings_and_lm_head_share_one_4_bit_table(tmp_path):
    spec = tiny_spec(hidden_size=128, num_heads=4, num_kv_heads=2, vocab_size=320, tie_word_embeddings=True)
    folder = int4_folder(tmp_path, random_checkpoint(spec), "single")
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
    manifest = build_model(checkpoint, tmp_path, BuildOptions(target="cuda", precision="int4"))
    graph = onnx.load(tmp_path / manifest.model_file, load_external_data=False).graph
    assert "GatherBlockQuantized" not in {node.op_type for node in graph.node}
    assert manifest.quantization["quantize_embeddings"] is False
    assert dataclasses.asdict(QuantOptions())["quantize_embeddings"] is True
