"""The small interface an object store (COS, S3) offers the pack layout (``packs.py``).

Keys are relative to the store's prefix (``packs/<id>``, ``index/<id>``, ``refs/<name>:<seq>``);
an implementation adds the prefix, maps its SDK's failures to the ``RemoteError`` classes of
``base.py`` and counts one ``traffic.requests`` per round trip. ETags are returned without quotes,
"" where the server gives none.

What the pack layout relies on:

- ``put`` replaces the key whole: a reader sees the old body or the new one, never a mix (every
  S3-like store promises that of a single PUT).
- ``put_if_absent`` is create-only on the server: of racing writers of one key, exactly one gets
  its ETag, the others None. Everything the ref log's compare-and-swap is rests on that.
- ``list_info`` gives keys in byte order and can start after a given key (``after``).
- ``list`` is complete for keys written before it started (read-after-write listing, which S3,
  COS and SeaweedFS give today).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..errors import RemoteError
from .base import Traffic


@dataclass(frozen=True)
class BlobInfo:
    """What a listing says of a key: ETag, size, upload time (the server's clock, epoch seconds)."""
    etag: str
    size: int = 0
    modified: float = 0.0


class BlobMissing(RemoteError):
    """The key does not exist (exit 8 like any object a remote lacks)."""


class BlobStore:
    where = "object store"     # how messages name it: "S3 bucket b", "COS bucket b-125..."
    prefix = ""                # what every key is under, without the trailing "/"
    traffic: Traffic           # the backend's, shared
    page_keys = 1000           # keys per listing request (the most S3 and COS give)

    def full_key(self, key: str) -> str:
        """The key as the server names it."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, folder: str) -> dict[str, str]:
        """Name (after ``folder/``) -> ETag of every key under ``folder/``."""
        return {name: info.etag for name, info in self.list_info(folder).items()}

    def list_info(self, folder: str, starting: str = "", after: str = "") -> dict[str, BlobInfo]:
        """Name (after ``folder/``) -> ``BlobInfo`` of every key under ``folder/`` whose name
        starts with ``starting`` (one ref's log: ``list_info("refs", "models/m:")``) and sorts
        after ``after`` (byte order, as listings give keys: COS ``Marker``, S3 ``StartAfter``),
        so a listing costs what is named after it, not what the folder holds."""
        raise NotImplementedError

    def get(self, key: str, byte_range: tuple[int, int] | None = None) -> tuple[bytes, str]:
        """The body (or bytes ``[start, end)`` of it) and the ETag; ``BlobMissing`` if absent."""
        raise NotImplementedError

    def head(self, key: str) -> str | None:
        """The ETag of ``key``, None if absent."""
        raise NotImplementedError

    def put(self, key: str, body: bytes) -> str:
        """Write ``body`` at ``key`` (replacing it); its ETag."""
        raise NotImplementedError

    def put_if_absent(self, key: str, body: bytes) -> str | None:
        """Write ``body`` only if ``key`` does not exist: its ETag, or None if it existed."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def strip_etag(value) -> str:
    return str(value or "").strip('"')


def listed_time(value) -> float:
    """A listing's LastModified (a datetime from boto3, ISO 8601 text from COS) in epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RemoteError(f"a listing gave {str(value)[:40]!r} as a time") from None
