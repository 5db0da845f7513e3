"""What crosses between host and device on each step, counted by wrapping onnxruntime's Python API.

A greedy decode step must run the session once and download next_token [batch] once: no logits, no
uploads, no new OrtValues, no new bindings or rebinding (except where input_ids and next_token differ in type,
as in the webgpu model: there the ids go back up and are bound again).
"""

import dataclasses
from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest

from llama_ort_testing.tiny_models import PROMPTS
from llama_ort.graph.llama import BuildOptions, build_model
from llama_ort.runtime.generate import generate_step
from llama_ort.runtime.sampling import Sampler, SamplingParams
from llama_ort.runtime.session import load_model

CALLS = {
    ort.OrtValue: ["ortvalue_from_shape_and_type", "ortvalue_from_numpy", "ortvalue_from_numpy_with_onnx_type",
                   "numpy", "update_inplace"],
    ort.IOBinding: ["bind_cpu_input", "bind_input", "bind_ortvalue_input", "bind_output", "bind_ortvalue_output",
                    "copy_outputs_to_cpu", "get_outputs", "clear_binding_inputs", "clear_binding_outputs"],
    ort.InferenceSession: ["run", "run_with_iobinding", "io_binding", "create_ortvalue_from_shape_and_type"],
}
CLASS_METHODS = {"ortvalue_from_shape_and_type", "ortvalue_from_numpy", "ortvalue_from_numpy_with_onnx_type"}


@pytest.fixture
def calls(monkeypatch):
    """Every call to the API above, as (name, detail); `detail` is the shape and dtype of downloaded arrays."""
    log = []
    for cls, names in CALLS.items():
        for name in names:
            original = getattr(cls, name)

            def wrapper(*args, _name=name, _original=original, **kwargs):
                result = _original(*args, **kwargs)
                detail = (result.shape, result.dtype) if _name == "numpy" else None
                log.append((_name, detail))
                return result

            monkeypatch.setattr(cls, name, classmethod(lambda cls, *a, _w=wrapper, **k: _w(*a, **k))
                                if name in CLASS_METHODS else wrapper)
    return log


def run_steps(model, prompts, params, log, n=12, padding=512):
    """Calls made while producing each token row after the first (the prompt's)."""
    steps = generate_step(model, prompts, n, Sampler(params), padding)
    next(steps)
    per_step = []
    for _ in range(n - 1):
        start = len(log)
        next(steps)
        per_step.append(Counter(log[start:]))
    return per_step


@pytest.mark.parametrize("mode", ["static", "dynamic"])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_greedy_step_downloads_only_the_token_ids(tiny, calls, mode, batch):
    model = load_model(tiny.folder, max_seq_len=64 if mode == "static" else None)
    for counts in run_steps(model, PROMPTS[:batch], SamplingParams(), calls):
        assert counts == Counter({("run_with_iobinding", None): 1,
                                  ("numpy", ((batch,), np.dtype(np.int64))): 1})


def test_a_greedy_step_under_cuda_graph_ids_uploads_nothing_either(tiny, calls):
    """A graphed step may be run several times with the same bindings (test_graph_replays.py), so input_ids must
    not alias the next_token it writes: the ids take turns between two buffers instead of going through the host."""
    model = dataclasses.replace(load_model(tiny.folder, max_seq_len=64), graph=True)
    for counts in run_steps(model, PROMPTS[:2], SamplingParams(), calls):
        assert counts == Counter({("run_with_iobinding", None): 1,
                                  ("numpy", ((2,), np.dtype(np.int64))): 1})


def test_a_sampled_step_downloads_the_logits_and_uploads_the_ids_into_the_same_buffer(tiny, calls):
    model = load_model(tiny.folder, max_seq_len=64)
    params = SamplingParams(temperature=0.8, top_k=20, seed=0)
    for counts in run_steps(model, PROMPTS[:2], params, calls):
        assert counts == Counter({("run_with_iobinding", None): 1,
                                  ("numpy", ((2, tiny.spec.vocab_size), np.dtype(np.float32))): 1,
                                  ("update_inplace", None): 1})


def test_only_a_step_that_grows_the_dynamic_cache_allocates(tiny, calls):
    model = load_model(tiny.folder)
    per_step = run_steps(model, [PROMPTS[0]], SamplingParams(), calls, n=30, padding=8)
    growing = [i for i, counts in enumerate(per_step) if counts[("ortvalue_from_shape_and_type", None)]]
    # The prompt (5 tokens) starts an 8-long cache. The cache grows before a step that leaves 8, 16, 24 or 32
    # positions filled (the mask marks the position after them): steps 2, 10, 18, 26 after the first token.
    assert growing == [2, 10, 18, 26]
    layers = tiny.spec.num_layers
    for i in growing:  # one new buffer per key, value and mask; nothing goes through the host
        counts = per_step[i]
        assert counts[("ortvalue_from_shape_and_type", None)] == 2 * layers + 2
        assert counts[("run_with_iobinding", None)] == 1 + 2 * layers + 1  # the step, then a Pad per buffer
        assert not any(name in ("numpy", "update_inplace") and detail != ((1,), np.dtype(np.int64))
                       for name, detail in counts)


def test_with_int32_input_ids_a_greedy_step_sends_the_ids_back_up(tiny, calls, tmp_path):
    """The webgpu model takes int32 ids and masks while next_token is int64, so input_ids can't be next_token
    itself: the ids go down and back up (a few bytes a row), and still nothing is allocated. They are bound again
    each step: onnxruntime copies a host input to the device when it is bound, not when the session runs."""
    build_model(tiny.checkpoint, tmp_path, BuildOptions(target="webgpu", precision="fp32"))
    model = load_model(tmp_path, max_seq_len=64)
    assert model.index_dtype == np.int32 and model.next_token_dtype == np.int64
    for counts in run_steps(model, PROMPTS[:3], SamplingParams(), calls):
        assert counts == Counter({("run_with_iobinding", None): 1,
                                  ("numpy", ((3,), np.dtype(np.int64))): 1,
                                  ("update_inplace", None): 1, ("bind_ortvalue_input", None): 1})
