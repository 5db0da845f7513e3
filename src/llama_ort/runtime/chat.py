"""A multi-turn conversation in the model's chat template.

Each turn renders the whole history as the prompt. In static mode the conversation keeps an engine slot whose
cache holds the history so far, so a turn runs only its new tokens; in dynamic mode it runs the whole history
again. When the history no longer fits with room for the
answer (max_seq_len in static mode, the context length in dynamic mode), the oldest turns are dropped, with
a notice; a system message stays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ..errors import fail
from .engine import Engine, EngineConfig
from .generate import GenerateOptions
from .session import Model
from .stream import Response, check_text, stream_generate, stream_on_engine

log = logging.getLogger("llama_ort.runtime")


class Chat:
    def __init__(self, model: Model, tokenizer, options: GenerateOptions = GenerateOptions(),
                 system: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.system = [{"role": "system", "content": system}] if system else []
        self.turns: list[dict] = []  # user and assistant messages, oldest first
        self.engine = Engine(model, tokenizer, EngineConfig(slots=1)) if model.is_static else None
        if self.max_prompt_tokens < 1:
            raise fail("--max-new-tokens", f"an answer of {options.max_new_tokens} tokens leaves no room for a "
                       f"prompt in {self.max_prompt_tokens + options.max_new_tokens} positions: lower "
                       "--max-new-tokens or raise --max-seq-len")

    @property
    def max_prompt_tokens(self) -> int:
        """How long the rendered history may be, leaving room for a whole answer."""
        limit = self.model.max_seq_len if self.model.is_static else self.model.spec.context_length
        return limit - self.options.max_new_tokens

    def reset(self) -> None:
        self.turns = []

    def send(self, message: str) -> Iterator[Response]:
        """The assistant's answer to `message`, streamed; it joins the history once complete."""
        self.turns.append({"role": "user", "content": check_text(message, "message")})
        ids = self.prompt_ids()
        answer = []
        responses = (stream_on_engine(self.engine, ids, self.options) if self.engine
                     else stream_generate(self.model, self.tokenizer, ids, self.options))
        for response in responses:
            answer.append(response.text)
            yield response
        self.turns.append({"role": "assistant", "content": "".join(answer)})

    def prompt_ids(self) -> list[int]:
        """The history in the chat template, dropping the oldest turns until it fits."""
        ids = self.tokenizer.encode_chat(self.system + self.turns)
        while len(ids) > self.max_prompt_tokens and len(self.turns) > 1:
            dropped = self._drop_oldest_turn()
            log.warning("the conversation no longer fits in %d tokens with room for the answer: "
                        "dropped its oldest %s", self.max_prompt_tokens, dropped)
            ids = self.tokenizer.encode_chat(self.system + self.turns)
        if len(ids) > self.max_prompt_tokens:
            self.turns.pop()
            raise fail("message", f"is too long: with the chat template it takes {len(ids)} tokens, and at most "
                       f"{self.max_prompt_tokens} fit with room for an answer of {self.options.max_new_tokens}: "
                       "shorten it, lower --max-new-tokens or raise --max-seq-len")
        return ids

    def _drop_oldest_turn(self) -> str:
        """Drop the first user message and the answer to it; returns what was dropped, for the notice."""
        dropped = [self.turns.pop(0)]
        if self.turns and self.turns[0]["role"] == "assistant":
            dropped.append(self.turns.pop(0))
        return "turn" if len(dropped) == 2 else "message"
