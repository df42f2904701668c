"""casreg's error types as HTTP answers: one status per type, always a JSON body, never a traceback.

Kubeflow routes answer the Model Registry's ``Error`` (``{"code", "message"}``); FATE routes answer
as FATE-Flow does (``{"retcode", "retmsg"}``, the HTTP status as retcode).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
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


class RangeNotSatisfiable(InvalidInput):
    """A ``Range`` no byte of the file lies in (416, ``Content-Range: bytes */<size>``)."""

    def __init__(self, size: int):
        super().__init__(f"no byte of the range asked for lies in this {size}-byte file")
        self.size = size


class ErrorBody(BaseModel):
    """Every error's JSON body (FATE's routes excepted)."""
    code: str
    message: str


# the statuses a route of casreg's own API may answer with besides its success (for /openapi.json)
ERRORS: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "invalid input"},
    404: {"model": ErrorBody, "description": "no such model, version, file or name"},
    503: {"model": ErrorBody, "description": "the store is unavailable"},
}
WRITE_ERRORS: dict[int | str, dict] = {
    **ERRORS,
    401: {"model": ErrorBody, "description": "the token is missing"},
    403: {"model": ErrorBody, "description": "a wrong token, or a read-only server"},
    409: {"model": ErrorBody, "description": "a name exists, or changed meanwhile"},
    413: {"model": ErrorBody, "description": "request body too large"},
}


def status_of(exc: CasregError) -> int:
    if isinstance(exc, RangeNotSatisfiable):
        return 416
    if isinstance(exc, Refused):
        return exc.status
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def error_response(request: Request, status: int, message: str) -> JSONResponse:
    if request.url.path.startswith("/v1/"):  # FATE-Flow's routes
        return JSONResponse({"retcode": status, "retmsg": message}, status_code=status)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"code": str(status), "message": message}, status_code=status, headers=headers)


class FateError(BaseModel):
    """FATE-Flow's error body (its routes, ``/v1/...``)."""
    retcode: int
    retmsg: str


# what any route may answer besides its own statuses: the handlers below send these bodies
ANY_ROUTE = {400: "invalid input (also a malformed request)", 401: "a write without the token",
             403: "a wrong token, or a read-only server", 404: "not found", 409: "a conflict: it exists or changed",
             413: "request body too large", 503: "the store or a remote is unavailable"}


def document(schema: dict) -> dict:
    """``schema`` (the app's OpenAPI document) saying what the handlers really answer: FastAPI
    documents 422 for a request that does not validate, ``invalid_request`` answers 400; every
    route may meet the errors of ``ANY_ROUTE``, in the body of its family."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, FateError):
        components.setdefault(model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}"))
    for path, operations in schema.get("paths", {}).items():
        body = "FateError" if path.startswith("/v1/") else "ErrorBody"
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for code, description in ANY_ROUTE.items():
                responses.setdefault(str(code), {"description": description, "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}})
    return schema


def install(app: FastAPI) -> None:
    """The handlers: casreg errors by type, FastAPI's own (unknown route, bad body) in the same
    JSON shape, and a catch-all that logs the traceback and answers 500 with one line."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document(get_openapi(title=app.title, version=app.version, routes=app.routes,
                                                      description=app.description))
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(CasregError)
    async def casreg_error(request: Request, exc: CasregError) -> JSONResponse:
        response = error_response(request, status_of(exc), str(exc))
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.size}"
        return response

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
