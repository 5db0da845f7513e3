"""The request body's size limit: a body over it gets 413 before it is read whole, so that no client can make the
server hold, parse and tokenize megabytes for a prompt that the context could never take.

Our own ASGI middleware rather than FastAPI's `max_body_size` (new in FastAPI 0.164, and answering a
Content-Length over the limit in plain text): every 413 here is an OpenAI error object.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import fail
from .errors import ApiError

# A prompt is at most max_seq_len tokens, and text takes far fewer bytes a token than this even as JSON escapes
# (about 4 for English; 12 for an emoji written "\ud83d\ude00", which is at least one token). The fixed part holds
# the request's other fields and the JSON around each chat message.
BYTES_PER_TOKEN = 64
OTHER_FIELDS_BYTES = 16 * 1024


def resolve_max_body_bytes(max_body_bytes: int | None, max_seq_len: int) -> int:
    """`max_body_bytes`, checked; None: room for a prompt of max_seq_len tokens (144 KiB at 2048)."""
    if max_body_bytes is None:
        return OTHER_FIELDS_BYTES + BYTES_PER_TOKEN * max_seq_len
    if max_body_bytes < 1:
        raise fail("max_body_bytes", f"must be at least 1, got {max_body_bytes}")
    return max_body_bytes


def body_too_large(max_bytes: int, declared_bytes: int | None = None) -> ApiError:
    size = f"{declared_bytes} bytes, " if declared_bytes is not None else ""  # a chunked body's size is unknown
    return ApiError(413, f"the body is {size}over this server's limit of {max_bytes} bytes (its --max-body-bytes): "
                         "shorten the prompt", code="body_too_large")


class BodyLimit:
    """413 for a body over `max_bytes`: at once when its Content-Length says so, without reading it; otherwise
    (a chunked body) as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await body_too_large(self.max_bytes, int(declared)).response()(scope, receive, send)
        bytes_read = 0

        async def receive_within_limit() -> Message:
            nonlocal bytes_read
            message = await receive()
            bytes_read += len(message.get("body", b""))
            if bytes_read > self.max_bytes:  # raised inside the endpoint that reads: its handler answers 413
                raise body_too_large(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
