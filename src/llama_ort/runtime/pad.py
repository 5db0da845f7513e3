"""Copying a device buffer into a longer one, so that a dynamic-mode cache grows without a trip to the host.

ONNX Runtime has no Python call that copies into part of a buffer, so a one-node model (Pad with zeros at
the end of one axis) does it on the session's own provider, its input and output bound by IO binding.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .session import Model


def pad_model(element_type: int, rank: int) -> bytes:
    """y = Pad(x, pads) for one element type and rank; the pads come in as an input, so one model serves all."""
    from onnx import TensorProto, helper  # here, not at the top: onnx costs 0.8 s of every command's start

    dims = [f"d{i}" for i in range(rank)]
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["y"], mode="constant")],
        "pad",
        [helper.make_tensor_value_info("x", element_type, dims),
         helper.make_tensor_value_info("pads", TensorProto.INT64, [2 * rank])],
        [helper.make_tensor_value_info("y", element_type, [None] * rank)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model.SerializeToString()


class Padder:
    """Grows buffers of one model's device along one axis, keeping their contents and zero-filling the rest."""

    def __init__(self, model: Model):
        self.model = model
        self._sessions: dict[tuple[int, int], ort.InferenceSession] = {}

    def grow(self, value: ort.OrtValue, axis: int, length: int) -> ort.OrtValue:
        """A new buffer like `value` but `length` long on `axis`, holding `value` at its start."""
        shape = list(value.shape())
        pads = np.zeros(2 * len(shape), np.int64)
        pads[len(shape) + axis] = length - shape[axis]  # the end of `axis`
        shape[axis] = length
        from onnx.helper import tensor_dtype_to_np_dtype  # as in pad_model

        grown = self.model.allocate(tuple(shape), tensor_dtype_to_np_dtype(value.element_type()))
        session = self._session(value.element_type(), len(shape))
        binding = session.io_binding()
        binding.bind_ortvalue_input("x", value)
        binding.bind_cpu_input("pads", pads)
        binding.bind_ortvalue_output("y", grown)
        session.run_with_iobinding(binding)
        return grown

    def _session(self, element_type: int, rank: int) -> ort.InferenceSession:
        key = (element_type, rank)
        if key not in self._sessions:
            self._sessions[key] = self.model.sibling_session(pad_model(element_type, rank))
        return self._sessions[key]
