"""``gc --remote``: delete what no ref of a remote reaches, safe beside pushes, with no lock.

One run, on any backend (the contract's gc methods, ``base.py``):

1. ``now`` by the server's clock; the listing of every stored copy (id, size, upload time,
   condemnation time).
2. Mark: from every remote ref (strictly: an object they reach that is missing or damaged stops
   gc before it changes anything) and from the ref log's entries of the grace period (leniently:
   what is gone below them is skipped), with ``graph.walk`` over ``sync.RemoteLoader``: objects
   read from the remote a level at a time and verified as they are read, delta bases included.
3. Unreachable copies: uploaded within the grace period, kept (a push that has not moved its ref
   yet); condemned at least the grace period ago, deleted; the others condemned now (from then
   on no push is offered them: ``has_many`` hides them, a push uploads them anew). Reachable
   copies that were condemned are absolved. With grace 0 what is condemned goes at once.

Why that is safe with pushes racing it, case by case: docs/design.md, "gc on a remote".
The one assumption: a push moves its ref within the grace period of its ``has_many``/uploads.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from ..errors import CasregError, Corrupt, RemoteError
from ..objects.encoding import COMMIT
from ..objects.graph import halt, walk
from ..timespec import parse_duration
from .base import Backend, StoredObject
from .listing import Listing
from .sync import RemoteLoader

DEFAULT_GRACE = "1d"   # longer than any push takes from its first has_many to its ref move
REPACK_BELOW = 0.5     # COS/S3: a pack whose remaining objects are under this share of its bytes is rewritten


@dataclass
class RemoteGcResult:
    remote: str
    dry_run: bool
    grace_seconds: float | None
    refs: int = 0
    reachable_objects: int = 0
    stored_objects: int = 0          # copies listed (COS/S3: an id in two packs counts twice)
    stored_bytes: int = 0
    young_objects: int = 0           # unreachable, uploaded within the grace period: kept
    condemned_objects: int = 0       # condemned by this run (would be, with dry_run)
    waiting_objects: int = 0         # condemned earlier, within the grace period: kept until a later gc
    absolved_objects: int = 0        # condemned earlier, reachable again
    deletable_objects: int = 0       # what this run may delete (the whole of it with dry_run)
    deletable_bytes: int = 0
    deleted_objects: int = 0
    deleted_bytes: int = 0
    compacted: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def collect(backend: Backend, *, remote: str = "", grace: str = DEFAULT_GRACE, dry_run: bool = False,
            repack_below: float = REPACK_BELOW, compact: bool | None = None) -> RemoteGcResult:
    """One gc of ``backend`` (see the module docstring); ``grace`` a duration (``now``, ``1d``)."""
    seconds = parse_duration(grace)
    started = time.monotonic()
    result = RemoteGcResult(remote, dry_run, seconds if math.isfinite(seconds) else None)
    with backend.collecting():
        now = time.time() if dry_run else backend.server_time()  # a dry run writes nothing (COS/S3 would)
        slack = backend.clock_resolution if seconds > 0 else 0.0  # a time rounded down is older
        old_before = now - seconds - slack
        listing = backend.listing()
        result.stored_objects, result.stored_bytes = len(listing), listing.total_bytes
        keep = _mark(backend, listing, now - seconds if seconds > 0 else None, result)  # now: no log roots
        absolve, condemn, deletable = _classify(listing, keep, old_before, seconds, result)
        result.deletable_objects = len(deletable) + (len(condemn) if seconds == 0 else 0)
        result.deletable_bytes = sum(o.size for o in deletable) + (sum(o.size for o in condemn) if seconds == 0 else 0)
        if dry_run:
            result.condemned_objects = len(condemn)
        else:
            if absolve:
                backend.absolve(absolve)
            result.condemned_objects = backend.condemn(condemn, old_before) if condemn else 0
            cutoff = old_before
            if seconds == 0:  # "now": what was just condemned goes too
                deletable += condemn
                cutoff = backend.server_time()
            result.deleted_objects, result.deleted_bytes = backend.delete_condemned(
                deletable, cutoff, repack_below=repack_below, debris_before=old_before)
            if compact is None:
                compact = result.deleted_bytes >= min(64 << 20, result.stored_bytes // 10) > 0
            result.compacted = bool(compact) and backend.compact()
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _classify(listing: Listing, keep: dict[bytes, int], old_before: float, grace: float,
              result: RemoteGcResult) -> tuple[list[StoredObject], list[StoredObject], list[StoredObject]]:
    """(copies to absolve, to condemn, that may be deleted)."""
    absolve, condemn, deletable = [], [], []
    for oid, copies in listing.groups():  # copies of an id side by side
        live = oid in keep
        spare = live and any(not listing.is_condemned(i) for i in copies)  # a reachable id with a clean copy
        for i in copies:
            if not listing.is_condemned(i):
                if live:
                    continue
                if listing.uploaded_at(i) <= old_before:
                    condemn.append(listing.item(i))
                else:
                    result.young_objects += 1
            elif live and not spare:
                absolve.append(listing.item(i))
                result.absolved_objects += 1
            elif grace == 0 or listing.condemned_at(i) <= old_before:
                deletable.append(listing.item(i))
            else:
                result.waiting_objects += 1
    return absolve, condemn, deletable


def _mark(backend: Backend, listing: Listing, log_since: float | None, result: RemoteGcResult) -> dict[bytes, int]:
    refs = backend.refs()
    if backend.bad_refs:  # what they point at is unknown: sweeping could take a live version
        name, why = next(iter(backend.bad_refs.items()))
        raise RemoteError(f"gc --remote stopped before deleting anything: {len(backend.bad_refs)} unusable "
                          f"ref(s) on the remote ({name}: {why}); remove or repair them first")
    result.refs = len(refs)
    try:
        keep = walk(((t, COMMIT) for t in set(refs.values())), RemoteLoader(backend), on_problem=halt)
    except (Corrupt, RemoteError) as exc:
        raise type(exc)(f"gc --remote stopped before deleting anything: {exc}; "
                        "run `casreg verify --remote NAME --full`") from None
    logged = [(t, COMMIT) for t in backend.ref_log_targets(log_since) if t in listing] if log_since is not None else []
    keep.update(walk(logged, RemoteLoader(backend, only=listing), known=keep, on_problem=_skip))
    result.reachable_objects = len(keep)
    return keep


def _skip(oid: bytes, kind: int, error: CasregError) -> None:
    """The ref log's roots are lenient: what is missing or damaged below them is not followed."""
