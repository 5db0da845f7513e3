"""The same generations on a GPU provider as on the CPU (run with -m gpu where cuda or webgpu is installed).

The model is built for the provider's target and run on both: in fp32 for webgpu; in fp16 for cuda, whose
GroupQueryAttention has no fp32 kernel (an fp32 model would leave it to the CPU). fp16 sums in another order
on each provider, so there the rows must agree on their first FP16_AGREEMENT tokens, where a near tie is
unlikely; the assertion shows the first difference of each row.
"""

import importlib.util

import onnxruntime as ort
import pytest

from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.sampling import SamplingParams
from llama_ort.runtime.session import load_model
from llama_ort_testing.reference import random_checkpoint, tiny_spec
from llama_ort_testing.tiny_models import PROMPTS

pytestmark = pytest.mark.gpu

AVAILABLE = {"cuda": "CUDAExecutionProvider" in ort.get_available_providers(),
             "webgpu": importlib.util.find_spec("onnxruntime_ep_webgpu") is not None}
PRECISION = {"cuda": "fp16", "webgpu": "fp32"}
GREEDY = GenerateOptions(max_new_tokens=64, ignore_eos=True, padding=16)
FP16_AGREEMENT = 32


def first_difference(a, b):
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)


@pytest.fixture(params=list(AVAILABLE))
def provider_model(request, tiny, tmp_path_factory):
    """(provider, model folder built for its target)."""
    if not AVAILABLE[request.param]:
        pytest.skip(f"{request.param} is not installed")
    precision = PRECISION[request.param]
    folder = tmp_path_factory.mktemp(f"{request.param}-{precision}")
    build_model(tiny.checkpoint, folder, BuildOptions(target=request.param, precision=precision))
    return request.param, folder


def agreeing(rows: list[list[int]], provider: str) -> list[list[int]]:
    return [row[:FP16_AGREEMENT] for row in rows] if PRECISION[provider] == "fp16" else rows


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_greedy_on_the_gpu_matches_the_cpu(provider_model, mode):
    provider, folder = provider_model
    max_seq_len = 128 if mode == "static" else None
    cpu = load_model(folder, max_seq_len=max_seq_len)
    gpu = load_model(folder, provider, max_seq_len=max_seq_len)
    expected = agreeing([generate_ids(cpu, [p], GREEDY)[0] for p in PROMPTS], provider)
    alone = [generate_ids(gpu, [p], GREEDY)[0] for p in PROMPTS]
    assert [first_difference(a, b) for a, b in zip(expected, agreeing(alone, provider))] == [None] * len(PROMPTS)
    assert agreeing(generate_ids(gpu, PROMPTS, GREEDY), provider) == agreeing(alone, provider)


def test_sampling_on_the_gpu_matches_the_cpu(provider_model):
    provider, folder = provider_model
    options = GenerateOptions(max_new_tokens=40, ignore_eos=True,
                              sampling=SamplingParams(temperature=1.0, top_k=40, seed=3))
    cpu = generate_ids(load_model(folder, max_seq_len=64), PROMPTS[:2], options)
    gpu = generate_ids(load_model(folder, provider, max_seq_len=64), PROMPTS[:2], options)
    assert agreeing(gpu, provider) == agreeing(cpu, provider)


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


@pytest.mark.parametrize("xqa", [None, "1"])
def test_one_kv_head_per_query_decodes_like_the_cpu_on_cuda(tmp_path, monkeypatch, xqa):
    """With a KV head per query head, the cuda provider steers GroupQueryAttention away from its XQA kernel
    (Provider.one_kv_head_per_query_environment); both kernels must decode what the CPU does. Head size 64:
    one XQA takes."""
    if not AVAILABLE["cuda"]:
        pytest.skip("cuda is not installed")
    if xqa is not None:
        monkeypatch.setenv("ORT_ENABLE_XQA", xqa)
    spec = tiny_spec(hidden_size=256, num_heads=4, num_kv_heads=4, intermediate_size=512)
    build_model(random_checkpoint(spec, seed=2), tmp_path, BuildOptions(target="cuda", precision="fp16"))
    expected = [generate_ids(load_model(tmp_path, max_seq_len=128), [p], GREEDY)[0] for p in PROMPTS]
    for graph in (False, True):
        gpu = load_model(tmp_path, "cuda", max_seq_len=128, graph=graph)
        got = [generate_ids(gpu, [p], GREEDY)[0] for p in PROMPTS]
        assert [first_difference(a, b) for a, b in zip(agreeing(expected, "cuda"), agreeing(got, "cuda"))] \
            == [None] * len(PROMPTS)


def engine_outputs(model, prompts, slots: int, arrive_every: int = 2) -> list[list[int]]:
    """Greedy tokens of `prompts` on a continuous-batching engine, one arriving every few steps."""
    from llama_ort.runtime.engine import Engine, EngineConfig
    from llama_ort.tokenizer import Tokenizer

    engine = Engine(model, Tokenizer.from_folder(model.folder), EngineConfig(slots=slots, prefill_chunk=8))
    rows, tokens, waiting, step = [], {}, list(prompts), 0
    while waiting or engine.has_work:
        if waiting and step % arrive_every == 0 and (row := engine.add(waiting[0], GREEDY)) is not None:
            rows.append(row)
            waiting.pop(0)
        for row, token in engine.step().items():
            tokens.setdefault(row, []).append(token.id)
        step += 1
    return [tokens[row] for row in rows]


def test_the_engine_replays_cuda_graphs_at_two_slot_counts(provider_model):
    """The serving engine captures one graph per batch bucket (2 and 4 here as requests come and go) and
    replays them: the same tokens as the engine without graphs, and as each request alone."""
    provider, folder = provider_model
    if provider != "cuda":
        pytest.skip("CUDA graphs are a cuda feature")
    plain = load_model(folder, provider, max_seq_len=128)
    graphed = load_model(folder, provider, max_seq_len=128, graph=True)
    expected = engine_outputs(plain, PROMPTS, slots=4)
    assert engine_outputs(graphed, PROMPTS, slots=4) == expected
    assert graphed.graphs_taken >= 2  # buckets of 2 and 4 rows at least
    assert [engine_outputs(plain, [p], slots=4)[0] for p in PROMPTS] == expected
