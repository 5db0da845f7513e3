"""Many clients at once: batched requests give what they give alone (fp32 and int4), a client that
goes away stops its generation, only a full batch and queue answer 429, and neither a client that does not read
nor a prompt of megabytes holds anybody else up."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from itertools import pairwise

import httpx
import openai
import pytest
from llama_ort_testing.held_engine import HeldEngine
from llama_ort_testing.servers import MAX_SEQ_LEN, RunningServer

from llama_ort.serve import create_app

# Questions whose greedy answers differ in length.
QUESTIONS = ["What is the capital of France?", "Name three colors.", "Write a haiku about rain.", "What is 2+2?",
             "Who wrote Hamlet?", "Say hello in Spanish.", "What is the largest planet?", "Describe a cat."]
CLIENTS = 32
MAX_TOKENS = 24
# A prompt the model goes on counting from for hundreds of tokens: cutting it short is the only way it ends soon.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"


async def ask(client: openai.AsyncOpenAI, model: str, question: str) -> tuple[str, str, int]:
    """(streamed answer, finish_reason, completion tokens) for a greedy chat request."""
    stream = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                                  temperature=0, max_tokens=MAX_TOKENS, stream=True,
                                                  stream_options={"include_usage": True})
    text, finish_reason, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish_reason = chunk.choices[0].finish_reason or finish_reason
        usage = chunk.usage or usage
    return text, finish_reason, usage.completion_tokens


def answers(server, questions: list[str], at_once: bool) -> list[tuple[str, str, int]]:
    """Each question's answer, asked one after another or all at once."""
    async def run():
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=300)
        if at_once:
            replies = await asyncio.gather(*[ask(client, server.model, q) for q in questions])
        else:
            replies = [await ask(client, server.model, q) for q in questions]
        await client.close()
        return list(replies)

    return asyncio.run(run())


def is_whole(answer: tuple[str, str, int]) -> bool:
    """A stream that ran to its end: text, a finish reason, and usage that agrees with it."""
    text, finish_reason, completion_tokens = answer
    return bool(text) and 0 < completion_tokens <= MAX_TOKENS and \
        finish_reason == ("length" if completion_tokens == MAX_TOKENS else "stop")


def test_fp32_answers_in_a_batch_are_the_answers_alone(fp32_server):
    """In fp32 a row's logits do not depend on the rows beside it, so greedy answers must not either."""
    alone = answers(fp32_server, QUESTIONS, at_once=False)
    assert all(map(is_whole, alone))
    assert answers(fp32_server, QUESTIONS * 2, at_once=True) == alone * 2


