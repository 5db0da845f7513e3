"""Serving a model folder: the OpenAI API (chat and text completions, streamed or not) and a chat page,
on FastAPI and uvicorn, with a scheduler thread that decodes every client's request in one batch."""

from .app import create_app

__all__ = ["create_app"]
