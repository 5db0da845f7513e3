"""`serve`: load a model folder (the embedded default's, built the first time, when none is given) and run the
server with uvicorn until interrupted. `llama-ort serve` and the seed script's --interactive and
--expose_locally call it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import webbrowser
from pathlib import Path

import uvicorn

from ..errors import fail
from ..pipeline import embedded_model_folder
from .app import create_app
from .runtime_engine import MAX_SEQ_LEN, PREFILL_CHUNK, load_engine
from .scheduler import MAX_BATCH_SIZE, MAX_WAITING

log = logging.getLogger("llama_ort.serve")

LOCAL_HOST = "127.0.0.1"  # this machine only
ALL_HOSTS = "0.0.0.0"  # every interface: the local network too


def serve(model_dir: str | Path | None = None, host: str = LOCAL_HOST, port: int = 8000,
          open_browser: bool = False, *, provider: str = "cpu", device_id: int = 0, precision: str | None = None,
          max_seq_len: int = MAX_SEQ_LEN, max_batch_size: int = MAX_BATCH_SIZE, max_waiting: int = MAX_WAITING,
          max_body_bytes: int | None = None, prefill_chunk: int = PREFILL_CHUNK, cuda_graph: bool = False,
          batch_invariant: bool = True) -> None:
    """Serve `model_dir` (None: the embedded default model, built in `precision`) on host:port until interrupted.

    host 127.0.0.1 serves this machine only, 0.0.0.0 the local network too. open_browser opens the chat
    page once the server listens. A row holds at most max_seq_len tokens, prompt included; up to
    max_batch_size requests decode together (the KV cache's slots, allocated at start) and max_waiting more wait
    for room. A request body over max_body_bytes gets 413 (None: room for a prompt of max_seq_len tokens).
    Prompts run in chunks of prefill_chunk tokens between decode steps; cuda_graph replays each decode step's
    batch size as a CUDA graph. batch_invariant off lets a lone int4 request on the CPU decode faster, at the
    cost of answers that may change with the load (docs/serve.md).
    """
    check_listenable(host, port)
    folder = Path(model_dir) if model_dir is not None else embedded_model_folder(provider, precision)
    engine = load_engine(folder, provider, max_seq_len, device_id, prefill_chunk=prefill_chunk, graph=cuda_graph,
                         batch_invariant=batch_invariant)
    app = create_app(engine, max_batch_size, max_waiting, max_body_bytes)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
    for url in page_urls(host, port):
        log.info("chat page: %s", url)
        log.info("OpenAI API: %sv1", url)
    if open_browser:
        threading.Thread(target=open_when_started, args=(server, page_urls(host, port)[0]), daemon=True).start()
    server.run()


def check_listenable(host: str, port: int) -> None:
    """Fail now, in one line, where uvicorn would fail only after the model has loaded."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise fail("--host", f"{host!r} is not an address to listen on ({e.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing port is free
        try:
            probe.bind(address)
        except OSError as e:
            raise fail(f"{host}:{port}", f"cannot listen there ({e.strerror}): choose another --port or --host, "
                                         "or stop what holds it") from None


def page_urls(host: str, port: int) -> list[str]:
    """Where clients reach the server: this machine first, then (bound to every interface) the network."""
    if host != ALL_HOSTS:
        return [f"http://{host}:{port}/"]
    return [f"http://{LOCAL_HOST}:{port}/", f"http://{network_address()}:{port}/"]


def network_address() -> str:
    """This machine's address on the local network: the source address of a route out (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return socket.gethostname()


def open_when_started(server: uvicorn.Server, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    if server.started:
        webbrowser.open(url)
