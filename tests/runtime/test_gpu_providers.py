"""The same generations on a GPU provider as on the CPU (run with -m gpu where cuda or webgpu is installed).

fp32 on both, so greedy tokens should agree; where a near tie flips one, the first difference is reported.
The greedy step's host traffic is checked as on the CPU: the token ids only.
"""

import importlib.util

import onnxruntime as ort
import pytest

from tiny_models import PROMPTS
from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.sampling import SamplingParams
from llama_ort.runtime.session import load_model

pytestmark = pytest.mark.gpu

AVAILABLE = {"cuda": "CUDAExecutionProvider" in ort.get_available_providers(),
             "webgpu": importlib.util.find_spec("onnxruntime_ep_webgpu") is not None}
GREEDY = GenerateOptions(max_new_tokens=64, ignore_eos=True, padding=16)


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


@pytest.fixture(params=list(AVAILABLE))
def provider(request):
    if not AVAILABLE[request.param]:
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_greedy_on_the_gpu_matches_the_cpu(tiny, tiny_merged, provider, mode):
    max_seq_len = 128 if mode == "static" else None
    for built in (tiny, tiny_merged):
        cpu = load_model(built.folder, max_seq_len=max_seq_len)
        gpu = load_model(built.folder, provider, max_seq_len=max_seq_len)
        expected = [generate_ids(cpu, [p], GREEDY)[0] for p in PROMPTS]
        alone = [generate_ids(gpu, [p], GREEDY)[0] for p in PROMPTS]
        batched = generate_ids(gpu, PROMPTS, GREEDY)
        assert [first_difference(a, b) for a, b in zip(expected, alone)] == [None] * len(PROMPTS)
        assert batched == alone


def test_sampling_on_the_gpu_matches_the_cpu(tiny, provider):
    options = GenerateOptions(max_new_tokens=40, ignore_eos=True,
                              sampling=SamplingParams(temperature=1.0, top_k=40, seed=3))
    cpu = generate_ids(load_model(tiny.folder, max_seq_len=64), PROMPTS[:2], options)
    assert generate_ids(load_model(tiny.folder, provider, max_seq_len=64), PROMPTS[:2], options) == cpu
