"""Objects in the LMDB ``objects`` database: ``id -> kind byte, codec byte, payload``.

This is the only module that knows the stored value layout.
"""

from __future__ import annotations

from typing import Iterator

import lmdb

from ..db import Database
from ..errors import Corrupt, NotFound
from . import codec
from .encoding import DECODERS, KIND_NAMES, object_id

HEADER = 2
# Every B-tree lookup maps ~1 MB of the data file (large page-cache folios); unmap that often.
RELEASE_EVERY = 48


def pack(kind: int, codec_tag: int, payload) -> bytes:
    return b"".join((bytes((kind, codec_tag)), payload))


def decode_checked(oid: bytes, tag: int, payload) -> bytes:
    """The original bytes of a stored payload, refused (Corrupt) unless they hash to ``oid``.
    The one place every reader (read, restore, verify, fetch) checks content against its id."""
    data = codec.decode(tag, payload)
    if object_id(data) != oid:
        raise Corrupt(f"object {oid.hex()} does not match its hash")
    return data


def unpack(value) -> tuple[int, int, memoryview]:
    if len(value) < HEADER:
        raise Corrupt("stored object is truncated")
    mv = memoryview(value)
    return mv[0], mv[1], mv[HEADER:]


class ObjectStore:
    """Content-addressed objects in one LMDB environment."""

    def __init__(self, db: Database):
        self.db = db
        self.table = db.dbs["objects"]

    # -- writing ---------------------------------------------------------------------------------
    def encode(self, kind: int, data) -> tuple[bytes, bytes]:
        """(id, stored value) of an object's canonical bytes."""
        tag, payload = codec.encode(data)
        return object_id(data), pack(kind, tag, payload)

    def put_values(self, txn: lmdb.Transaction, items) -> int:
        """Put (id, stored value) pairs that are not there yet; returns how many were new."""
        new = 0
        for n, (oid, value) in enumerate(items, 1):
            if txn.put(oid, value, db=self.table, overwrite=False):
                new += 1
            if n % RELEASE_EVERY == 0:
                self.db.release_pages()
        self.db.release_pages()
        return new

    def missing(self, ids: list[bytes]) -> list[int]:
        """Indexes of the ids the store lacks (one snapshot; memory stays flat, see release_pages)."""
        out = []
        with self.db.read() as txn:
            for n, oid in enumerate(ids, 1):
                if txn.get(oid, db=self.table) is None:
                    out.append(n - 1)
                if n % RELEASE_EVERY == 0:
                    self.db.release_pages()
        self.db.release_pages()
        return out

    # -- reading ---------------------------------------------------------------------------------
    def has(self, txn: lmdb.Transaction, oid: bytes) -> bool:
        return txn.get(oid, db=self.table) is not None

    def stored(self, txn: lmdb.Transaction, oid: bytes) -> tuple[int, int, memoryview]:
        value = txn.get(oid, db=self.table)
        if value is None:
            raise NotFound(f"object {oid.hex()} is missing from the store")
        return unpack(value)

    def read(self, txn: lmdb.Transaction, oid: bytes, *, verify: bool = True) -> bytes:
        """The original bytes of an object, checked against its id."""
        _, tag, payload = self.stored(txn, oid)
        return decode_checked(oid, tag, payload) if verify else codec.decode(tag, payload)

    def load(self, txn: lmdb.Transaction, oid: bytes, kind: int):
        """A decoded manifest, tree or commit."""
        stored_kind, _, _ = self.stored(txn, oid)
        if stored_kind != kind:
            raise Corrupt(f"object {oid.hex()} is a {KIND_NAMES.get(stored_kind, '?')}, "
                          f"expected a {KIND_NAMES[kind]}")
        return DECODERS[kind](self.read(txn, oid))

    def iter_stored(self, txn: lmdb.Transaction) -> Iterator[tuple[bytes, int, int, memoryview]]:
        """(id, kind, codec, payload) of every stored object, in id order."""
        for key, value in txn.cursor(db=self.table):
            kind, tag, payload = unpack(value)
            yield bytes(key), kind, tag, payload

    def delete(self, txn: lmdb.Transaction, oid: bytes) -> bool:
        return txn.delete(oid, db=self.table)
