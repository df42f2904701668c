"""What every backend gets by being opened with ``open_backend``: traffic counting and retries,
as wrappers around the ``Backend`` interface (restic's ``RetryBackend`` model), so no backend
carries either.

``open_backend`` returns ``Retrying(TrafficCounting(backend))``: the counter sits inside the
retries, so it counts the calls that succeeded (a batch retried is counted once), while the backend
counts every request, failed attempts included. Attributes a wrapper does not define (``bad_refs``,
``traffic``, ``url``, a backend's own such as ``blobs``) are the wrapped backend's.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Collection, Iterator, TypeVar

import tenacity

from ..errors import RemoteUnreachable
from .base import Backend, StoredObject
from .listing import Listing

log = logging.getLogger("casreg.remotes")
T = TypeVar("T")

ATTEMPTS = 3            # in all, the first included
FIRST_WAIT = 0.25       # seconds before the second attempt; doubles, with jitter
MAX_WAIT = 4.0


class BackendWrapper(Backend):
    """A backend that forwards everything to ``inner``."""

    def __init__(self, inner: Backend):  # no Backend.__init__: url, u, traffic, bad_refs are inner's
        self.inner = inner
        self.batch_bytes = inner.batch_bytes  # class attributes of Backend: __getattr__ never sees them
        self.batch_objects = inner.batch_objects

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def unwrapped(self) -> Backend:
        inner = self.inner
        return inner.unwrapped() if isinstance(inner, BackendWrapper) else inner

    def describe(self) -> str:
        return self.inner.describe()

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        return self.inner.has_many(ids)

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        self.inner.put_many(items)

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        return self.inner.get_many(ids)

    def read_order(self, ids: list[bytes]) -> list[bytes]:
        return self.inner.read_order(ids)

    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        return self.inner.refs(names)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        return self.inner.set_ref_if_equals(name, old, new)

    def close(self) -> None:
        self.inner.close()

    # gc: forwarded as they are (Backend's defaults would not reach the inner backend)
    @property
    def clock_resolution(self) -> float:  # type: ignore[override]
        return self.inner.clock_resolution

    def collecting(self):
        return self.inner.collecting()

    def server_time(self) -> float:
        return self.inner.server_time()

    def list_objects(self) -> Iterator[StoredObject]:
        return self.inner.list_objects()

    def listing(self) -> Listing:
        return self.inner.listing()

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        return self.inner.condemn(items, uploaded_before)

    def absolve(self, items: list[StoredObject]) -> None:
        self.inner.absolve(items)

    def ref_log_targets(self, since: float) -> set[bytes]:
        return self.inner.ref_log_targets(since)

    def delete_condemned(self, items: list[StoredObject], cutoff: float, **options) -> tuple[int, int]:
        return self.inner.delete_condemned(items, cutoff, **options)

    def compact(self) -> bool:
        return self.inner.compact()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


class TrafficCounting(BackendWrapper):
    """Counts objects and object bytes sent and received in ``traffic`` (the inner backend's, where
    it counts its requests). Bytes are the objects' stored values: a backend's framing (a pack
    index, a range read spanning a gap, SQL escaping) is not in them."""

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        self.inner.put_many(items)
        self.traffic.objects_sent += len(items)
        self.traffic.bytes_sent += sum(len(v) for _, v in items)

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        for oid, value in self.inner.get_many(ids):
            self.traffic.objects_received += 1
            self.traffic.bytes_received += len(value)
            yield oid, value


def policy(timeout: float, attempts: int = ATTEMPTS, spent: float = 0.0) -> tenacity.Retrying:
    """Retry ``RemoteUnreachable`` only, up to ``attempts`` in all, backing off exponentially with
    jitter; no new attempt once ``2 * timeout`` has passed (a server that never answers fails in
    about twice its timeout, not ``attempts`` times it). Every other error is final at once:
    refused stays refused, garbage stays garbage. ``spent``: seconds a first attempt made outside
    the policy took (it counts against the delay)."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RemoteUnreachable),
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(max(0.0, 2 * timeout - spent)),
        wait=tenacity.wait_exponential(multiplier=FIRST_WAIT, max=MAX_WAIT) + tenacity.wait_random(0, FIRST_WAIT),
        before_sleep=_log_retry, reraise=True)


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    # debug: the CLI prints casreg's INFO records as notes, and an error must stay one line
    log.debug("%s; retrying in %.1f s (attempt %d failed)", exc, wait, state.attempt_number)


