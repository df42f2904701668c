"""casreg's error types as HTTP answers: one status per type, always a JSON body, never a traceback.

Kubeflow routes answer the Model Registry's ``Error`` (``{"code", "message"}``); FATE routes answer
as FATE-Flow does (``{"retcode", "retmsg"}``, the HTTP status as retcode).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import (
    CasregError,
    Conflict,
    Corrupt,
    HostileInput,
    InvalidInput,
    NotFound,
    RemoteError,
    StoreUnavailable,
)

log = logging.getLogger("casreg.server")

# the first class an error is an instance of decides (subclasses before their bases)
STATUS: tuple[tuple[type[CasregError], int], ...] = (
    (InvalidInput, 400),
    (HostileInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (Corrupt, 500),
    (RemoteError, 503),
    (StoreUnavailable, 503),
    (CasregError, 400),  # any other failure caused by input
)


class Refused(CasregError):
    """A request this server does not take: no or a wrong token (401), a read-only server (403),
    a body over the size limit (413)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def status_of(exc: CasregError) -> int:
    if isinstance(exc, Refused):
        return exc.status
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def error_response(request: Request, status: int, message: str) -> JSONResponse:
    if request.url.path.startswith("/v1/"):  # FATE-Flow's routes
        return JSONResponse({"retcode": status, "retmsg": message}, status_code=status)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"code": str(status), "message": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """The handlers: casreg errors by type, FastAPI's own (unknown route, bad body) in the same
    JSON shape, and a catch-all that logs the traceback and answers 500 with one line."""

    @app.exception_handler(CasregError)
    async def casreg_error(request: Request, exc: CasregError) -> JSONResponse:
        return error_response(request, status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                             for e in exc.errors()[:5])
        return error_response(request, 400, f"invalid request: {problems}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error answering %s %s", request.method, request.url.path)
        return error_response(request, 500, f"internal error ({type(exc).__name__}); see the server's log")
