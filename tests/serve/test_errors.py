"""Bad requests get a 4xx with the OpenAI error body, and the server goes on serving."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time

import httpx
import openai
import pytest
from llama_ort_testing.servers import MAX_SEQ_LEN

from llama_ort.serve.body_limit import resolve_max_body_bytes

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello"}]


def chat_body(server, **fields) -> dict:
    return {"model": server.model, "messages": HELLO, "max_tokens": 2, **fields}


# (what is wrong, path, body maker -> bytes or dict, status, code, param)
BAD_REQUESTS = [
    ("malformed JSON", CHAT, lambda s: b'{"model": "x", "messages": [', 400, "invalid_json", None),
    ("an empty body", CHAT, lambda s: b"", 400, "invalid_json", None),
    *[(f"{constant} as a number", CHAT, lambda s, c=constant: b'{"model": "' + s.model.encode() + b'", "messages": '
       b'[{"role": "user", "content": "hi"}], "repetition_penalty": ' + c + b"}", 400, "invalid_json", None)
      for constant in (b"NaN", b"Infinity", b"-Infinity")],
    ("invalid UTF-8", CHAT, lambda s: b'{"model": "' + s.model.encode() + b'", "messages": [{"role": "user", '
                                      b'"content": "caf\xe9 \xff"}]}', 400, "invalid_encoding", None),
    ("a lone surrogate", CHAT, lambda s: b'{"model": "' + s.model.encode() + b'", "messages": [{"role": "user", '
                                         b'"content": "\\ud800"}]}', 400, "invalid_encoding", None),
    ("an unknown model", CHAT, lambda s: chat_body(s, model="gpt-17"), 404, "model_not_found", "model"),
    ("a negative max_tokens", CHAT, lambda s: chat_body(s, max_tokens=-5), 400, "greater_than_equal", "max_tokens"),
    ("a temperature above 2", CHAT, lambda s: chat_body(s, temperature=2.5), 400, "less_than_equal", "temperature"),
    ("no messages", CHAT, lambda s: chat_body(s, messages=[]), 400, "too_short", "messages"),
    ("an unknown role", CHAT, lambda s: chat_body(s, messages=[{"role": "wizard", "content": "hi"}]), 400,
     "literal_error", "messages[0].role"),
    ("five stop strings", CHAT, lambda s: chat_body(s, stop=list("abcde")), 400, "value_error", "stop"),
    ("n above 1", CHAT, lambda s: chat_body(s, n=2), 400, "unsupported_parameter", "n"),
    ("tools", CHAT, lambda s: chat_body(s, tools=[{"type": "function", "function": {"name": "f"}}]), 400,
     "unsupported_parameter", "tools"),
    ("a JSON array", CHAT, lambda s: [1, 2], 400, "model_type", None),
    ("a prompt over the limit", CHAT,
     lambda s: chat_body(s, messages=[{"role": "user", "content": "hello " * MAX_SEQ_LEN}]), 400,
     "context_length_exceeded", "messages"),
    ("a text prompt over the limit", "/v1/completions",
     lambda s: {"model": s.model, "prompt": "hello " * MAX_SEQ_LEN}, 400, "context_length_exceeded", "prompt"),
    ("an unknown path", "/v1/engines", lambda s: {}, 404, "not_found", None),
]


@pytest.mark.parametrize("what, path, make, status, code, param", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_request_gets_an_openai_error_and_the_server_keeps_serving(server, what, path, make, status, code, param):
    body = make(server)
    content = body if isinstance(body, bytes) else None
    response = httpx.post(server.url + path, content=content, json=None if content is not None else body,
                          headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["param"] == param
    assert error["type"] == "invalid_request_error" and error["message"]
    still = httpx.post(server.url + CHAT, json=chat_body(server, temperature=0), timeout=60)
    assert still.status_code == 200 and still.json()["choices"][0]["message"]["content"]


def test_the_openai_client_raises_with_the_message(server):
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-17", messages=HELLO)
    with pytest.raises(openai.BadRequestError, match="greater than or equal to 1") as caught:
        client.chat.completions.create(model=server.model, messages=HELLO, max_tokens=-1)
    assert caught.value.param == "max_tokens"


def test_max_tokens_is_cut_to_the_room_left_in_the_context(server, engine):
    prompt = "hello " * (MAX_SEQ_LEN - 10)
    prompt_tokens = len(engine.encode(prompt))
    assert prompt_tokens < MAX_SEQ_LEN - 1
    reply = httpx.post(server.url + "/v1/completions", timeout=120,
                       json={"model": server.model, "prompt": prompt, "max_tokens": 1000, "temperature": 0}).json()
    assert reply["usage"]["prompt_tokens"] == prompt_tokens
    assert reply["usage"]["total_tokens"] <= MAX_SEQ_LEN


def test_unimplemented_fields_at_values_that_ask_nothing_are_welcome(server):
    neutral = {"n": 1, "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": False, "tools": [],
               "response_format": {"type": "text"}, "user": "someone"}
    response = httpx.post(server.url + CHAT, json=chat_body(server, **neutral), timeout=60)
    assert response.status_code == 200, response.text


def send_raw(server, head: bytes, body: bytes) -> socket.socket:
    """A connection that has sent `head` (a request line and headers, without the blank line) and `body`."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    connection.sendall(head + b"\r\nHost: %b\r\nContent-Type: application/json\r\n\r\n" % host.encode() + body)
    return connection


