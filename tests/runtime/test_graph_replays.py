"""Decode steps stay right when onnxruntime runs a step more than once with the same bindings.

With CUDA graphs, the first run under a new graph id is repeated inside that one `run_with_iobinding` call
(warm-up runs, then the capture): onnxruntime's InferenceSession::Run "starts another run for necessary memory
allocation or graph capture". Emulated here on the CPU, so the runtime's --cuda-graph path is checked without a
GPU: a bound input that aliases an output would advance on every repeat.
"""

import dataclasses

import onnxruntime as ort

from llama_ort.runtime.generate import GenerateOptions, generate_ids
from llama_ort.runtime.sampling import SamplingParams
from llama_ort.runtime.session import load_model
from llama_ort_testing.tiny_models import PROMPTS, hf_greedy

RUNS_BEFORE_CAPTURE = 2  # onnxruntime's min_num_runs_before_cuda_graph_capture_ for the CUDA provider


class RepeatingSession:
    """Runs a step 1 + RUNS_BEFORE_CAPTURE times the first time it meets a graph id, as onnxruntime does."""

    def __init__(self, session: ort.InferenceSession):
        self.session = session
        self.seen: set[str] = set()
        self.repeats = 0

    def __getattr__(self, name):
        return getattr(self.session, name)

    def run_with_iobinding(self, binding, options=None):
        graph_id = options.get_run_config_entry("gpu_graph_id") if options else "-1"
        runs = 1
        if graph_id != "-1" and graph_id not in self.seen:
            self.seen.add(graph_id)
            runs += RUNS_BEFORE_CAPTURE
            self.repeats += RUNS_BEFORE_CAPTURE
        for _ in range(runs):
            self.session.run_with_iobinding(binding, options)


def test_greedy_decode_with_graph_ids_survives_repeated_first_runs(tiny):
    model = load_model(tiny.folder, max_seq_len=96)
    session = RepeatingSession(model.session)
    graphed = dataclasses.replace(model, session=session, graph=True)
    options = GenerateOptions(max_new_tokens=24, ignore_eos=True)
    for prompt in PROMPTS[:3]:
        assert generate_ids(graphed, [prompt], options) == [hf_greedy(tiny, prompt, 24, stop_at_eos=False)]
    assert session.repeats == 3 * 2 * RUNS_BEFORE_CAPTURE  # each generation's two bindings, each repeated


def test_sampled_decode_with_graph_ids_survives_repeated_first_runs(tiny):
    """Sampling writes the chosen ids into the buffer the next (possibly repeated) step reads."""
    model = load_model(tiny.folder, max_seq_len=96)
    graphed = dataclasses.replace(model, session=RepeatingSession(model.session), graph=True)
    options = GenerateOptions(max_new_tokens=24, ignore_eos=True,
                              sampling=SamplingParams(temperature=0.9, top_k=20, seed=5))
    assert generate_ids(graphed, PROMPTS[:2], options) == generate_ids(model, PROMPTS[:2], options)
