"""int4 with larger blocks for the MLP and lm_head than for attention (--mlp-block-size)."""

import onnx
import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.graph.weights import QuantOptions
from llama_ort.verify.check import verify_model
from reference import random_checkpoint, tiny_spec


def test_mlp_and_lm_head_take_their_own_block_size(tmp_path):
    checkpoint = random_checkpoint(tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=2, intermediate_size=512))
    options = BuildOptions(precision="int4", quant=QuantOptions(block_size=32, mlp_block_size=128))
    manifest = build_model(checkpoint, tmp_path, options)
    blocks = {}
    for node in onnx.load(tmp_path / manifest.model_file, load_external_data=False).graph.node:
        if node.op_type == "MatMulNBits":
            part = "mlp" if ".mlp." in node.name else "lm_head" if "lm_head" in node.name else "attention"
            blocks.setdefault(part, set()).add(next(a.i for a in node.attribute if a.name == "block_size"))
    assert blocks == {"attention": {32}, "mlp": {128}, "lm_head": {128}}
    assert verify_model(checkpoint, tmp_path)["cosine"] >= 0.95  # the int4 bound of the verify pass


def test_an_unsupported_mlp_block_size_is_one_clear_error():
    with pytest.raises(LlamaOrtError, match=r"--mlp-block-size: 48 is not one of 16, 32, 64, 128, 256"):
        BuildOptions(precision="int4", quant=QuantOptions(mlp_block_size=48)).resolved()
