"""Errors as the OpenAI API returns them: an HTTP status and {"error": {"message", "type", "param", "code"}}.

Every way a request can fail ends here, Starlette's own (404, 405) and unexpected ones (500) included, so
clients written for the OpenAI API (the official SDKs raise by status and read `error.message`) understand
each one.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .schemas import error_body

log = logging.getLogger("llama_ort.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.message, self.type, self.param, self.code), self.status,
                            headers=self.headers)

    def sse_event(self) -> str:
        """The error as a server-sent event, for a stream whose 200 status has already been sent."""
        return f"data: {json.dumps(error_body(self.message, self.type, self.param, self.code))}\n\n"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, lambda request, e: e.response())
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, internal_error)


def invalid_field(e: ValidationError) -> ApiError:
    """Pydantic's errors as one 400 that names the first bad field (`messages[0].role`) as `param`."""
    first = e.errors()[0]
    param = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    message = f"{param}: {first['msg']}" if param else first["msg"]
    return ApiError(400, message, param=param or None, code=first["type"])


def http_error(request: Request, e: HTTPException) -> JSONResponse:
    kinds = {404: "not_found", 405: "method_not_allowed"}
    return ApiError(e.status_code, str(e.detail), code=kinds.get(e.status_code)).response()


def client_gone(request: Request, e: ClientDisconnect) -> Response:
    """A client that went away before sending its whole body: its own doing, worth a line and no traceback."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
    log.warning("%s %s: %s went away before sending its whole body", request.method, request.url.path, client)
    return Response(status_code=400)  # never sent: nobody is listening


def internal_error(request: Request, e: Exception) -> JSONResponse:
    # exc_info from `e`: a handler runs in a worker thread, where no exception is being handled
    log.error("%s %s failed", request.method, request.url.path, exc_info=e)
    return ApiError(500, f"internal error: {e}", type="server_error").response()
