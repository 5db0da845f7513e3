"""Which rows each peer asks for: pure functions of the workload and what is installed."""

import importlib.util

from llama_ort.bench.peers import LlamaOrt
from llama_ort.bench.workload import Workload


def test_a_gpu_run_has_llama_ort_rows_with_and_without_cuda_graph_and_on_webgpu(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime_ep_webgpu" else real_find_spec(name))
    rows = LlamaOrt().variants(("fp16", "int4"), Workload(device="cuda"))
    assert [(v.label, v.target) for v, _ in rows] == [
        ("llama-ort fp16", "cuda"), ("llama-ort fp16 cuda graph", "cuda"), ("llama-ort fp16 webgpu", "webgpu"),
        ("llama-ort int4", "cuda"), ("llama-ort int4 cuda graph", "cuda"), ("llama-ort int4 webgpu", "webgpu")]
    reasons = {v.label: why for v, why in rows}
    assert reasons["llama-ort fp16 webgpu"] == "the WebGPU plugin is not installed (pip install onnxruntime-ep-webgpu)"
    assert reasons["llama-ort fp16 cuda graph"] is None


def test_a_cpu_run_has_one_llama_ort_row_per_precision():
    rows = LlamaOrt().variants(("fp32", "int4"), Workload())
    assert [(v.label, v.target, why) for v, why in rows] == [("llama-ort fp32", "cpu", None),
                                                              ("llama-ort int4", "cpu", None)]


def test_a_custom_variant_shares_one_build_and_on_a_gpu_also_runs_with_cuda_graphs():
    cpu = LlamaOrt().custom_variants("int4 --block-size 128", Workload())
    assert [(v.label, v.build_args) for v in cpu] == [("llama-ort int4 --block-size 128", ("--block-size", "128"))]
    gpu = LlamaOrt().custom_variants("int4 --block-size 128", Workload(device="cuda"))
    assert [v.label for v in gpu] == ["llama-ort int4 --block-size 128", "llama-ort int4 --block-size 128, cuda graph"]
    assert len({v.build_key for v in gpu}) == 1
