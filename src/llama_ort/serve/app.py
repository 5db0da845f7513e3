"""The web application: the OpenAI API, the chat page at / and /health, around one scheduler."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from .api import router
from .body_limit import BodyLimit, resolve_max_body_bytes
from .engine import Engine
from .errors import install_error_handlers
from .scheduler import MAX_BATCH_SIZE, MAX_WAITING, Scheduler

WEB = files(__package__) / "web"  # the chat page: plain HTML and JavaScript, package data
# Everything the page loads comes from this server: no other host is ever contacted.
PAGE_POLICY = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def create_app(engine: Engine, max_batch_size: int = MAX_BATCH_SIZE, max_waiting: int = MAX_WAITING,
               max_body_bytes: int | None = None) -> FastAPI:
    """The server for `engine`: at most `max_batch_size` requests decode together and `max_waiting` more queue
    for room (more still: 429). A request body over `max_body_bytes` gets 413 (None: room for a prompt of the
    engine's max_seq_len tokens)."""
    scheduler = Scheduler(engine, max_batch_size, max_waiting)
    max_body_bytes = resolve_max_body_bytes(max_body_bytes, engine.max_seq_len)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler.start()
        yield
        scheduler.close()

    app = FastAPI(title="llama-ort", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # both load their scripts from a CDN
    app.state.scheduler = scheduler
    app.state.started_s = int(time.time())
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(WEB)), name="static")

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(str(WEB / "index.html"), headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/health")
    async def health(request: Request) -> dict:
        return {"status": "ok", "model": engine.name, **scheduler.load()}

    return app
