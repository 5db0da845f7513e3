"""A thin layer over onnx.helper: values by name, scoped names, and weights streamed to external data.

`GraphBuilder.op("MatMul", x, w)` emits a node and returns the name of its output, so graph code reads
like the forward pass. Weights go through a `WeightStore`, which appends each tensor to the model's
external-data file the moment it is made and keeps only its location: a build never holds the model.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 21
MS_DOMAIN = "com.microsoft"
PAGE = 4096  # large tensors start on a page so that ONNX Runtime can memory-map them
INLINE_BYTES = 256  # tensors up to this size live inside the .onnx file


def tensor_type(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class WeightStore:
    """Initializers shared by every (sub)graph of one model, written once each to `data_path`."""

    def __init__(self, data_path: Path, location: str):
        self.location = location
        self._file = open(data_path, "wb")
        self._offset = 0
        self._names: dict[str, str] = {}
        self.initializers: list[TensorProto] = []

    def get(self, name: str, make: Callable[[], np.ndarray]) -> str:
        """The initializer `name`, calling `make()` for its value the first time it is asked for."""
        if name not in self._names:
            self.add(name, make())
        return self._names[name]

    def add(self, name: str, array: np.ndarray) -> str:
        array = np.asarray(array, order="C")  # (not ascontiguousarray: it turns scalars into [1])
        if array.nbytes <= INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
        else:
            self.initializers.append(self._write(name, array))
        self._names[name] = name
        return name

    def _write(self, name: str, array: np.ndarray) -> TensorProto:
        align = PAGE if array.nbytes >= PAGE else 64
        pad = -self._offset % align
        if pad:
            self._file.write(b"\0" * pad)
            self._offset += pad
        self._file.write(array.tobytes())
        t = TensorProto(name=name, data_type=tensor_type(array.dtype), dims=array.shape)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", self._offset), ("length", array.nbytes)):
            t.external_data.add(key=key, value=str(value))
        self._offset += array.nbytes
        return t

    def close(self) -> None:
        self._file.close()


class GraphBuilder:
    """Nodes of one graph or subgraph. Output names are `<prefix><scope>.<name>`."""

    def __init__(self, name: str, weights: WeightStore, prefix: str = "", index_dtype=np.int64):
        self.name = name
        self.weights = weights
        self.prefix = prefix
        self.index_dtype = np.dtype(index_dtype)  # of token ids, the mask and the arithmetic on them
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._scope: list[str] = []
        self._used: dict[str, int] = {}

    @contextlib.contextmanager
    def scope(self, name: str):
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def value_name(self, name: str) -> str:
        full = self.prefix + ".".join([*self._scope, name])
        count = self._used.get(full, 0)
        self._used[full] = count + 1
        return full if count == 0 else f"{full}_{count}"

    def op(self, op_type: str, *inputs: str | None, outputs: int | list[str] = 1, name: str | None = None,
           domain: str = "", **attrs) -> str | list[str]:
        """Emit one node; returns its output name, or the list of names when it has several."""
        if isinstance(outputs, int):
            base = name or op_type
            outputs = [self.value_name(base if outputs == 1 else f"{base}.{k}") for k in range(outputs)]
        node = helper.make_node(op_type, ["" if i is None else i for i in inputs], outputs,
                                name=self.prefix + ".".join([*self._scope, name or op_type]) + f"#{len(self.nodes)}",
                                domain=domain, **attrs)
        self.nodes.append(node)
        return outputs[0] if len(outputs) == 1 else outputs

    def const(self, value, dtype=np.int64, name: str | None = None) -> str:
        array = np.asarray(value, dtype=dtype)
        key = name or f"const.{np.dtype(dtype).name}.{hashlib.sha1(array.tobytes() + str(array.shape).encode()).hexdigest()[:12]}"
        return self.weights.get(key, lambda: array)

    def input(self, name: str, dtype, shape) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, tensor_type(dtype), shape))
        return name

    def output(self, name: str, dtype, shape=None) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, tensor_type(dtype), shape))

    def graph(self, initializers: list[TensorProto] = ()) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, initializer=list(initializers))


def make_model(graph: onnx.GraphProto, metadata: dict[str, str], opset: int = OPSET) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="llama-ort",
    )
    model.ir_version = 10
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    return model
