"""Generating text: prompts in, a stream of responses out (text, token, tokens/s, finish reason).

stream_generate (one prompt, as it is produced) -> generate (its whole text); batch_generate runs several
prompts together, each row ending on its own. Token-level work is generate.py's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import fail
from .engine import Engine
from .generate import GenerateOptions, generate_step
from .sampling import Sampler
from .session import Model
from .stopping import RowText


@dataclass(frozen=True)
class Response:
    text: str  # what this token adds to the text (may be "": part of a character, or of a stop string)
    token: int
    prompt_tokens: int
    prompt_tps: float  # prompt tokens per second of the prompt step (it also yields the first token)
    generation_tokens: int
    generation_tps: float  # tokens per second after the first
    elapsed_s: float  # since the call began, the prompt included
    finish_reason: str | None  # "stop" (EOS or a stop string), "length" (max_new_tokens), None: more to come
    cached_tokens: int = 0  # prompt tokens whose keys and values were already in the cache (not run again)


def check_text(text: str, what: str = "prompt") -> str:
    if not text.strip():
        raise fail(what, "is empty: give some text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # command-line bytes that are not UTF-8 arrive as lone surrogates
        raise fail(what, "is not valid UTF-8 text") from None
    return text


def encode_prompt(tokenizer, prompt: str | list[int], chat_template: bool = False) -> list[int]:
    """Token ids of a text prompt (with the BOS the model's tokenizer adds), or the ids themselves.

    With `chat_template`, text becomes one user message in the model's chat format, where it has one:
    instruction-tuned models answer that, where plain text may get an end of turn at once.
    """
    if not isinstance(prompt, str):
        return list(prompt)
    check_text(prompt)
    if chat_template and tokenizer.chat_template:
        return tokenizer.encode_chat([{"role": "user", "content": prompt}])
    return tokenizer.encode(prompt)


class Clock:
    """Timings of one generation: the prompt step, then the tokens after it."""

    def __init__(self):
        self.start = time.perf_counter()
        self.first_token = self.start

    def rates(self, prompt_tokens: int, tokens: int) -> tuple[float, float, float]:
        """(prompt tokens/s, generated tokens/s after the first, seconds since the start)."""
        now = time.perf_counter()
        if tokens == 1:
            self.first_token = now
        prompt_tps = prompt_tokens / max(self.first_token - self.start, 1e-9)
        generation_tps = (tokens - 1) / (now - self.first_token) if tokens > 1 else 0.0
        return prompt_tps, generation_tps, now - self.start


def stream_generate(model: Model, tokenizer, prompt: str | list[int],
                    options: GenerateOptions = GenerateOptions()) -> Iterator[Response]:
    """Responses for one prompt, one per generated token, the last with its finish_reason."""
    ids = encode_prompt(tokenizer, prompt)
    eos = () if options.ignore_eos else tokenizer.eos_token_ids
    row = RowText(tokenizer, eos, options.stop_strings, options.max_new_tokens)
    clock = Clock()
    steps = generate_step(model, [ids], options.max_new_tokens, Sampler(options.sampling), options.padding)
    for tokens in steps:
        token = int(tokens[0])
        text = row.push(token)
        prompt_tps, generation_tps, elapsed_s = clock.rates(len(ids), len(row.tokens))
        yield Response(text, token, len(ids), prompt_tps, len(row.tokens), generation_tps, elapsed_s,
                       row.finish_reason)
        if row.finish_reason:
            return


def stream_on_engine(engine: Engine, ids: list[int], options: GenerateOptions) -> Iterator[Response]:
    """stream_generate's responses for a request run alone on `engine`: its slot keeps what it held, so a prompt
    that starts with the last request's prompt and answer (the next turn of a chat) runs only what is new."""
    row = engine.add(ids, options)
    if row is None:
        raise fail("engine", "has no free slot: run one request at a time on it")
    clock, count, cached = Clock(), 0, engine.reused_tokens(row)
    try:
        while True:
            token = engine.step().get(row)
            if token is None:  # its prompt is still running
                continue
            count += 1
            prompt_tps, generation_tps, elapsed_s = clock.rates(len(ids), count)
            yield Response(token.text, token.id, len(ids), prompt_tps, count, generation_tps, elapsed_s,
                           token.finish_reason, cached)
            if token.finish_reason:
                return
    finally:  # a caller that stops early (or a failed step) frees the slot
        engine.drop(row)


def generate(model: Model, tokenizer, prompt: str | list[int], options: GenerateOptions = GenerateOptions()) -> str:
    return "".join(response.text for response in stream_generate(model, tokenizer, prompt, options))


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: list[int]  # the generated ids, EOS included
    finish_reason: str


def batch_generate(model: Model, tokenizer, prompts: list[str | list[int]],
                   options: GenerateOptions = GenerateOptions()) -> list[Completion]:
    """Several prompts in one batch (right-padded), each row ending at its own EOS, stop string or limit."""
    rows_ids = [encode_prompt(tokenizer, prompt) for prompt in prompts]
    eos = () if options.ignore_eos else tokenizer.eos_token_ids
    rows = [RowText(tokenizer, eos, options.stop_strings, options.max_new_tokens) for _ in prompts]
    steps = generate_step(model, rows_ids, options.max_new_tokens, Sampler(options.sampling), options.padding)
    for tokens in steps:
        for row, token in zip(rows, tokens):
            if not row.finish_reason:
                row.push(int(token))
        if all(row.finish_reason for row in rows):
            break
    return [Completion(row.text, row.tokens, row.finish_reason) for row in rows]
