"""Many clients at once: batched requests give what they give alone, a client that goes away stops its
generation, a full queue answers 429, and a client that does not read holds nobody else up."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx
import openai
import pytest

# Questions whose greedy answers differ in length, each asked by four clients at once.
QUESTIONS = ["What is the capital of France?", "Name three colors.", "Write a haiku about rain.", "What is 2+2?",
             "Who wrote Hamlet?", "Say hello in Spanish.", "What is the largest planet?", "Describe a cat."]
CLIENTS = 32
# A prompt the model goes on counting from for hundreds of tokens: cutting it short is the only way it ends soon.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"


async def ask(client: openai.AsyncOpenAI, model: str, question: str) -> tuple[str, str]:
    """(streamed answer, finish_reason) for a greedy chat request."""
    stream = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                                  temperature=0, max_tokens=24, stream=True)
    text, finish_reason = "", None
    async for chunk in stream:
        text += chunk.choices[0].delta.content or ""
        finish_reason = chunk.choices[0].finish_reason or finish_reason
    return text, finish_reason


def test_concurrent_streams_all_complete_and_match_each_request_alone(server):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=300)
        alone = [await ask(client, server.model, q) for q in QUESTIONS]
        together = await asyncio.gather(*[ask(client, server.model, QUESTIONS[i % len(QUESTIONS)])
                                          for i in range(CLIENTS)])
        await client.close()
        return alone, together

    alone, together = asyncio.run(run())
    assert all(text and finish_reason for text, finish_reason in alone)
    assert [answer for answer in together] == [alone[i % len(QUESTIONS)] for i in range(CLIENTS)]
    server.wait_until_idle()


def counting_request(server, stream: bool) -> dict:
    return {"model": server.model, "prompt": COUNTING, "max_tokens": 400, "temperature": 0, "stream": stream}


def test_a_request_that_arrives_later_does_not_wait_for_the_running_ones(server):
    with httpx.stream("POST", f"{server.url}/v1/completions", json=counting_request(server, stream=True),
                      timeout=60) as long:
        lines = long.iter_lines()  # kept: closing it would close the connection
        assert next(line for line in lines if line.startswith("data: {"))
        short = httpx.post(f"{server.url}/v1/completions", timeout=60,
                           json={"model": server.model, "prompt": "Hello", "max_tokens": 3, "temperature": 0})
        assert short.json()["choices"][0]["finish_reason"] == "length"
        assert server.load()["running"] == 1, "the long request ended first: the short one may have waited for it"
    server.wait_until_idle()


def test_closing_a_stream_cancels_its_generation(server):
    with httpx.stream("POST", f"{server.url}/v1/completions", json=counting_request(server, stream=True),
                      timeout=60) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: {"))
        assert server.load()["running"] == 1
    assert server.wait_until_idle(timeout_s=10) < 10  # 400 tokens take much longer


def test_a_client_that_gives_up_waiting_cancels_its_generation(server):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/v1/completions", json=counting_request(server, stream=False), timeout=1.5)
    server.wait_until_idle(timeout_s=10)


def test_a_full_queue_answers_429_and_the_server_recovers(make_server):
    small = make_server(max_batch_size=1, max_waiting=1)
    counting = counting_request(small, stream=True)
    with httpx.Client(base_url=small.url, timeout=60) as first, httpx.Client(base_url=small.url, timeout=60) as second:
        with first.stream("POST", "/v1/completions", json=counting) as running:
            lines = running.iter_lines()  # kept: closing it would close the connection
            assert next(line for line in lines if line.startswith("data: {"))
            with second.stream("POST", "/v1/completions", json=counting):  # returns once the headers are in
                assert small.load() == {"status": "ok", "model": small.model, "running": 1, "waiting": 1}
                refused = httpx.post(f"{small.url}/v1/completions", json={**counting, "stream": False})
                assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
                error = refused.json()["error"]
                assert error["type"] == "rate_limit_error" and error["code"] == "queue_full"
    small.wait_until_idle()
    ok = httpx.post(f"{small.url}/v1/completions", json={"model": small.model, "prompt": "Hi", "max_tokens": 2},
                    timeout=60)
    assert ok.status_code == 200


def test_a_client_that_does_not_read_holds_nobody_up(server):
    """One client sends a streamed request and reads nothing until every other request is done."""
    body = json.dumps(counting_request(server, stream=True) | {"max_tokens": 64}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as silent:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        silent.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
                       b"Connection: close\r\nContent-Length: %d\r\n\r\n%b" % (host.encode(), len(body), body))
        others = asyncio.run(ask_all(server, QUESTIONS[:4]))
        assert all(text for text, _ in others)
        server.wait_until_idle(timeout_s=60)  # the silent client's generation went on to its end too
        silent.settimeout(10)
        received = b"".join(iter(lambda: silent.recv(65536), b""))  # to the end: the request said Connection: close
    assert received.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in received


async def ask_all(server, questions: list[str]) -> list[tuple[str, str]]:
    client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=300)
    answers = await asyncio.gather(*[ask(client, server.model, q) for q in questions])
    await client.close()
    return answers
