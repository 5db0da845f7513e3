"""Getting weights, against local HTTP servers on 127.0.0.1: Meta's download flow from a small fake release
(with Range support), and the Hugging Face path from a fake Hub."""

from __future__ import annotations

import hashlib
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from llama_ort.checkpoint.download import download_hf, download_llama2, llama2_files
from llama_ort.cli import download as download_cli
from llama_ort.cli import main
from llama_ort.errors import LlamaOrtError
from llama_ort.locations import checkpoints_dir

SIGNATURE = "Policy=abc&Signature=def&Key-Pair-Id=K1"  # what follows the "*" in Meta's URLs
SHARD = "llama-2-7b-chat/consolidated.00.pth"


class Release(ThreadingHTTPServer):
    """Serves the files under `root`; records each request as (path, query, Range header, body bytes sent)."""

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), ReleaseHandler)
        self.root = root
        self.requests: list[tuple[str, str, str | None, int]] = []
        self.status: int | None = None  # answer every request with this error instead
        self.cut: tuple[str, int] | None = None  # (path, n): send n bytes of that file once, then hang up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/*?{SIGNATURE}"


class ReleaseHandler(BaseHTTPRequestHandler):
    server: Release

    def do_GET(self):
        url = urlsplit(self.path)
        path = self.server.root / url.path.lstrip("/")
        byte_range = self.headers.get("Range")
        start = int(byte_range.removeprefix("bytes=").removesuffix("-")) if byte_range else 0
        if self.server.status or not path.is_file():
            return self.answer(url, byte_range, self.server.status or 404)
        data = path.read_bytes()
        if start >= len(data):
            return self.answer(url, byte_range, 416)
        body = data[start:]
        if self.server.cut and self.server.cut[0] == url.path:
            body, self.server.cut = body[:self.server.cut[1]], None
            self.close_connection = True
        self.server.requests.append((url.path, url.query, byte_range, len(body)))  # before the client can go on
        self.send_response(206 if byte_range else 200)
        if byte_range:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(body)

    def answer(self, url, byte_range, status: int):
        self.server.requests.append((url.path, url.query, byte_range, 0))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def release(tmp_path):
    """A fake Llama-2-7b-chat release: random bytes (seeded) for the weights, checklists with their true MD5s."""
    rng = random.Random(0)
    root = tmp_path / "release"
    files = {
        "LICENSE": b"LLAMA 2 COMMUNITY LICENSE AGREEMENT\n",
        "USE_POLICY.md": b"# Llama 2 Acceptable Use Policy\n",
        "tokenizer.model": rng.randbytes(5_000),
        "llama-2-7b-chat/params.json": b'{"dim": 64, "n_layers": 2, "n_heads": 4, "norm_eps": 1e-05, "vocab_size": -1}',
        SHARD: rng.randbytes(300_000),
    }
    files["tokenizer_checklist.chk"] = f"{md5(files['tokenizer.model'])}  tokenizer.model\n".encode()
    files["llama-2-7b-chat/checklist.chk"] = "".join(
        f"{md5(files[name])}  {Path(name).name}\n" for name in ("llama-2-7b-chat/params.json", SHARD)).encode()
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    server = Release(root)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_downloads_the_release_in_meta_layout(release, tmp_path):
    dest = tmp_path / "llama-2"
    folder = download_llama2(release.url, "7b-chat", dest, show_progress=False)
    assert folder == dest / "llama-2-7b-chat"
    served = sorted(p.relative_to(release.root) for p in release.root.rglob("*") if p.is_file())
    assert sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file()) == served
    for name in served:
        assert (dest / name).read_bytes() == (release.root / name).read_bytes()
    assert {query for _, query, _, _ in release.requests} == {SIGNATURE}  # the signature goes with every file


def test_a_second_run_fetches_nothing(release, tmp_path):
    download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)
    release.requests.clear()
    download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)
    assert release.requests == []


def test_corrupt_file_fails_its_checksum_and_is_not_kept(release, tmp_path):
    (release.root / SHARD).write_bytes(b"not the weights")
    with pytest.raises(LlamaOrtError, match=r"consolidated\.00\.pth: MD5 .* does not match"):
        download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)
    assert not (tmp_path / SHARD).exists() and not (tmp_path / f"{SHARD}.part").exists()


def test_partial_download_resumes_with_a_range_request(release, tmp_path):
    data = (release.root / SHARD).read_bytes()
    half = len(data) // 2
    (tmp_path / SHARD).parent.mkdir(parents=True)
    (tmp_path / f"{SHARD}.part").write_bytes(data[:half])
    download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)
    assert [(r, sent) for path, _, r, sent in release.requests if path == f"/{SHARD}"] == [
        (f"bytes={half}-", len(data) - half)]
    assert (tmp_path / SHARD).read_bytes() == data


def test_interrupted_download_resumes_on_the_next_run(release, tmp_path):
    release.cut = (f"/{SHARD}", 100_000)
    with pytest.raises(LlamaOrtError, match=r"consolidated\.00\.pth: download .* run the command again to resume"):
        download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)
    assert not (tmp_path / SHARD).exists() and (tmp_path / f"{SHARD}.part").stat().st_size == 100_000
    release.requests.clear()
    download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)
    assert [r for path, _, r, _ in release.requests if path == f"/{SHARD}"] == ["bytes=100000-"]
    assert (tmp_path / SHARD).read_bytes() == (release.root / SHARD).read_bytes()