def test_a_body_over_the_limit_gets_413_before_it_is_sent(server):
    limit = resolve_max_body_bytes(None, MAX_SEQ_LEN)  # the default: room for a prompt of max_seq_len tokens
    with send_raw(server, b"POST /v1/completions HTTP/1.1\r\nContent-Length: 5000000", b"") as connection:
        connection.settimeout(10)
        reply = http.client.HTTPResponse(connection)  # not a byte of the body was sent
        reply.begin()
        assert reply.status == 413
        error = json.loads(reply.read())["error"]
    assert error["code"] == "body_too_large" and f"is 5000000 bytes, over this server's limit of {limit}" in \
        error["message"]


def test_the_default_limit_takes_a_body_of_its_size(server):
    limit = resolve_max_body_bytes(None, MAX_SEQ_LEN)
    empty = len(json.dumps({"model": server.model, "prompt": ""}))
    at_limit = {"model": server.model, "prompt": ("hello " * limit)[:limit - empty]}
    reply = httpx.post(f"{server.url}/v1/completions", json=at_limit, timeout=60)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "context_length_exceeded"


def test_a_chunked_body_gets_413_once_it_passes_the_limit(server):
    limit = resolve_max_body_bytes(None, MAX_SEQ_LEN)

    def chunks():  # no Content-Length: httpx sends a generator chunked
        yield b'{"model": "%b", "prompt": "' % server.model.encode()
        for _ in range(limit // 1000 + 1):
            yield b"hello " * 1000

    reply = httpx.post(f"{server.url}/v1/completions", content=chunks(), timeout=60)
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "body_too_large"
    assert httpx.post(server.url + CHAT, json=chat_body(server), timeout=60).status_code == 200


def test_a_client_that_leaves_halfway_through_its_body_is_one_line_in_the_log(server, caplog):
    caplog.set_level(logging.INFO)
    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's loggers do not reach the root's handlers
    uvicorn_log.addHandler(caplog.handler)
    try:
        send_raw(server, b"POST /v1/completions HTTP/1.1\r\nContent-Length: 1000", b'{"model": ').close()
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # room for any line that would follow
    finally:
        uvicorn_log.removeHandler(caplog.handler)
    assert [record.levelname for record in caplog.records] == ["WARNING"], caplog.text
    assert "went away before sending its whole body" in caplog.records[0].getMessage()
    assert not caplog.records[0].exc_info and "Traceback" not in caplog.text
    assert httpx.post(server.url + CHAT, json=chat_body(server), timeout=60).status_code == 200
