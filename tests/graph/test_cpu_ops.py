"""Every node of a cpu model has a kernel in the installed onnxruntime's CPU provider, for its types.

The registry is onnxruntime's own (get_all_opkernel_def), so this needs no session and no data file. The same
check covers cuda with onnxruntime-gpu installed (installed_kernels("CUDAExecutionProvider")); a CPU-only
build lists CPU kernels only, hence the skip.

fp16 on the CPU: an x86 build has no float16 MatMul, Gemm, Mul or Sigmoid; onnxruntime runs those on the float
kernels with Casts it inserts itself, which is why the cpu target's fp16 model is for checking, not speed.
"""

import onnx
import pytest

from llama_ort_testing.kernels import installed_kernels, missing_kernels, node_uses
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort_testing.reference import random_checkpoint, tiny_spec

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def check_target(tmp_path, target: str, precision: str, layout: str) -> list[str]:
    checkpoint = random_checkpoint(tiny_spec(), seed=0)
    manifest = build_model(checkpoint, tmp_path, BuildOptions(target=target, precision=precision, layout=layout))
    model = onnx.load(tmp_path / manifest.model_file, load_external_data=False)
    provider = PROVIDERS[target]
    return missing_kernels(node_uses(model), installed_kernels(provider), provider, casts_float16=target == "cpu")


@pytest.mark.parametrize("layout", ["single", "merged"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int4"])
def test_every_node_has_a_cpu_kernel(tmp_path, precision, layout):
    problems = check_target(tmp_path, "cpu", precision, layout)
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int4"])
def test_every_node_has_a_cuda_kernel(tmp_path, precision):
    if not installed_kernels("CUDAExecutionProvider"):
        pytest.skip("this onnxruntime build has no CUDA kernels: install onnxruntime-gpu")
    problems = check_target(tmp_path, "cuda", precision, "single")
    assert not problems, "\n".join(sorted(set(problems)))