def test_expired_url_says_to_request_a_new_one(release, tmp_path):
    release.status = 403
    with pytest.raises(LlamaOrtError, match="expire 24 hours"):
        download_llama2(release.url, "7b-chat", tmp_path, show_progress=False)


def test_url_must_have_the_star(tmp_path):
    with pytest.raises(LlamaOrtError, match="--meta-url: expected the URL from Meta's e-mail"):
        download_llama2("https://download.llamameta.net/?Signature=x", "7b", tmp_path)


def test_release_files_per_model():
    names = [name for name, _ in llama2_files("70b-chat")]
    assert names[:4] == ["LICENSE", "USE_POLICY.md", "tokenizer_checklist.chk", "tokenizer.model"]
    assert names[-8:] == [f"llama-2-70b-chat/consolidated.{i:02d}.pth" for i in range(8)]
    assert [name for name, _ in llama2_files("13b")][-2:] == ["llama-2-13b/consolidated.00.pth",
                                                              "llama-2-13b/consolidated.01.pth"]
    with pytest.raises(LlamaOrtError, match="--model: unknown Llama 2 model '7B'"):
        llama2_files("7B")


def test_cli_asks_for_the_url_when_none_is_given(release, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt: f" {release.url}\n")
    assert main(["download", "--dest", str(tmp_path)]) == 0
    assert (tmp_path / SHARD).exists()  # 7b-chat by default
    assert str(tmp_path / "llama-2-7b-chat") in capsys.readouterr().out


def test_cli_hf_arguments(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(download_cli, "download_hf", lambda *args: calls.append(args) or tmp_path)
    assert main(["download", "--hf", "meta-llama/Llama-2-7b-chat-hf", "--revision", "v1"]) == 0
    assert calls == [("meta-llama/Llama-2-7b-chat-hf", checkpoints_dir() / "Llama-2-7b-chat-hf", "v1")]
    assert main(["download", "--hf", "org/model", "--model", "7b"]) == 2
    assert capsys.readouterr().err.startswith("llama-ort: error: --model: ")
    assert main(["download", "--hf", " "]) == 2
    assert capsys.readouterr().err.startswith("llama-ort: error: --hf: is empty")
    assert len(calls) == 1
    with pytest.raises(SystemExit) as exit:  # --meta-url and --hf exclude each other
        main(["download", "--hf", "org/model", "--meta-url", "https://x/*"])
    assert exit.value.code == 2


class FakeHub(ThreadingHTTPServer):
    """The few Hub API routes snapshot_download uses, for one repo "org/llama" holding `files`."""

    commit = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), FakeHubHandler)
        self.files = files
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHubHandler(BaseHTTPRequestHandler):
    server: FakeHub

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        hub = self.server
        hub.requests.append((self.command, self.path, self.headers.get("Authorization")))
        path = urlsplit(self.path).path
        if path.startswith("/api/models/org/llama/revision/"):
            return self.reply(json.dumps({"id": "org/llama", "sha": hub.commit,
                                          "siblings": [{"rfilename": name} for name in hub.files]}).encode())
        if path == f"/api/models/org/llama/tree/{hub.commit}":
            return self.reply(json.dumps([{"type": "file", "path": name, "size": len(data),
                                           "oid": hashlib.sha1(data).hexdigest()}
                                          for name, data in hub.files.items()]).encode())
        name = path.removeprefix(f"/org/llama/resolve/{hub.commit}/")
        if name in hub.files:
            data = hub.files[name]
            return self.reply(data, {"X-Repo-Commit": hub.commit, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'})
        self.reply(b"{}", {"X-Error-Code": "RepoNotFound"}, status=404)

    def reply(self, body: bytes, headers: dict | None = None, status: int = 200):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub(monkeypatch):
    # tests/conftest.py turns the Hub off for the session (HF_HUB_OFFLINE=1); this hub is local, so allow it
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = FakeHub({"config.json": b"{}", "tokenizer.json": b"{}", "model.safetensors": b"weights",
                      "pytorch_model.bin": b"the same weights, pickled", "README.md": b"# llama"})
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_hf_download_takes_config_tokenizer_and_safetensors(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    folder = download_hf("org/llama", tmp_path / "llama", endpoint=hub.url)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["config.json", "model.safetensors",
                                                                       "tokenizer.json"]
    assert {auth for _, _, auth in hub.requests} == {"Bearer hf_test_token"}


def test_hf_repo_without_safetensors_is_refused(hub, tmp_path):
    del hub.files["model.safetensors"]
    with pytest.raises(LlamaOrtError, match="org/llama: has no .safetensors weights"):
        download_hf("org/llama", tmp_path / "llama", endpoint=hub.url)


def test_hf_unknown_repo_is_a_clear_error(hub, tmp_path):
    with pytest.raises(LlamaOrtError, match="org/other: no such model on the Hub"):
        download_hf("org/other", tmp_path / "other", endpoint=hub.url)
