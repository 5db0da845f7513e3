"""The OpenAI API's request bodies, as far as this server implements them, and its error object.

Requests are validated here: ranges, types and the fields we accept. Fields of the API that we do not
implement are welcome at the values that ask nothing of them (`n: 1`, `presence_penalty: 0`) and rejected
otherwise (`unsupported`), so a client never silently gets something other than what it asked for.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP_STRINGS = 4  # the OpenAI API's limit

# Fields this server does not implement, with the values that ask nothing of them.
NOT_IMPLEMENTED = {
    "n": (None, 1), "best_of": (None, 1), "echo": (None, False), "suffix": (None, ""),
    "logprobs": (None, False, 0), "top_logprobs": (None, 0), "logit_bias": (None, {}),
    "frequency_penalty": (None, 0), "presence_penalty": (None, 0),
    "tools": (None, []), "functions": (None, []), "response_format": (None, {"type": "text"}),
}


class StreamOptions(BaseModel):
    include_usage: bool = False  # a last chunk with usage and no choices, before [DONE]


class SamplingFields(BaseModel):
    """What both endpoints accept to control generation."""

    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0)
    # Beyond OpenAI's fields, as vLLM's and llama.cpp's servers take them.
    top_k: int = Field(0, ge=0)  # 0: off
    repetition_penalty: float = Field(1.0, gt=0.0)  # 1: off
    ignore_eos: bool = False
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def at_most_four_stop_strings(cls, stop):
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > MAX_STOP_STRINGS:
            raise ValueError(f"at most {MAX_STOP_STRINGS} stop strings")
        if any(s == "" for s in stops):
            raise ValueError("a stop string must not be empty")
        return stop

    def token_limit(self) -> int | None:
        return self.max_tokens

    def stop_strings(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name of max_tokens

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def chat(self) -> list[dict]:
        # Chat templates know "system"; "developer" is the newer name for the same role.
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]


class CompletionRequest(SamplingFields):
    prompt: str = Field(min_length=1)


def unsupported(body: object) -> str | None:
    """The first field of a request body that asks for something this server does not do."""
    if not isinstance(body, dict):
        return None
    return next((name for name, welcome in NOT_IMPLEMENTED.items() if name in body and body[name] not in welcome),
                None)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now_s() -> int:
    return int(time.time())


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    """The OpenAI error object: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
