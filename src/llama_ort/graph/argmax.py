"""The seed's argmax_sampling/model.onnx: logits [batch, vocab] -> next token [batch], on the device.

The decoder already has this ArgMax built in (its next_token output); this standalone model keeps the
seed's folder layout readable for tools that expect it.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

ARGMAX_MODEL = "argmax_sampling/model.onnx"


def write_argmax_model(folder: Path) -> None:
    node = helper.make_node("ArgMax", ["logits"], ["next_token"], axis=-1, keepdims=0)
    graph = helper.make_graph(
        [node], "argmax_sampling",
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "vocab"])],
        [helper.make_tensor_value_info("next_token", TensorProto.INT64, ["batch"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], producer_name="llama-ort")
    model.ir_version = 10
    path = folder / ARGMAX_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, path)
