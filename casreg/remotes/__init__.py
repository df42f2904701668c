"""Remotes: push/fetch/pull through COS, S3, MySQL, Redis or another store, moving only what lacks."""

from __future__ import annotations

from ..errors import RemoteError
from .base import Backend


def open_backend(url: str, secrets: dict | None = None, *, create: bool = False,
                 cache_dir: str | None = None) -> Backend:
    """The backend for a URL (any scheme in ``registry.BACKEND_MODULES``: file://, redis://,
    mysql://, cos://, s3://), checked by ``parse_url`` first, wrapped in traffic counting and
    retries (``wrappers.wrap``). Connecting is retried like any call (``wrappers.policy``).
    ``cache_dir`` keeps what a backend may cache between runs (COS/S3 pack indexes and ref log
    entries, each trusted only while the server lists it with the same ETag)."""
    from .config import parse_url
    from .registry import schemes
    from .wrappers import policy, wrap
    u = parse_url(url)
    scheme = schemes()[u.scheme]
    scheme.require_sdk()
    backend = policy(u.timeout)(scheme.open, url, secrets or {}, create=create, cache_dir=cache_dir)
    return wrap(backend)


__all__ = ["Backend", "RemoteError", "open_backend"]
