"""When a row of generated text ends: at an EOS token, at a stop string, or at max_new_tokens."""

from __future__ import annotations

STOP, LENGTH = "stop", "length"  # finish reasons, as OpenAI's API names them


class StopStrings:
    """Cuts streamed text at the first stop string, holding back any tail that may be the start of one.

    `push(text)` returns (text that is safe to show, whether a stop string ended it); `flush()` returns
    the held-back tail once the text ends for another reason.
    """

    def __init__(self, stops: tuple[str, ...] | list[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        self.pending += text
        found = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if found:
            safe, self.pending = self.pending[: min(found)], ""
            return safe, True
        hold = max((n for s in self.stops for n in range(1, len(s)) if self.pending.endswith(s[:n])), default=0)
        safe, self.pending = self.pending[: len(self.pending) - hold], self.pending[len(self.pending) - hold:]
        return safe, False

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return rest


class RowText:
    """One row's text as its tokens arrive: detokenized as a stream, cut at EOS, stop strings or the limit."""

    def __init__(self, tokenizer, eos_token_ids: tuple[int, ...], stop_strings: tuple[str, ...], max_new_tokens: int):
        self.decoder = tokenizer.stream_decoder(skip_special_tokens=True)
        self.stops = StopStrings(stop_strings)
        self.eos = set(eos_token_ids)
        self.max_new_tokens = max_new_tokens
        self.tokens: list[int] = []
        self.text = ""
        self.finish_reason: str | None = None

    def push(self, token: int) -> str:
        """The text `token` adds (maybe ""); sets finish_reason when the row ends."""
        self.tokens.append(token)
        is_eos = token in self.eos
        at_limit = len(self.tokens) >= self.max_new_tokens
        new = "" if is_eos else self.decoder.push(token)
        if is_eos or at_limit:
            new += self.decoder.flush()
        new, hit_stop = self.stops.push(new)
        if hit_stop:
            self.finish_reason = STOP
        elif is_eos or at_limit:
            self.finish_reason = STOP if is_eos else LENGTH
            new += self.stops.flush()
        self.text += new
        return new
