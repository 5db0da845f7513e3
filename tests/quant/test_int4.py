"""int4 packing: exact against MatMulNBits, and identical to onnxruntime's own quantizer."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from llama_ort.quant.int4 import dequantize_int4, quantize_int4


def matmul_nbits_model(q, zero_points: bool) -> bytes:
    inits = [numpy_helper.from_array(q.packed, "B"), numpy_helper.from_array(q.scales.reshape(-1), "scales")]
    inputs = ["A", "B", "scales"]
    if zero_points:
        inits.append(numpy_helper.from_array(q.zero_points.reshape(-1), "zp"))
        inputs.append("zp")
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=q.k, N=q.n, bits=4,
                            block_size=q.block_size, accuracy_level=0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [None, q.k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, q.n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


@pytest.mark.parametrize("block_size", [16, 32, 64, 128])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("k", [256, 200])  # 200: a last block padded with zeros
def test_matmul_nbits_equals_a_times_dequantized_w(block_size, symmetric, k):
    rng = np.random.default_rng(block_size + k)
    w = rng.standard_normal((48, k)).astype(np.float32)
    a = rng.standard_normal((5, k)).astype(np.float32)
    q = quantize_int4(w, block_size, symmetric)
    session = ort.InferenceSession(matmul_nbits_model(q, not symmetric), providers=["CPUExecutionProvider"])
    y = session.run(None, {"A": a})[0]
    np.testing.assert_allclose(y, a @ dequantize_int4(q).T, rtol=1e-5, atol=1e-4)
    # and close to the original: half a step when rounding, one step where a code clips at the range's end
    step = np.repeat(np.abs(q.scales.astype(np.float32)), block_size, axis=1)[:, :k]
    error = np.abs(dequantize_int4(q) - w) / step
    assert error.max() <= 1.0 + 1e-5
    assert error.mean() <= 0.3


def test_symmetric_packing_matches_onnxruntime_quantizer():
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 96)).astype(np.float32)  # ours: [N, K]; ONNX MatMul's B is [K, N]
    node = helper.make_node("MatMul", ["A", "W"], ["Y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [None, 96])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 64])],
                              [numpy_helper.from_array(np.ascontiguousarray(w.T), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    quantizer = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=True)
    quantizer.process()
    theirs = {t.name: numpy_helper.to_array(t) for t in quantizer.model.model.graph.initializer}
    ours = quantize_int4(w, 32, symmetric=True)
    packed = next(v for k, v in theirs.items() if v.dtype == np.uint8)
    scales = next(v for k, v in theirs.items() if v.dtype == np.float32)
    np.testing.assert_array_equal(packed.reshape(ours.packed.shape), ours.packed)
    np.testing.assert_array_equal(scales.reshape(-1), ours.scales.reshape(-1))


def test_asymmetric_blocks_keep_a_q4_1_grid_exactly():
    """A GGUF Q4_1 tensor (w = d * code + m per block of 32, codes 0 and 15 present) re-quantizes losslessly."""
    rng = np.random.default_rng(3)
    n, k = 16, 128
    codes = rng.integers(0, 16, (n, k // 32, 32))
    codes[..., 0], codes[..., 1] = 0, 15
    d = rng.uniform(0.01, 0.1, (n, k // 32, 1)).astype(np.float32)
    m = rng.uniform(-1, 0, (n, k // 32, 1)).astype(np.float32)
    w = (codes * d + m).reshape(n, k).astype(np.float32)
    q = quantize_int4(w, 32, symmetric=False)
    np.testing.assert_allclose(dequantize_int4(q), w, atol=1e-6)
