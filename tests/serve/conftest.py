"""The real model behind a real server: the embedded SmolLM2-135M-Instruct built once per session (int4, the
fastest on the CPU; fp32 for the tests that need a batch to compute exactly what one row does) and served by
uvicorn on 127.0.0.1 in a thread, for clients that speak HTTP."""

from __future__ import annotations

import pytest

from llama_ort.graph.llama import BuildOptions
from llama_ort.quant.options import QuantOptions
from llama_ort.pipeline import default_output_name, optimize
from llama_ort.serve import create_app, load_engine
from llama_ort_testing.servers import MAX_SEQ_LEN, RunningServer


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory):
    """Where `llama-ort serve --precision int4` looks for its default model, under a folder of this session.

    Symmetric blocks: MatMulNBits runs them about 25 times faster on the CPU than blocks with float zero points.
    """
    root = tmp_path_factory.mktemp("serve")
    options = BuildOptions(precision="int4", quant=QuantOptions(symmetric=True))
    folder = root / "models" / default_output_name(None, options)
    optimize(None, folder, options, root / "cache", show_progress=False, verify=False)
    return folder


@pytest.fixture(scope="session")
def engine(model_folder):
    return load_engine(model_folder, "cpu", max_seq_len=MAX_SEQ_LEN)


@pytest.fixture(scope="session")
def server(engine):
    running = RunningServer(create_app(engine, max_batch_size=32, max_waiting=64))
    yield running
    running.stop()


@pytest.fixture
def make_server(engine):
    """Servers with other limits, on the same model; stopped after the test."""
    started = []

    def make(**limits) -> RunningServer:
        started.append(RunningServer(create_app(engine, **limits)))
        return started[-1]

    yield make
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def fp32_server(build_smollm2):
    running = RunningServer(create_app(load_engine(build_smollm2(precision="fp32"), "cpu", max_seq_len=MAX_SEQ_LEN),
                                       max_batch_size=32, max_waiting=64))
    yield running
    running.stop()
