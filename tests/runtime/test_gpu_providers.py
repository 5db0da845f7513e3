"""The same generations on a GPU provider as on the CPU (run with -m gpu where cuda or webgpu is installed).

The model is built for the provider's target in fp32 and run on both, so greedy tokens should agree; where
a near tie flips one, the assertion shows the first difference of each row.
"""

import importlib.util

import onnxruntime as ort
import pytest

from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.sampling import SamplingParams
from llama_ort.runtime.session import load_model
from tiny_models import PROMPTS

pytestmark = pytest.mark.gpu

AVAILABLE = {"cuda": "CUDAExecutionProvider" in ort.get_available_providers(),
             "webgpu": importlib.util.find_spec("onnxruntime_ep_webgpu") is not None}
GREEDY = GenerateOptions(max_new_tokens=64, ignore_eos=True, padding=16)


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


@pytest.fixture(params=list(AVAILABLE))
def provider_model(request, tiny, tmp_path_factory):
    """(provider, model folder built for its target in fp32)."""
    if not AVAILABLE[request.param]:
        pytest.skip(f"{request.param} is not installed")
    folder = tmp_path_factory.mktemp(f"{request.param}-fp32")
    build_model(tiny.checkpoint, folder, BuildOptions(target=request.param, precision="fp32"))
    return request.param, folder


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_greedy_on_the_gpu_matches_the_cpu(provider_model, mode):
    provider, folder = provider_model
    max_seq_len = 128 if mode == "static" else None
    cpu = load_model(folder, max_seq_len=max_seq_len)
    gpu = load_model(folder, provider, max_seq_len=max_seq_len)
    expected = [generate_ids(cpu, [p], GREEDY)[0] for p in PROMPTS]
    alone = [generate_ids(gpu, [p], GREEDY)[0] for p in PROMPTS]
    assert [first_difference(a, b) for a, b in zip(expected, alone)] == [None] * len(PROMPTS)
    assert generate_ids(gpu, PROMPTS, GREEDY) == alone


def test_sampling_on_the_gpu_matches_the_cpu(provider_model):
    provider, folder = provider_model
    options = GenerateOptions(max_new_tokens=40, ignore_eos=True,
                              sampling=SamplingParams(temperature=1.0, top_k=40, seed=3))
    cpu = generate_ids(load_model(folder, max_seq_len=64), PROMPTS[:2], options)
    assert generate_ids(load_model(folder, provider, max_seq_len=64), PROMPTS[:2], options) == cpu


def test_cuda_graph_decode_matches_the_uncaptured_session(provider_model):
    """Decode steps replayed from captured CUDA graphs give the same tokens, alone and batched, twice over
    (the second generation reuses the model's session with new buffers, so new graphs)."""
    provider, folder = provider_model
    if provider != "cuda":
        pytest.skip("CUDA graphs are a cuda feature")
    plain = load_model(folder, provider, max_seq_len=128)
    graphed = load_model(folder, provider, max_seq_len=128, graph=True)
    expected = [generate_ids(plain, [p], GREEDY)[0] for p in PROMPTS]
    for _ in range(2):
        assert [generate_ids(graphed, [p], GREEDY)[0] for p in PROMPTS] == expected
    assert generate_ids(graphed, PROMPTS, GREEDY) == generate_ids(plain, PROMPTS, GREEDY)
