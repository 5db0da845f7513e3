"""The OpenAI-compatible endpoints: /v1/models, /v1/chat/completions and /v1/completions.

A completion request becomes prompt ids and sampling parameters, then a job on the scheduler; its tokens
go back either as one JSON body or as server-sent events (`data: {chunk}` per token, then `data: [DONE]`).
Both endpoints share that path and differ only in the shape of a choice (`Shape`). Parsing the body and
tokenizing the prompt run in worker threads: a long prompt takes its time there while the event loop goes on
serving every stream and /health.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ..errors import LlamaOrtError
from ..runtime.generate import GenerateOptions
from ..runtime.sampling import SamplingParams
from .engine import Engine
from .errors import ApiError, invalid_field
from .scheduler import Job, QueueFull, Scheduler
from .schemas import ChatCompletionRequest, CompletionRequest, SamplingFields, new_id, now_s, unsupported

router = APIRouter(prefix="/v1")
Body = TypeVar("Body", bound=SamplingFields)


@dataclass(frozen=True)
class Shape:
    """How one endpoint writes a choice."""

    object: str  # of a whole response
    chunk_object: str  # of a streamed chunk
    id_prefix: str
    is_chat: bool

    def choice(self, text: str, finish_reason: str | None) -> dict:
        if self.is_chat:
            message = {"role": "assistant", "content": text}
            return {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}

    def delta(self, text: str, finish_reason: str | None = None) -> dict:
        if self.is_chat:
            delta = {"content": text} if text else {}
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}


CHAT = Shape("chat.completion", "chat.completion.chunk", "chatcmpl", is_chat=True)
TEXT = Shape("text_completion", "text_completion", "cmpl", is_chat=False)


@router.get("/models")
async def list_models(request: Request) -> dict:
    return {"object": "list", "data": [model_card(request)]}


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, request: Request) -> dict:
    check_model(request, model_id)
    return model_card(request)


@router.post("/chat/completions")
async def chat_completions(request: Request):
    body = await read_body(request, ChatCompletionRequest)
    check_model(request, body.model)
    prompt_ids = await run_in_threadpool(encode_chat, scheduler_of(request).engine, body)
    return await complete(request, body, prompt_ids, CHAT, prompt_field="messages")


@router.post("/completions")
async def completions(request: Request):
    body = await read_body(request, CompletionRequest)
    check_model(request, body.model)
    prompt_ids = await run_in_threadpool(scheduler_of(request).engine.encode, body.prompt)
    return await complete(request, body, prompt_ids, TEXT, prompt_field="prompt")


def encode_chat(engine: Engine, body: ChatCompletionRequest) -> list[int]:
    try:
        return engine.encode_chat(body.chat())
    except LlamaOrtError as e:  # the chat template rejects the messages
        raise ApiError(400, str(e), param="messages") from None


async def read_body(request: Request, schema: type[Body]) -> Body:
    """The JSON body as `schema`. Parsed here rather than by FastAPI so that each way a body can be wrong
    (not UTF-8, not JSON, a bad field) gets its own message."""
    return await run_in_threadpool(parse_body, await request.body(), schema)


def refuse_constant(name: str):
    """Python's json reads NaN and Infinity, which JSON has not: no sampling field may be one."""
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


def parse_body(raw: bytes, schema: type[Body]) -> Body:
    try:
        data = json.loads(raw, parse_constant=refuse_constant)
    except UnicodeDecodeError as e:
        raise ApiError(400, f"the body is not valid UTF-8 ({e.reason} at byte {e.start})",
                       code="invalid_encoding") from None
    except json.JSONDecodeError as e:
        raise ApiError(400, f"the body is not valid JSON: {e}", code="invalid_json") from None
    try:  # JSON's \ud800 escapes decode to lone surrogates, which are not text: no tokenizer takes them
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ApiError(400, f"the body holds an unpaired surrogate ({e.object[e.start:e.end]!a}): text must be "
                       "valid Unicode", code="invalid_encoding") from None
    if field := unsupported(data):
        raise ApiError(400, f"{field}: {data[field]!r} is not supported by this server", param=field,
                       code="unsupported_parameter")
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise invalid_field(e) from None


def scheduler_of(request: Request) -> Scheduler:
    return request.app.state.scheduler


