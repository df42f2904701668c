"""Remotes: push/fetch/pull through COS, MySQL, Redis or another store, moving only what lacks."""

from __future__ import annotations

from ..errors import RemoteError
from .base import Backend


def open_backend(url: str, secrets: dict | None = None, *, create: bool = False,
                 cache_dir: str | None = None) -> Backend:
    """The backend for a URL (file://, redis://, mysql://, cos://), checked by ``parse_url`` first.
    ``cache_dir`` keeps what a backend may cache between runs (COS pack indexes and ref log
    entries, each trusted only while the server lists it with the same ETag)."""
    from .config import parse_url
    scheme = parse_url(url).scheme
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
    from .cos_backend import COSBackend
    return COSBackend(url, secrets, cache_dir=cache_dir)


__all__ = ["Backend", "RemoteError", "open_backend"]
