"""A real server for tests that speak HTTP: uvicorn on a free port of 127.0.0.1, in a thread."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn

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
