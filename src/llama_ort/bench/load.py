"""Load on a real HTTP server: N streaming clients, arriving all at once or one every S seconds, and a chat whose
history grows turn by turn. Measured from the client's side, as a user sees it: time to first token, each
stream's tokens/s, and the aggregate tokens/s of the whole run.

The servers are OpenAI-compatible: llama-ort's own (`llama-ort serve`, started here), and llama.cpp's through
llama-cpp-python's [server] extra on the same GGUF, where it is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np

TOPICS = ["the sea", "a lighthouse", "a robot", "the moon", "a library", "an old clock", "a fox", "the rain",
          "a mountain", "a train", "a garden", "a violin", "a desert", "a city at night", "a river", "a kite"]
START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class LoadPlan:
    clients: int = 16
    interval_s: float = 0.0  # between two clients' arrivals; 0: all at once
    max_tokens: int = 64  # each request's answer, EOS ignored


@dataclass
class Stream:
    """One request as its client saw it (seconds from the run's start)."""

    sent_s: float
    first_token_s: float | None = None
    last_token_s: float | None = None
    tokens: int = 0
    error: str | None = None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.sent_s

    @property
    def tok_s(self) -> float | None:
        """Tokens after the first over the time they took."""
        if self.first_token_s is None or self.tokens < 2 or self.last_token_s == self.first_token_s:
            return None
        return (self.tokens - 1) / (self.last_token_s - self.first_token_s)


@dataclass
class LoadResult:
    server: str
    plan: dict
    aggregate_tok_s: float
    ttft_p50_s: float
    ttft_p99_s: float
    stream_tok_s_mean: float
    errors: int
    streams: list[dict] = field(default_factory=list)


def summarize(server: str, plan: LoadPlan, streams: list[Stream]) -> LoadResult:
    done = [s for s in streams if s.error is None and s.first_token_s is not None]
    if not done:
        raise RuntimeError(f"{server}: no request succeeded ({streams[0].error if streams else 'none sent'})")
    wall = max(s.last_token_s for s in done) - min(s.sent_s for s in streams)
    ttfts = [s.ttft_s for s in done]
    rates = [r for r in (s.tok_s for s in done) if r is not None]
    return LoadResult(server, asdict(plan), sum(s.tokens for s in done) / wall,
                      float(np.percentile(ttfts, 50)), float(np.percentile(ttfts, 99)),
                      float(np.mean(rates)) if rates else 0.0, sum(s.error is not None for s in streams),
                      [asdict(s) for s in streams])


async def stream_completion(client: httpx.AsyncClient, url: str, model: str, prompt: str | list[dict],
                            max_tokens: int, started: float) -> tuple[Stream, str]:
    """One streamed completion, greedy and past EOS: a chat completion of `prompt`'s messages, or a text
    completion of `prompt`'s text (for a model with no chat template). Its timings and its text."""
    stream = Stream(sent_s=time.perf_counter() - started)
    is_chat = isinstance(prompt, list)
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stream": True, "ignore_eos": True,
            "stream_options": {"include_usage": True}, ("messages" if is_chat else "prompt"): prompt}
    text, pieces = [], 0
    try:
        endpoint = "chat/completions" if is_chat else "completions"
        async with client.stream("POST", f"{url}/v1/{endpoint}", json=body) as response:
            if response.status_code != 200:
                stream.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                return stream, ""
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                now = time.perf_counter() - started
                if chunk.get("usage"):
                    stream.tokens = chunk["usage"]["completion_tokens"]
                for choice in chunk.get("choices", []):
                    piece = choice["delta"].get("content") if is_chat else choice.get("text")
                    if piece:
                        text.append(piece)
                        pieces += 1
                        stream.first_token_s = stream.first_token_s or now
                        stream.last_token_s = now
    except httpx.HTTPError as e:
        stream.error = f"{type(e).__name__}: {e}"
    # A server that sends no usage (llama-cpp-python's) is counted by its text chunks, one a token.
    stream.tokens = stream.tokens or pieces
    return stream, "".join(text)


async def run_load(url: str, model: str, plan: LoadPlan, chat: bool = True) -> list[Stream]:
    """plan.clients requests, client i sent at i * interval_s, each a different question (chat messages, or
    plain text where `chat` is off)."""
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=plan.clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def one(i: int) -> Stream:
            await asyncio.sleep(i * plan.interval_s)
            question = f"Write a long story about {TOPICS[i % len(TOPICS)]}, with many details. (request {i})"
            prompt = [{"role": "user", "content": question}] if chat else question
            stream, _ = await stream_completion(client, url, model, prompt, plan.max_tokens, started)
            return stream

        return list(await asyncio.gather(*(one(i) for i in range(plan.clients))))


async def run_chat(url: str, model: str, turns: int, words_per_turn: int, max_tokens: int) -> list[Stream]:
    """One conversation: each turn sends the whole history and a long new message, as a chat client does."""
    started = time.perf_counter()
    messages, streams = [], []
    async with httpx.AsyncClient(timeout=600) as client:
        for turn in range(turns):
            filler = " ".join(TOPICS[(turn + k) % len(TOPICS)].split()[-1] for k in range(words_per_turn))
            messages.append({"role": "user", "content": f"Turn {turn}: remember these words: {filler}. Reply briefly."})
            stream, text = await stream_completion(client, url, model, messages, max_tokens, started)
            streams.append(stream)
            messages.append({"role": "assistant", "content": text})
    return streams


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, path: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the server did not answer {path} within {START_TIMEOUT_S:.0f} s: see {log}")


@contextlib.contextmanager
def running_server(command: list[str], url: str, health_path: str, log: Path, env: dict[str, str] | None = None):
    """A server process for the duration of the block, its output in `log`."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_up(url, process, health_path, log)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def ours_command(folder: Path, port: int, slots: int, max_seq_len: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "llama_ort", "serve", "--model", str(folder), "--port", str(port),
            "--max-batch-size", str(slots), "--max-seq-len", str(max_seq_len), *extra]


def llama_cpp_command(python: str, gguf: Path, port: int, max_seq_len: int, threads: int) -> list[str]:
    """llama-cpp-python's server, run by `python`. It runs one request at a time on one context (it has no
    parallel slots), so its n_ctx is one request's."""
    return [python, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(port),
            "--n_ctx", str(max_seq_len), "--n_threads", str(threads), "--n_batch", "512"]
