"""``verify --full``: every stored object decompressed and re-hashed, on both cores; a delta is
rebuilt from its bases, so a corrupt or missing base shows up as a problem with the delta too."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import lmdb

from ..db import RELEASE_EVERY
from ..errors import CasregError
from ..progress import OBJECTS
from .store import ObjectStore, decode_checked

BATCH_BYTES = 16 << 20
IN_FLIGHT = 4


def _check_batch(batch, bases: dict, release) -> list[tuple[bytes, int, str]]:
    bad = []
    cache: dict = {}
    for n, (oid, kind, tag, payload) in enumerate(batch, 1):
        if n % RELEASE_EVERY == 0:
            release()  # the pages this worker faulted back in: RSS stays flat
        try:
            decode_checked(oid, tag, payload, bases.__getitem__, cache)
        except CasregError as exc:
            bad.append((oid, kind, f"corrupt: {exc}"))
    return bad


def rehash_all(objects: ObjectStore, txn: lmdb.Transaction, progress, workers: int = 2
               ) -> Iterator[tuple[bytes, int, str]]:
    """(id, kind, problem) for every stored object whose bytes do not hash to its id."""
    total = objects.count(txn)
    progress.start("verify", total, OBJECTS)
    pending: deque = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="casreg-verify") as pool:
        batch: list[tuple[bytes, int, int, memoryview]] = []
        bases: dict[bytes, tuple[int, bytes]] = {}  # delta base id -> (codec, payload copied out of the map)
        size = 0
        for item in objects.iter_stored(txn):
            oid, kind, tag, payload = item
            try:
                objects.add_bases(txn, tag, payload, bases, copy=True)
            except CasregError as exc:
                yield oid, kind, f"corrupt: {exc}"
                continue
            batch.append(item)
            size += len(payload)
            if size >= BATCH_BYTES:
                pending.append((pool.submit(_check_batch, batch, bases, objects.db.release_pages), len(batch)))
                batch, bases, size = [], {}, 0
                while len(pending) >= IN_FLIGHT:
                    fut, n = pending.popleft()
                    yield from fut.result()
                    progress.advance(n)
                    objects.db.release_pages()  # RSS stays flat however large the store
        if batch:
            pending.append((pool.submit(_check_batch, batch, bases, objects.db.release_pages), len(batch)))
        while pending:
            fut, n = pending.popleft()
            yield from fut.result()
            progress.advance(n)