def test_int4_answers_of_32_clients_at_once_are_the_answers_alone(server):
    """The CPU's MatMulNBits computes one row on another path than several; the engine never decodes one row,
    so an int4 row's logits do not depend on the rows beside it either (docs/serve.md, batch invariance)."""
    alone = answers(server, QUESTIONS, at_once=False)
    assert all(map(is_whole, alone))
    assert answers(server, QUESTIONS * (CLIENTS // len(QUESTIONS)), at_once=True) == alone * (CLIENTS // len(QUESTIONS))


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


def test_only_a_full_batch_and_a_full_queue_answer_429():
    """Room for 2 rows and 3 waiting: of 12 requests at once, exactly 5 are taken and 7 refused."""
    engine = HeldEngine()  # nothing finishes until released: the batch and the queue hold what the test put there
    server = RunningServer(create_app(engine, max_batch_size=2, max_waiting=3))
    try:
        replies = asyncio.run(complete_at_once_while_held(server, engine, requests=12))
    finally:
        engine.release.set()
        server.stop()
    assert Counter(reply.status_code for reply in replies) == {200: 5, 429: 7}
    for refused in [reply for reply in replies if reply.status_code == 429]:
        assert refused.headers["retry-after"] == "1" and refused.json()["error"]["code"] == "queue_full"


def test_a_provider_error_fails_its_step_with_500_and_the_server_goes_on():
    engine = HeldEngine()
    engine.release.set()
    server = RunningServer(create_app(engine, max_batch_size=2, max_waiting=3))
    body = {"model": "held", "prompt": "hi", "max_tokens": 3}
    try:
        engine.fail_next_step.set()
        failed = httpx.post(f"{server.url}/v1/completions", json=body, timeout=30)
        after = httpx.post(f"{server.url}/v1/completions", json=body, timeout=30)
        assert server.load() == {"status": "ok", "model": "held", "running": 0, "waiting": 0}
    finally:
        server.stop()
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
    assert after.status_code == 200 and after.json()["choices"][0]["text"] == "xxx"


async def complete_at_once_while_held(server, engine: HeldEngine, requests: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async def complete() -> httpx.Response:
            return await client.post("/v1/completions", json={"model": server.model, "prompt": "hi", "max_tokens": 2})

        async def load() -> tuple[int, int]:
            health = (await client.get("/health")).json()
            return health["running"], health["waiting"]

        async def until(is_reached) -> None:
            async def poll():
                while not await is_reached():
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(poll(), timeout=30)

        # The first request starts and its step is held: the others arrive while the scheduler thread is busy in
        # a step, as they do while a real model decodes, and so wait in the queue even while the batch has room.
        first = asyncio.create_task(complete())
        others: list[asyncio.Task] = []

        async def first_is_running() -> bool:
            return (await load())[0] == 1

        async def each_answered_or_queued() -> bool:
            return sum(task.done() for task in others) + (await load())[1] == len(others)

        await until(first_is_running)
        others += [asyncio.create_task(complete()) for _ in range(requests - 1)]
        await until(each_answered_or_queued)
        assert await load() == (1, 4)  # (running, waiting)
        engine.release.set()
        return await asyncio.gather(first, *others)


def test_a_prompt_of_megabytes_holds_up_neither_a_running_stream_nor_health(make_server):
    """Finding that 3 MiB of text is too long a prompt takes seconds of tokenizing, all of them off the event loop:
    a running stream keeps its pace and /health answers at once meanwhile."""
    roomy = make_server(max_body_bytes=8 * 2**20)
    prompt = "All work and no play makes Jack a dull boy. " * (3 * 2**20 // 44)
    reply, stream_s, health_s, start_s = asyncio.run(long_prompt_beside_a_stream(roomy, prompt))
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "context_length_exceeded"
    gaps_s = [b - a for a, b in pairwise(stream_s) if b > start_s]
    assert gaps_s and max(gaps_s) < 1.0, f"the stream stalled for {max(gaps_s):.1f} s"
    assert max(health_s) < 1.0, f"/health took {max(health_s):.1f} s"


async def long_prompt_beside_a_stream(server, prompt: str) -> tuple[httpx.Response, list[float], list[float], float]:
    """(the long prompt's reply, when the stream's events came, how long each /health took, when the long prompt
    was sent), all in seconds of time.monotonic."""
    stream_s, health_s = [], []
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        async def read_stream():
            request = counting_request(server, stream=True) | {"max_tokens": MAX_SEQ_LEN}  # cut to the room left
            async with client.stream("POST", "/v1/completions", json=request) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        stream_s.append(time.monotonic())

        async def poll_health():
            while True:
                start_s = time.monotonic()
                await client.get("/health")
                health_s.append(time.monotonic() - start_s)
                await asyncio.sleep(0.05)

        reader = asyncio.create_task(read_stream())
        while not stream_s:
            await asyncio.sleep(0.01)
        poller = asyncio.create_task(poll_health())
        start_s = time.monotonic()
        reply = await client.post("/v1/completions", json={"model": server.model, "prompt": prompt})
        await asyncio.sleep(0.5)  # tokens held up by a stall would arrive now, after a gap
        poller.cancel()
        reader.cancel()  # closes the stream: the server cancels its generation
        await asyncio.gather(poller, reader, return_exceptions=True)
    return reply, stream_s, health_s, start_s


def test_a_client_that_does_not_read_holds_nobody_up(server):
    """One client sends a streamed request and reads nothing until every other request is done."""
    body = json.dumps(counting_request(server, stream=True) | {"max_tokens": 64}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as silent:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        silent.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
                       b"Connection: close\r\nContent-Length: %d\r\n\r\n%b" % (host.encode(), len(body), body))
        assert all(map(is_whole, answers(server, QUESTIONS[:4], at_once=True)))
        server.wait_until_idle(timeout_s=60)  # the silent client's generation went on to its end too
        silent.settimeout(10)
        received = b"".join(iter(lambda: silent.recv(65536), b""))  # to the end: the request said Connection: close
    assert received.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in received
