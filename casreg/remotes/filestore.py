"""``file:///path``: another casreg store on this machine (the fastest way to test a remote).

For gc (``gc.py``) the store gets one more LMDB database, ``remote-gc``: id -> (upload time,
condemnation time or -1), written in the transaction that writes the object, by this machine's
clock. Objects committed in that store directly have no entry (they read as uploaded long ago);
their commits hold the store's gc lock, which ``collecting`` takes exclusively.
"""

from __future__ import annotations

import math
import os
import struct
import time
from dataclasses import replace
from typing import Collection, Iterator

from ..errors import RemoteError
from .base import Backend, StoredObject
from .registry import Scheme, register

MARKS = "remote-gc"
MARK = struct.Struct("<dd")  # upload time, condemnation time (-1: none)


class FileBackend(Backend):
    # LMDB keeps the pages a write dirtied for the next transactions: a transaction of random keys
    # dirties a leaf per key, so its size is the push's memory (4096 objects: ~100 MB at 3x10^5)
    batch_objects = 1024

    def __init__(self, url: str, create: bool = False):
        super().__init__(url)
        from ..repo import Repository
        path = self.u.path
        if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "data.mdb")):
            if not create:
                raise RemoteError(f"remote {self.describe()}: not a casreg store")
            Repository.init(path).close()
        self.repo = Repository(path)
        self.marks = self.repo.db.table(MARKS)

    def _mark(self, txn, oid: bytes) -> tuple[float, float]:
        value = txn.get(oid, db=self.marks)
        return MARK.unpack(value) if value is not None else (0.0, -1.0)

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        self.traffic.requests += 1
        missing = set(self.repo.objects.missing(ids))
        with self.repo.db.read() as txn:  # a condemned object is not offered to a push
            held = {oid for i, oid in enumerate(ids) if i not in missing and self._mark(txn, oid)[1] < 0}
        self.repo.db.release_pages()  # a push asks about every object: its pages must not pile up
        return held

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        self.traffic.requests += 1

        def put(txn):
            self.repo.objects.put_values(txn, items)  # unmaps its pages as it goes
            stamp = MARK.pack(time.time(), -1.0)  # a put clears a condemnation
            for oid, _ in self.repo.db.releasing(items):  # random keys: each put faults a leaf in
                txn.put(oid, stamp, db=self.marks)
        self.repo.db.write(put)

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        self.traffic.requests += 1
        with self.repo.db.read() as txn:
            for oid in self.repo.db.releasing(ids):  # a clone reads every page of the remote
                value = self.repo.objects.value(txn, oid)
                if value is None:
                    raise RemoteError(f"remote {self.url} lacks object {oid.hex()}")
                yield oid, bytes(value)

    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        self.traffic.requests += 1
        if names is None:
            return self._accept_refs(self.repo.list_refs())
        with self.repo.db.read() as txn:
            found = [(n, self.repo.refs.get(txn, n)) for n in dict.fromkeys(names)]
        return self._accept_refs((n, t) for n, t in found if t is not None)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        from ..errors import RefConflict
        from ..repo import default_author
        self.traffic.requests += 1

        def move(txn):
            if new is None:
                self.repo.refs.remove_if_equals(txn, name, old, who=default_author(), message="push: delete")
            else:
                self.repo.refs.set_if_equals(txn, name, old, new, who=default_author(), message="push")
        try:
            self.repo.db.write(move)
        except RefConflict:
            return False
        return True

    # -- gc ----------------------------------------------------------------------------------------
    def server_time(self) -> float:
        return time.time()

    def collecting(self):
        return self.repo.collecting_garbage()

    def list_objects(self) -> Iterator[StoredObject]:
        self.traffic.requests += 1
        with self.repo.db.read() as txn:  # one snapshot, streamed: not a list of every copy
            for oid, value in self.repo.objects.iter_values(txn):
                uploaded, condemned = self._mark(txn, oid)
                yield StoredObject(oid, len(value), uploaded, None if condemned < 0 else condemned)

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        self.traffic.requests += 1
        now = time.time()

        def condemn(txn) -> int:
            n = 0
            for item in items:
                uploaded, condemned = self._mark(txn, item.id)
                if condemned < 0 and uploaded <= uploaded_before and self.repo.objects.has(txn, item.id):
                    txn.put(item.id, MARK.pack(uploaded, now), db=self.marks)
                    n += 1
            return n
        return self.repo.db.write(condemn)

    def absolve(self, items: list[StoredObject]) -> None:
        self.traffic.requests += 1

        def absolve(txn) -> None:
            for item in items:
                uploaded, condemned = self._mark(txn, item.id)
                if condemned >= 0:
                    txn.put(item.id, MARK.pack(uploaded, -1.0), db=self.marks)
        self.repo.db.write(absolve)

    def delete_condemned(self, items: list[StoredObject], cutoff: float, *,
                         repack_below: float = 0.5,
                         debris_before: float | None = None) -> tuple[int, int]:
        self.traffic.requests += 1

        def delete(txn) -> tuple[int, int]:
            objects = size = 0
            for item in items:
                condemned = self._mark(txn, item.id)[1]
                value = self.repo.objects.value(txn, item.id)
                if 0 <= condemned <= cutoff and value is not None:
                    objects, size = objects + 1, size + len(value)
                    self.repo.objects.delete(txn, item.id)
                    txn.delete(item.id, db=self.marks)
            return objects, size
        return self.repo.db.write(delete)

    def ref_log_targets(self, since: float) -> set[bytes]:
        self.traffic.requests += 1
        with self.repo.db.read() as txn:
            return self.repo.refs.logged_targets(txn, since)

    def compact(self) -> bool:
        if not self.repo.compact():  # another process has the store open
            return False
        self.marks = self.repo.db.table(MARKS)  # the environment was reopened
        return True

    def close(self) -> None:
        self.repo.close()


def _check_url(out, netloc: str, path: str, bad):
    if netloc not in ("", "localhost") or not path:
        raise bad("use file:///absolute/path/to/store")
    return replace(out, path=path)


register(Scheme("file", lambda url, secrets, create=False, cache_dir=None: FileBackend(url, create=create),
                check_url=_check_url))
