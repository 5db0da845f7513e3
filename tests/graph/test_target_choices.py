"""Graph choices that depend on the target and the precision show in the built graph: the MLP's gate and up
projections are one packed MatMul with a Split where the target packs them at that precision, two otherwise."""

from collections import Counter

import onnx
import pytest

from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort_testing.reference import random_checkpoint, tiny_spec

SPEC = tiny_spec(num_layers=2)


def op_counts(tmp_path, target: str, precision: str) -> Counter:
    manifest = build_model(random_checkpoint(SPEC), tmp_path, BuildOptions(target=target, precision=precision,
                                                                            layout="single"))
    graph = onnx.load(tmp_path / manifest.model_file, load_external_data=False).graph
    return Counter(node.op_type for node in graph.node)


@pytest.mark.parametrize("target, precision, packed", [("cpu", "fp32", False), ("cpu", "int4", True),
                                                        ("cuda", "fp16", False), ("cuda", "fp32", False),
                                                        ("cuda", "int4", True)])
def test_gate_and_up_are_packed_where_the_target_packs_them(tmp_path, target, precision, packed):
    ops = op_counts(tmp_path, target, precision)
    matmul = "MatMulNBits" if precision == "int4" else "MatMul"
    per_layer = 2 + (2 if packed else 3)  # attention: packed QKV and o_proj; MLP: gate/up (1 or 2) and down
    assert ops["Split"] == (SPEC.num_layers if packed else 0)
    assert ops[matmul] == SPEC.num_layers * per_layer + (precision == "int4")  # + the quantized lm_head
