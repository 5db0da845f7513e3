"""The real model behind a real server: the embedded SmolLM2-135M-Instruct built once per session (int4, the
fastest on the CPU) and served by uvicorn on 127.0.0.1 in a thread, for clients that speak HTTP."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn

from llama_ort.graph.llama import BuildOptions
from llama_ort.graph.weights import QuantOptions
from llama_ort.pipeline import default_output_name, optimize
from llama_ort.serve import create_app, load_engine

MAX_SEQ_LEN = 512  # small, so that a prompt over the limit is quick to write


class RunningServer:
    """An app served on a free port of 127.0.0.1 until `stop`."""

    def __init__(self, app):
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    @property
    def model(self) -> str:
        return self.app.state.scheduler.engine.name

    def load(self) -> dict:
        """/health: the requests running and waiting."""
        return httpx.get(f"{self.url}/health").json()

    def wait_until_idle(self, timeout_s: float = 10.0) -> float:
        """Seconds until nothing runs or waits; fails after timeout_s."""
        start = time.monotonic()
        while (load := self.load())["running"] or load["waiting"]:
            assert time.monotonic() - start < timeout_s, f"still busy after {timeout_s} s: {load}"
            time.sleep(0.05)
        return time.monotonic() - start

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


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
