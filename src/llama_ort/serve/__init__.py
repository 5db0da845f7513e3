"""Serving a model folder: the OpenAI API (chat and text completions, streamed or not) and a chat page,
on FastAPI and uvicorn, with a scheduler thread that decodes every client's request in one batch."""

from .app import create_app
from .runtime_engine import load_engine
from .server import serve

__all__ = ["create_app", "load_engine", "serve"]
