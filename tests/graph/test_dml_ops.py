"""Every node of a dml model has a DirectML kernel that takes it. DirectML runs only on Windows, so the
oracle is its kernel registrations, extracted from ONNX Runtime's source into llama_ort/graph/dml_kernels.json
(scripts/extract_dml_kernels.py), plus what its kernels check on their own, written out below."""

import json
from collections import defaultdict
from importlib import resources

import onnx
import pytest

from llama_ort_testing.kernels import Kernel, NodeUse, missing_kernels, node_uses
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort_testing.reference import random_checkpoint, tiny_spec

NEWER_CONTRIB_OPS = {"GroupQueryAttention", "MatMulNBits", "RotaryEmbedding", "SkipSimplifiedLayerNormalization"}


def dml_data() -> dict:
    return json.loads((resources.files("llama_ort.graph") / "dml_kernels.json").read_text())


def dml_kernels() -> dict[tuple[str, str], list[Kernel]]:
    # DirectML registers every kernel open-ended (KernelDefBuilder::SinceVersion(start) only), so each takes only
    # nodes of its own since version; the file's end_version is informational.
    table = defaultdict(list)
    for k in dml_data()["kernels"]:
        types = {label: frozenset(allowed) for label, allowed in k["types"].items()}
        table[k["domain"], k["op"]].append(Kernel(k["op"], k["domain"], k["since_version"], None, types))
    return table


# What DirectML's kernels check beyond the table, from the same onnxruntime commit (Operators/DmlOperator*.cpp).
# A node a support query rejects runs on the CPU provider instead, with copies around it; a node a kernel's
# constructor rejects fails session creation; an input or attribute a kernel ignores silently changes the result.
def attr(node: onnx.NodeProto, name: str, default):
    found = [onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name]
    return found[0] if found else default


def has_input(node: onnx.NodeProto, i: int) -> bool:
    return i < len(node.input) and node.input[i] != ""


def skip_layer_norm(node):
    # QuerySkipLayerNormalization: the mean (1) and inv_std_var (2) outputs are not supported.
    if any(i < len(node.output) and node.output[i] for i in (1, 2)):
        return "outputs 1 (mean) and 2 (inv_std_var) must be left empty (\"\"); DML falls back to CPU otherwise"


def layer_norm(node):
    # QueryLayerNormalization: one output only.
    if len([o for o in node.output if o]) != 1:
        return "DML takes only the Y output"


def matmul_nbits(node):
    if attr(node, "bits", 4) not in (4, 8):
        return "bits must be 4 or 8 (QueryMatMulNBits)"
    if attr(node, "K", 0) % attr(node, "block_size", 1):
        return "K must be a multiple of block_size (QueryMatMulNBits)"
    if has_input(node, 4) or has_input(node, 5):
        return "g_idx and bias inputs are rejected by DmlOperatorMatMulNBits"


def group_query_attention(node):
    # DmlOperatorGroupQueryAttention maps GQA to DML_MULTIHEAD_ATTENTION1 with separate 3-D query, key and value; it
    # reads inputs 0-6 only and none of the rotary, window or softcap attributes.
    reasons = []
    if not (has_input(node, 1) and has_input(node, 2)):
        reasons.append("key and value must be separate inputs: DML's kernel requires 3-D key/value (no packed QKV)")
    ignored = [i for i in range(7, len(node.input)) if node.input[i]]
    if attr(node, "do_rotary", 0) or ignored:
        reasons.append(f"do_rotary={attr(node, 'do_rotary', 0)} and inputs {ignored} (cos_cache, sin_cache, ...) are "
                       "ignored by DML's kernel, so rotary would be skipped: rotate q and k with "
                       "com.microsoft.RotaryEmbedding first")
    if attr(node, "local_window_size", -1) != -1 or attr(node, "softcap", 0.0) != 0.0:
        reasons.append("local_window_size and softcap are ignored by DML's kernel")
    return "; ".join(reasons)


def rotary_embedding(node):
    if len([i for i in node.input if i]) != 4:
        return "DmlOperatorRotaryEmbedding takes exactly 4 inputs (input, position_ids, cos_cache, sin_cache)"


KERNEL_CHECKS = {
    ("com.microsoft", "SkipSimplifiedLayerNormalization"): skip_layer_norm,
    ("com.microsoft", "SkipLayerNormalization"): skip_layer_norm,
    ("", "SimplifiedLayerNormalization"): layer_norm,
    ("", "LayerNormalization"): layer_norm,
    ("com.microsoft", "MatMulNBits"): matmul_nbits,
    ("com.microsoft", "GroupQueryAttention"): group_query_attention,
    ("com.microsoft", "RotaryEmbedding"): rotary_embedding,
}


def kernel_check_failures(uses: list[NodeUse]) -> list[str]:
    failures = []
    for use in uses:
        check = KERNEL_CHECKS.get((use.node.domain, use.node.op_type))
        if check and (reason := check(use.node)):
            failures.append(f"{use.describe()}: {reason}")
    return failures


def test_kernel_data_is_from_a_recent_onnxruntime():
    data = dml_data()
    assert "onnxruntime" in data["source"]
    ops = {k["op"] for k in data["kernels"] if k["domain"] == "com.microsoft"}
    assert NEWER_CONTRIB_OPS <= ops


@pytest.mark.parametrize("layout", ["merged", "single"])
@pytest.mark.parametrize("precision", ["fp16", "int4"])
def test_every_node_has_a_dml_kernel(tmp_path, precision, layout):
    checkpoint = random_checkpoint(tiny_spec(), seed=0)
    manifest = build_model(checkpoint, tmp_path, BuildOptions(target="dml", precision=precision, layout=layout))
    model = onnx.load(tmp_path / manifest.model_file, load_external_data=False)
    uses = node_uses(model)
    assert any(u.graph != model.graph.name for u in uses) == (layout == "merged")  # If branches were walked
    problems = missing_kernels(uses, dml_kernels(), "DmlExecutionProvider") + kernel_check_failures(uses)
    assert not problems, "\n".join(sorted(set(problems)))
