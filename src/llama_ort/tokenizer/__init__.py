"""Tokenizers: load a model folder's tokenizer (encode, decode, chat templates, streaming), and export a
checkpoint's tokenizer into a model folder."""

from .chat import LLAMA2_CHAT_TEMPLATE, render_chat
from .export import export_tokenizer
from .stream import StreamDecoder
from .tokenizer import Tokenizer

__all__ = ["Tokenizer", "StreamDecoder", "export_tokenizer", "render_chat", "LLAMA2_CHAT_TEMPLATE"]
