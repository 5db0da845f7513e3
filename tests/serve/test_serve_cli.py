"""`llama-ort serve` as users run it, and the pieces of `serve()` behind --open and --expose_locally."""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from llama_ort.cli import main
from llama_ort.pipeline import embedded_model_folder
from llama_ort.serve import server as serve_module
from llama_ort.serve.body_limit import resolve_max_body_bytes

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_llama_ort_serve_answers_until_interrupted(model_folder):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "llama_ort", "serve", "--model", str(model_folder), "--port", str(port),
               "--max-seq-len", "256", "--max-batch-size", "2", "--max-body-bytes", "2000"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.ConnectError:
                time.sleep(0.2)
        models = httpx.get(f"{url}/v1/models").json()["data"]
        assert [(m["id"], m["max_seq_len"]) for m in models] == [(model_folder.name, 256)]
        reply = httpx.post(f"{url}/v1/completions", timeout=60,
                           json={"model": model_folder.name, "prompt": "Hello", "max_tokens": 3})
        assert reply.json()["usage"]["completion_tokens"] == 3
        too_large = httpx.post(f"{url}/v1/completions", json={"model": model_folder.name, "prompt": "Hi " * 1000})
        assert too_large.status_code == 413 and "limit of 2000 bytes" in too_large.json()["error"]["message"]
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 130, output  # the CLI's code for an interrupt, after a graceful shutdown
    assert f"chat page: http://127.0.0.1:{port}/" in output


def test_the_command_line_defaults_are_the_library_defaults():
    from llama_ort.cli import build_parser
    from llama_ort.serve.runtime_engine import MAX_SEQ_LEN
    from llama_ort.serve.scheduler import MAX_BATCH_SIZE, MAX_WAITING

    args = build_parser().parse_args(["serve"])
    assert (args.max_seq_len, args.max_batch_size, args.max_waiting) == (MAX_SEQ_LEN, MAX_BATCH_SIZE, MAX_WAITING)
    max_body_bytes = inspect.signature(serve_module.serve).parameters["max_body_bytes"].default
    assert args.max_body_bytes is None and max_body_bytes is None  # None: derived from max_seq_len
    assert resolve_max_body_bytes(None, MAX_SEQ_LEN) == 144 * 1024  # as --help says
    assert (args.host, args.port, args.model) == ("127.0.0.1", 8000, None)


def test_a_missing_model_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nothing")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no such model folder" in error


def test_default_model_is_found_where_it_was_built(model_folder):
    models_dir = model_folder.parent
    assert embedded_model_folder("cpu", "int4", models_dir=models_dir, cache_dir=models_dir / "unused") \
        == model_folder
    assert not (models_dir / "unused").exists()


def test_exposed_servers_are_announced_for_this_machine_and_the_network():
    local, network = serve_module.page_urls("0.0.0.0", 8000)
    assert local == "http://127.0.0.1:8000/"
    assert network.startswith("http://") and network.endswith(":8000/") and "0.0.0.0" not in network
    assert serve_module.page_urls("127.0.0.1", 8000) == ["http://127.0.0.1:8000/"]


def test_the_page_opens_once_the_server_listens(server, monkeypatch):
    opened = []
    monkeypatch.setattr(serve_module.webbrowser, "open", opened.append)
    serve_module.open_when_started(server.server, server.url + "/")
    assert opened == [server.url + "/"]


def test_a_port_that_cannot_be_listened_on_is_one_line_and_exit_2_before_loading(tmp_path, capsys, monkeypatch):
    loaded = []
    monkeypatch.setattr(serve_module, "load_engine", lambda *args: loaded.append(args))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        assert main(["serve", "--model", str(tmp_path), "--port", str(busy)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"127.0.0.1:{busy}: cannot listen there" in error
    assert main(["serve", "--model", str(tmp_path), "--host", "no-such-host.invalid"]) == 2
    assert "--host: 'no-such-host.invalid' is not an address" in capsys.readouterr().err
    assert not loaded
    for port in ("0", "65536"):
        with pytest.raises(SystemExit) as exit:
            main(["serve", "--port", port])
        assert exit.value.code == 2 and "a TCP port is 1 to 65535" in capsys.readouterr().err


def test_serve_without_its_packages_says_what_to_install(capsys, monkeypatch):
    for name in [m for m in sys.modules if m.startswith("llama_ort.serve")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)  # an import of it fails as if it were not installed
    assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "serve: needs fastapi" in error and "pip install -e '.[serve]'" in error
