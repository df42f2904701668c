"""What a remote must offer: opaque objects by id, refs with an atomic compare-and-swap.

Like restic's backends, a backend knows nothing about chunks, manifests or commits: negotiation,
write order, verification and progress live once, in ``sync.py``. Every call takes a batch, so a
backend can answer it in one round trip (pipelines, ``IN (...)`` queries, packs with ranged reads).

Object values are the store's own stored form (kind byte, codec byte, payload): compressed,
self-describing, and re-hashed by the receiver before it keeps anything.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..errors import CasregError, Corrupt
from ..refs.names import check_ref_name

log = logging.getLogger("casreg.remotes")


@dataclass
class Traffic:
    """What crossed the wire, for the benchmarks and for the user."""
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    objects_sent: int = 0
    objects_received: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)


class Backend:
    """Base of every backend. Subclasses implement the six methods below and count traffic."""

    def __init__(self, url: str):
        from .config import parse_url
        self.url = url
        self.u = parse_url(url)  # InvalidURL before anything connects
        self.bad_refs: dict[str, str] = {}  # what the last refs() skipped: printable name -> why
        self.traffic = Traffic()

    # -- objects ---------------------------------------------------------------------------------
    def has_many(self, ids: list[bytes]) -> set[bytes]:
        """The subset of ``ids`` the remote holds."""
        raise NotImplementedError

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        """Store (id, value) pairs; values already there may be skipped."""
        raise NotImplementedError

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """(id, value) for each id; raises RemoteError naming an id the remote lacks."""
        raise NotImplementedError

    # -- refs ------------------------------------------------------------------------------------
    def refs(self) -> dict[str, bytes]:
        """Every valid ref on the remote and the commit id it points at (see ``_accept_refs``)."""
        raise NotImplementedError

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        """Atomically move ``name`` from ``old`` (None: absent) to ``new`` (None: delete).
        False, changing nothing, if the ref is not at ``old``."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- helpers for subclasses ------------------------------------------------------------------
    def describe(self) -> str:
        return redact(self.url)

    def _accept_refs(self, pairs: Iterable[tuple]) -> dict[str, bytes]:
        """The refs among (name, target) pairs read from the server, checked by ``remote_ref``; a
        target may also be the CasregError met reading it. The others are skipped with a warning and
        kept in ``bad_refs``: one damaged ref never hides the rest, nor fails every fetch."""
        good, self.bad_refs = {}, {}
        for name, target in pairs:
            try:
                if isinstance(target, CasregError):
                    raise target
                ref, good_target = remote_ref(name, target)
                good[ref] = good_target
            except CasregError as exc:
                shown = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)
                self.bad_refs[shown] = str(exc)
                log.warning("%s: skipping a ref: %s", self.describe(), exc)
        return good


def remote_ref(name: bytes | str, target) -> tuple[str, bytes]:
    """A (name, target) pair as a server gave it, checked: the name valid UTF-8 and a legal ref name,
    the target a commit id (32 bytes, or 64 hex digits). Raises a CasregError naming what is wrong."""
    if isinstance(name, bytes):
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            raise Corrupt(f"ref name {name!r} is not UTF-8") from None
    check_ref_name(name)
    if isinstance(target, str) and re.fullmatch(r"[0-9a-f]{64}", target):
        target = bytes.fromhex(target)
    if not isinstance(target, bytes) or len(target) != 32:
        raise Corrupt(f"ref {name!r} points at {repr(target)[:80]}, not a commit id (32 bytes or 64 hex digits)")
    return name, target


def batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def redact(url: str) -> str:
    """A URL with any password replaced, safe to print, even when the URL does not parse."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not (at and ":" in userinfo):
        return url
    return f"{head}://{userinfo.partition(':')[0]}:***@{hostport}{rest[end:]}"