class Retrying(BackendWrapper):
    """Retries what failed with ``RemoteUnreachable`` (see ``policy``), where that is safe:

    - ``has_many``, ``refs``: reads, retried as they are.
    - ``put_many``: retried as it is. Objects are content-addressed and an id already there is
      skipped, so a batch that landed before its answer was lost lands again as a no-op.
    - ``get_many``: a stream. When it breaks, the ids not yet yielded are asked again (each is
      yielded once); the attempt budget starts afresh whenever an object arrives.
    - ``set_ref_if_equals``: the one call that may not be retried blindly. After a failure the
      swap may have landed; a blind retry would find the ref at ``new``, not ``old``, and report
      a loss that was a win (and a push that in fact moved the ref would say it did not). So
      before each retry the ref is read afresh: at ``new``, the swap is taken as landed (True);
      neither at ``old`` nor ``new``, someone else moved it (False); still at ``old``, the swap
      did not land and is sent again (a compare-and-swap from ``old`` again, so a first attempt
      still in flight that lands late finds the ref moved and changes nothing; on the ref log a
      late first attempt and the retry write the same entry under the same seq, create-only).
      The one ambiguity left: another writer moving the ref to the very same ``new`` meanwhile
      is also reported as our win; the ref is where the caller wanted it either way.
    """

    def __init__(self, inner: Backend, attempts: int = ATTEMPTS):
        super().__init__(inner)
        self.attempts = attempts

    def _policy(self, spent: float = 0.0) -> tenacity.Retrying:
        return policy(self.inner.u.timeout, self.attempts, spent)

    def _call(self, fn: Callable[..., T], *args) -> T:
        return self._policy()(fn, *args)

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        return self._call(self.inner.has_many, ids)

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        self._call(self.inner.put_many, items)

    def read_order(self, ids: list[bytes]) -> list[bytes]:
        return self._call(self.inner.read_order, ids)

    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        return self._call(lambda: self.inner.refs(names))

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        pending = dict.fromkeys(ids)
        stream: Iterator[tuple[bytes, bytes]] | None = None
        done = object()

        def step():
            nonlocal stream
            if stream is None:
                stream = iter(self.inner.get_many(list(pending)))
            try:
                return next(stream, done)
            except RemoteUnreachable:
                stream = None  # the next attempt asks again for what is still pending
                raise

        while pending:
            started = time.monotonic()
            try:  # the policy only once a step failed: entering it for each object was most of
                item = step()  # the CPU of a fetch of small chunks
            except RemoteUnreachable as exc:
                failed = [exc]

                def again(failed=failed):
                    if failed:
                        raise failed.pop()  # the attempt that failed above, counted by the policy
                    return step()
                item = self._policy(time.monotonic() - started)(again)
            if item is done:
                return
            oid, value = item
            if oid in pending:
                del pending[oid]
                yield oid, value

    # gc calls are idempotent (a condemnation keeps its first stamp, deletes are conditional):
    # retried as they are; a listing is retried whole.
    def server_time(self) -> float:
        return self._call(self.inner.server_time)

    def list_objects(self) -> Iterator[StoredObject]:
        return iter(self._call(lambda: list(self.inner.list_objects())))

    def listing(self) -> Listing:  # streamed into its columns, not a list of StoredObject first
        return self._call(self.inner.listing)

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        return self._call(self.inner.condemn, items, uploaded_before)

    def absolve(self, items: list[StoredObject]) -> None:
        self._call(self.inner.absolve, items)

    def ref_log_targets(self, since: float) -> set[bytes]:
        return self._call(self.inner.ref_log_targets, since)

    def delete_condemned(self, items: list[StoredObject], cutoff: float, **options) -> tuple[int, int]:
        return self._call(lambda: self.inner.delete_condemned(items, cutoff, **options))

    def compact(self) -> bool:
        return self._call(self.inner.compact)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        failed = False

        def attempt() -> bool:
            nonlocal failed
            if failed:  # the last attempt may have landed: look before sending it again
                current = self.inner.refs([name]).get(name)
                if current == new:
                    return True
                if current != old:
                    return False
            try:
                won = self.inner.set_ref_if_equals(name, old, new)
            except RemoteUnreachable:
                failed = True
                raise
            if not won and failed:  # a lost answer's swap may have landed just before this one
                return self.inner.refs([name]).get(name) == new
            return won

        return self._call(attempt)


def wrap(backend: Backend) -> Backend:
    """What ``open_backend`` hands out."""
    return Retrying(TrafficCounting(backend))
