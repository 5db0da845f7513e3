"""Streaming detokenization: the text each new token adds, as a model generates it.

Decoding one token at a time goes wrong two ways: a character of several UTF-8 bytes can be split over tokens
(byte-level and byte-fallback vocabularies), and a sentencepiece token's leading space is dropped when the token
is decoded alone. So each step decodes a short window that starts one emitted chunk back, for context, and
emits what the new tokens added to it; text that ends in the replacement character waits for the next token.
The chunks joined equal `decode` of all the ids.
"""

from __future__ import annotations

from collections.abc import Callable

INCOMPLETE = "\ufffd"  # what decoders write for the bytes of a character not yet complete


class StreamDecoder:
    """`push(token_id)` returns the new text (maybe ""); `flush()` returns what is held back at the end."""

    def __init__(self, decode: Callable[[list[int]], str]):
        self.decode = decode
        self.ids: list[int] = []
        self.context_start = 0  # the window decoded each step starts here: the chunk emitted before last
        self.emitted_end = 0  # text of ids[:emitted_end] has been returned

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        return self._emit(finished=False)

    def flush(self) -> str:
        """The text held back waiting for the rest of a character; call it once the ids end."""
        return self._emit(finished=True)

    def _emit(self, finished: bool) -> str:
        window = self.decode(self.ids[self.context_start:])
        if window.endswith(INCOMPLETE) and not finished:
            return ""
        context = self.decode(self.ids[self.context_start:self.emitted_end])
        self.context_start, self.emitted_end = self.emitted_end, len(self.ids)
        return window[len(context):]
