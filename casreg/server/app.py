"""The application: one store, its routes, who may write.

- Reads are open; a write needs ``Authorization: Bearer <token>`` when the server has a token
  (compared with ``hmac.compare_digest``), and a read-only server refuses every write (403). A
  route is a write because it says so (``Depends(writer)``), not by its method: FATE-Serving's
  model transfer is a POST that only reads.
- Request bodies are bounded (``max_body`` bytes, default 1 MiB: metadata, not model files): a
  longer ``Content-Length`` or a chunked body that grows past it is refused with 413.
- One lock serialises the requests' store work: LMDB readers never wait for a writer, but the
  store's map may grow during a write, which needs this process's other transactions closed.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
from typing import Callable, TypeVar

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidInput
from ..registry import Registry
from . import errors

T = TypeVar("T")
MAX_BODY = 1 << 20


class Store:
    """The registry a server serves, and the lock its requests take."""

    def __init__(self, registry: Registry, *, read_only: bool, token: str | None):
        self.registry = registry
        self.read_only = read_only
        self.token = token
        self.lock = threading.Lock()

    def run(self, body: Callable[[Registry], T]) -> T:
        with self.lock:
            return body(self.registry)


def store(request: Request) -> Store:
    return request.app.state.store


def writer(request: Request) -> Store:
    """The dependency of every route that changes the store: refuses read-only servers and,
    when the server has a token, requests without it."""
    s = store(request)
    if s.read_only:
        raise errors.Refused("this server is read-only (casreg serve --read-only)", 403)
    if s.token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise errors.Refused("writes need Authorization: Bearer <token>", 401)
        if not hmac.compare_digest(given.strip().encode(), s.token.encode()):
            raise errors.Refused("wrong token", 403)
    return s


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (413), declared or streamed.
    The body is read here, whole, before the app sees it (it is small: metadata)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, send)
            return
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await self._refuse(scope, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        request = Request(scope)
        response = errors.error_response(request, 413, f"request body over {self.limit} bytes")
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def is_loopback(host: str) -> bool:
    """True for an address (or a name resolving only to addresses) of this machine's loopback."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def check_bind(host: str, token: str | None) -> None:
    """A server reachable from other machines must have a token."""
    if not is_loopback(host) and not token:
        raise InvalidInput(f"--host {host} is reachable from other machines: give --token-file (writes then "
                           "need Authorization: Bearer <token>), or bind 127.0.0.1")


def read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read --token-file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"--token-file {path} is not UTF-8 text") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise InvalidInput(f"--token-file {path}: the token must be one word of 16+ characters")
    return token


def create_app(registry: Registry, *, read_only: bool = False, token: str | None = None,
               max_body: int = MAX_BODY) -> FastAPI:
    from .. import __version__
    from . import catalog_page, fate, files, kubeflow, rest
    app = FastAPI(title="casreg", version=__version__,
                  description="casreg's store through its own REST API (/api/casreg/v1), Kubeflow Model "
                              "Registry's REST API and FATE-Flow's model transfer; a web catalog at /.")
    app.state.store = Store(registry, read_only=read_only, token=token)
    errors.install(app)
    kubeflow.install(app)
    fate.install(app)
    files.install(app)
    rest.install(app)
    catalog_page.install(app)
    app.add_middleware(BodyLimit, limit=max_body)
    return app
