"""Remotes: push/fetch/pull through COS, MySQL, Redis or another store, moving only what lacks."""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import Backend, RemoteError


def open_backend(url: str, secrets: dict | None = None, *, create: bool = False) -> Backend:
    """The backend for a URL (file://, redis://, mysql://, cos://)."""
    scheme = urlsplit(url).scheme
    secrets = secrets or {}
    if scheme == "file":
        from .filestore import FileBackend
        return FileBackend(url, create=create)
    if scheme == "redis":
        from .redis_backend import RedisBackend
        return RedisBackend(url, secrets)
    if scheme == "mysql":
        from .mysql_backend import MySQLBackend
        return MySQLBackend(url, secrets)
    if scheme == "cos":
        from .cos_backend import COSBackend
        return COSBackend(url, secrets)
    raise RemoteError(f"unsupported remote URL scheme {scheme!r}")


__all__ = ["Backend", "RemoteError", "open_backend"]
