"""What a remote must offer: opaque objects by id, refs with an atomic compare-and-swap.

Like restic's backends, a backend knows nothing about chunks, manifests or commits: negotiation,
write order, verification and progress live once, in ``sync.py``. Every call takes a batch, so a
backend can answer it in one round trip (pipelines, ``IN (...)`` queries, packs with ranged reads).

Object values are the store's own stored form (kind byte, codec byte, payload): compressed,
self-describing, and re-hashed by the receiver before it keeps anything. A backend never checks a
value against its id; it stores and returns bytes.

The contract every backend keeps (``tests/test_backend_contract.py`` runs it against each real
server):

Errors. Every failure a call meets is a ``RemoteError`` with a one-line message naming the remote,
of the narrowest class that fits, whatever the SDK raised:

- ``RemoteUnreachable`` (exit 6): no connection, a connection lost, no answer within the URL's
  ``timeout``, or a gateway's "try again" (HTTP 502/503/504). The only class ``Retrying`` retries.
  When it comes from a write, the write **may have landed**.
- ``RemoteRefused`` (exit 7): the server answered no: authentication, permission, read-only, full.
- ``RemoteError`` (exit 8): the server answered with something unusable: it lacks an object, its
  reply does not parse (not the protocol the URL names), its layout is damaged, an unknown schema.
- ``InvalidURL`` (exit 2) from the constructor, before anything connects (``parse_url``).

Constructors connect (one cheap round trip), so a wrong URL fails at ``open_backend``, not at the
first push. Backends do not retry: the SDKs' own retries are off, so that ``Retrying`` alone decides
(an SDK retrying a compare-and-swap behind our back could turn a win into a reported loss).

Idempotence. Objects are content-addressed: putting an id already there is harmless whatever the
value sent (the first value stays; the receiver's re-hash makes the difference moot), and a
``put_many`` retried after it may have landed leaves the same state as one that ran once.
``has_many``, ``get_many`` and ``refs`` change nothing. A ``set_ref_if_equals`` retried blindly is
*not* idempotent (its retry sees its own write and reports a loss); see ``Retrying`` for how the
one retry that is safe is made.

Traffic. ``traffic`` counts what crossed the wire. Backends count ``requests`` (round trips: only
they know how a batch maps to requests); ``TrafficCounting`` counts objects and their bytes at this
interface, once per call that succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Collection, ContextManager, Iterable, Iterator

from ..errors import CasregError, Corrupt
from ..refs.names import check_ref_name

if TYPE_CHECKING:
    from .listing import Listing

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
    """Base of every backend. Subclasses implement the six methods below and count ``requests``.

    ``open_backend`` hands out every backend wrapped (``Retrying(TrafficCounting(backend))``, see
    ``wrappers.py``); attributes it does not define are the wrapped backend's."""

    def __init__(self, url: str):
        from .config import parse_url
        self.url = url
        self.u = parse_url(url)  # InvalidURL before anything connects
        self.bad_refs: dict[str, str] = {}  # what the last refs() skipped: printable name -> why
        self.traffic = Traffic()

    clock_resolution = 0.0  # seconds the server's upload times are rounded to (COS/S3: 1)
    # Bytes of objects per ``put_many`` a push sends: enough to keep a pipeline or a transaction
    # busy; a push holds about four times this in memory (the batch read, the one uploading, the
    # client's encoding). COS/S3 take more: each batch is one pack object.
    batch_bytes = 8 << 20
    # ...and at most this many objects: 8 MiB of manifests is ~80,000 of them, whose one LMDB
    # transaction dirtied a copy of most of the remote's B-tree (a 3x10^5-chunk push: +150 MB).
    batch_objects = 4096

    # -- objects ---------------------------------------------------------------------------------
    def has_many(self, ids: list[bytes]) -> set[bytes]:
        """The subset of ``ids`` the remote holds, as far as a reader may use them: an id is in it
        only if ``get_many`` would return its value (a COS/S3 pack without its index is not)."""
        raise NotImplementedError

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        """Store (id, value) pairs; ids already there are skipped (their stored value stays).

        Atomicity is **per object**, never torn: a reader sees an object whole or not at all. A
        batch is not atomic in general: after a crash or an error mid-batch a reader may see any
        subset of it (MySQL happens to commit a batch as one transaction, COS/S3 make a batch
        visible at once by writing its pack index last, Redis writes objects one by one). That is
        why ``sync`` writes bases before deltas and commits last, batch by batch, and moves a ref
        only after every ``put_many`` returned: what a ref names is always complete. Returning
        means every object of the batch is durable on the server. Idempotent: see above."""
        raise NotImplementedError

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        """(id, value) for each of ``ids`` (distinct), each exactly once, in **any order** (COS/S3
        yield in pack order, to read each pack range once). An id the remote lacks raises
        ``RemoteError`` whose message names it in hex ("... lacks object <hex>"); it may come after
        some pairs were yielded (or before any), so a caller keeps nothing it has not checked.
        Values are returned as stored, unchecked: ``sync.verified`` re-hashes them."""
        raise NotImplementedError

    def read_order(self, ids: list[bytes]) -> list[bytes]:
        """``ids`` in the order ``get_many`` reads cheapest, for a caller that fetches many in
        batches (COS/S3: by pack and offset, so a batch is a range or two of one pack, not a range
        per object). The same ids, none dropped (one the remote lacks is get_many's to report);
        may read what the remote holds (an error as ``has_many``'s). Default: as given."""
        return ids

    # -- refs ------------------------------------------------------------------------------------
    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        """Every valid ref on the remote -> the 32-byte commit id it points at, as of one moment
        (MySQL, Redis, file) or one listing (COS/S3). A ref whose name or target is damaged is
        skipped with a warning and kept in ``bad_refs`` (see ``_accept_refs``): one bad ref never
        hides the others nor fails the call. A deleted ref is absent.

        With ``names`` (legal ref names), only those refs are read: a name the remote lacks (or
        whose ref was deleted) is absent from the result, never an error, and the cost follows
        ``len(names)``, not the refs the remote holds (Redis ``HMGET``, MySQL ``WHERE name IN``
        in batches, file:// one lookup each, COS/S3 a listing of each name's log, or of the
        whole ref log when many names are asked). What a push and a named fetch read."""
        raise NotImplementedError

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        """Atomically move ``name`` from ``old`` to ``new``: a compare-and-swap on the server.

        ``old`` None means "only if absent" (create), ``new`` None means delete (both None is
        undefined: callers never ask it). True: the ref was at ``old`` and is now at ``new``. False,
        changing nothing: it was not at ``old`` (someone else moved it). Of racing callers with the
        same ``old``, exactly one gets True. A damaged current value refuses the update with a
        ``RemoteError``/``Corrupt`` naming the ref (never silently overwritten). It does not check
        that ``new`` exists on the remote: the caller puts the objects first. An error (above) may
        mean the swap landed or not; only a fresh read of the ref tells."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # -- garbage collection (``gc.py``; the design and its safety argument: docs/design.md) --
    # An object is *condemned* once a gc found no ref reaching it. A condemned object is still
    # stored and ``get_many`` still returns it, but ``has_many`` no longer reports it and a
    # ``put_many`` of its id clears the condemnation (a push that needs it uploads it again).
    # Only a condemned object can be deleted, by ``delete_condemned``, atomically against a
    # ``put_many`` of the same id. Times are the server's clock (``server_time``), in seconds.
    # Errors are those of every call (above). All of these are idempotent.
    def collecting(self) -> ContextManager:
        """Held by a gc from its mark to its last delete. No lock on a server (a crashed gc must
        leave nothing behind): a null context, except file://, whose store's own commits hold
        its gc lock (a ``flock``, released by the kernel when its holder dies)."""
        return contextlib.nullcontext()

    def server_time(self) -> float:
        """Now, by the clock that stamps uploads and condemnations (file://: this machine's)."""
        raise NotImplementedError

    def list_objects(self) -> Iterator[StoredObject]:
        """Every stored copy of an object: id, stored size, upload time (of its latest
        ``put_many``; 0.0 if the backend kept none, e.g. put by an older casreg), condemnation
        time (None if not condemned) and ``where`` (COS/S3: its pack; "" elsewhere). Consistent
        per object, not across the listing: objects put or deleted meanwhile may or may not
        appear."""
        raise NotImplementedError

    def listing(self) -> Listing:
        """``list_objects`` read whole into a gc's ``Listing`` (what a retry repeats whole)."""
        from .listing import Listing
        return Listing(self.list_objects(), self.describe())

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        """Condemn these copies, stamped now, if still uploaded at or before ``uploaded_before``
        (a copy put again since is skipped, as is one gone; one already condemned keeps its older
        stamp). Returns how many were newly condemned."""
        raise NotImplementedError

    def absolve(self, items: list[StoredObject]) -> None:
        """Clear the condemnation of these copies (a ref reaches them again: a push relied on them
        before they were condemned). COS/S3, whose records are written once, copy those with no
        clean copy into a new pack instead."""
        raise NotImplementedError

    def ref_log_targets(self, since: float) -> set[bytes]:
        """Every commit id a ref log entry written at or after ``since`` names (old and new), for
        backends that keep a ref log (file://: the store's reflog; COS/S3: the ref log keys'
        upload times); empty for Redis and MySQL, which keep none."""
        return set()

    def delete_condemned(self, items: list[StoredObject], cutoff: float, *,
                         repack_below: float = 0.5,
                         debris_before: float | None = None) -> tuple[int, int]:
        """Delete those of these copies that are still condemned, by a stamp at or before
        ``cutoff``: (objects, bytes) freed. Atomic per object against ``put_many``: a put that
        came first cleared the condemnation (nothing deleted), one that comes after stores the
        object anew. COS/S3 delete whole packs: a pack whose every other object is gone or
        deletable goes (index first), one whose remaining objects' share of its bytes is under
        ``repack_below`` has them copied into a new pack, indexed create-only, before it goes; a
        pack holding an object condemned later than ``cutoff`` waits for a later gc; packs without
        an index uploaded at or before ``debris_before`` (killed pushes and repacks) go too."""
        raise NotImplementedError

    def compact(self) -> bool:
        """Give freed space back to the server's disk where deletes alone do not (MySQL:
        ``OPTIMIZE TABLE``; file://: the store file, when nothing else has it open). True if it
        did anything."""
        return False

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


@dataclass(frozen=True, slots=True)  # a gc lists every copy: no __dict__ each (~100 bytes)
class StoredObject:
    """One stored copy of an object, as ``Backend.list_objects`` reports it."""
    id: bytes
    size: int
    uploaded: float
    condemned: float | None = None
    where: str = ""


HAVE_BATCH = 1000  # ids per has_many call (push negotiation, verify --remote)


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