def model_card(request: Request) -> dict:
    engine = scheduler_of(request).engine
    return {"id": engine.name, "object": "model", "created": request.app.state.started_s, "owned_by": "llama-ort",
            "max_seq_len": engine.max_seq_len}


def check_model(request: Request, model: str) -> None:
    served = scheduler_of(request).engine.name
    if model != served:
        raise ApiError(404, f"model {model!r} does not exist: this server serves {served!r} (see /v1/models)",
                       param="model", code="model_not_found")


def generate_options(body: SamplingFields, prompt_len: int, max_seq_len: int, prompt_field: str) -> GenerateOptions:
    """The request's options, the runtime's own type; max_tokens is cut to the room left in the context
    (finish_reason "length")."""
    if prompt_len == 0:  # the runtime needs a token to start from
        raise ApiError(400, "the prompt holds no tokens: give some text", param=prompt_field, code="empty_prompt")
    room = max_seq_len - prompt_len
    if room < 1:
        raise ApiError(400, f"the prompt is {prompt_len} tokens long; this server's limit is {max_seq_len - 1} "
                       f"(its context is {max_seq_len} tokens, and at least one must be generated)",
                       param=prompt_field, code="context_length_exceeded")
    max_tokens = min(body.token_limit() or room, room)
    sampling = SamplingParams(temperature=body.temperature, top_k=body.top_k, top_p=body.top_p,
                              repetition_penalty=body.repetition_penalty, seed=body.seed)
    return GenerateOptions(max_new_tokens=max_tokens, sampling=sampling, stop_strings=body.stop_strings(),
                           ignore_eos=body.ignore_eos)


async def complete(request: Request, body: SamplingFields, prompt_ids: list[int], shape: Shape, prompt_field: str):
    scheduler = scheduler_of(request)
    options = generate_options(body, len(prompt_ids), scheduler.engine.max_seq_len, prompt_field)
    try:
        job = scheduler.submit(prompt_ids, options)
    except QueueFull as e:
        raise ApiError(429, f"the server is busy ({e}): retry later", type="rate_limit_error", code="queue_full",
                       headers={"Retry-After": "1"}) from None
    header = {"id": new_id(shape.id_prefix), "created": now_s(), "model": scheduler.engine.name}
    if body.stream:
        events = stream_events(request, job, shape, header, body.include_usage)
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    async with cancel_on_disconnect(request, job):
        texts, finish_reason, count = [], None, 0
        async for token in job.tokens():
            texts.append(token.text)
            finish_reason, count = token.finish_reason, count + 1
    return {**header, "object": shape.object, "choices": [shape.choice("".join(texts), finish_reason)],
            "usage": usage(len(prompt_ids), count)}


async def stream_events(request: Request, job: Job, shape: Shape, header: dict,
                        include_usage: bool) -> AsyncIterator[str]:
    def event(choices: list[dict], **extra) -> str:
        return f"data: {json.dumps({**header, 'object': shape.chunk_object, 'choices': choices, **extra})}\n\n"

    count = 0
    async with cancel_on_disconnect(request, job):
        if shape.is_chat:  # a chat stream opens with the role
            yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None}])
        try:
            async for token in job.tokens():
                count += 1
                if token.text or token.finish_reason:
                    yield event([shape.delta(token.text, token.finish_reason)])
        except Exception as e:  # the engine failed after the 200 went out: say so in the stream
            yield ApiError(500, f"generation failed: {e}", type="server_error").sse_event()
            return
        if include_usage:
            yield event([], usage=usage(len(job.prompt_ids), count))
        yield "data: [DONE]\n\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


@asynccontextmanager
async def cancel_on_disconnect(request: Request, job: Job) -> AsyncIterator[None]:
    """While inside, a client that disconnects cancels `job`; leaving early (the response was abandoned)
    cancels it too, and leaving after it finished does nothing."""
    watch = asyncio.create_task(cancel_when_disconnected(request, job))
    try:
        yield
    finally:
        watch.cancel()
        job.cancel()


async def cancel_when_disconnected(request: Request, job: Job) -> None:
    # Once the body has been read, `receive` waits for the disconnect: the watch costs nothing meanwhile.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    job.cancel()
