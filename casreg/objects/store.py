"""Objects in the LMDB ``objects`` database: ``id -> kind byte, codec byte, payload``.

This is the only module that knows the stored value layout. Every put and delete also keeps, in
the same transaction, the ``meta`` database's object counters and version summaries (``summary``).
"""

from __future__ import annotations

from typing import Iterator

import lmdb

from ..db import Database
from ..errors import Corrupt, NotFound
from . import codec, heap
from .encoding import COMMIT, DECODERS, KIND_NAMES, MAX_CHUNK, TREE, Commit, object_id
from .summary import COUNTERS_KEY, SUMMARY_PREFIX, Counters, Summary, SummaryIndex, listed, summarize, summary_key

HEADER = 2
KEYFRAMES = "keyframes"  # the LMDB database of the keyframe index (see keyframes.py)


def stored_value(kind: int, codec_tag: int, payload) -> bytes:
    return b"".join((bytes((kind, codec_tag)), payload))


def decode_checked(oid: bytes, tag: int, payload, base_of=None, cache: dict | None = None,
                   limit: int = codec.MAX_OBJECT) -> bytes | memoryview:
    """The original bytes of a stored payload, refused (Corrupt) unless they hash to ``oid``.
    The one place every reader (read, restore, verify, fetch) checks content against its id.

    A delta needs its bases: ``base_of(id)`` gives a base's stored ``(codec, payload)`` (and raises
    NotFound if it has none); decoded bases are kept in ``cache`` (id -> bytes) when given. A base
    must be self-contained (deltas are one deep, see ``delta``). Nothing larger than ``limit``
    (a base: larger than a chunk) is allocated.

    A base is not hashed on its own: the delta's bytes are, and no wrong base gives them (a
    checkout of a delta version hashed every keyframe chunk twice, ~8% of its decoding). Only
    when the delta fails are its bases hashed, to name the damaged one; a cache may then hold
    unchecked bases, which every later delta built on them fails the same way."""
    bases = None
    form = codec.of(tag)
    if not form.self_contained:
        bases = []
        for bid in form.base_ids(payload):
            data = cache.get(bid) if cache is not None else None
            if data is None:
                if base_of is None:
                    raise Corrupt(f"delta object {oid.hex()} needs its base {bid.hex()}")
                base_tag, base_payload = base_of(bid)
                if not codec.of(base_tag).self_contained:
                    raise Corrupt(f"delta object {oid.hex()} has a delta as its base ({bid.hex()})")
                data = codec.decode(base_tag, base_payload, None, MAX_CHUNK)
                if cache is not None:
                    cache[bid] = data
            bases.append(data)
    try:
        data = codec.decode(tag, payload, bases, limit)
    except Corrupt:
        _name_damaged_base(form, payload, bases)
        raise
    if object_id(data) != oid:
        _name_damaged_base(form, payload, bases)
        raise Corrupt(f"object {oid.hex()} does not match its hash")
    return data


def _name_damaged_base(form: codec.Codec, payload, bases: list | None) -> None:
    """Raise Corrupt naming the first base whose bytes do not hash to its id (a delta failed)."""
    for bid, data in zip(form.base_ids(payload), bases or ()):
        if object_id(data) != bid:
            raise Corrupt(f"object {bid.hex()} does not match its hash")


def stored_size(payload) -> int:
    """The bytes a stored value with this payload takes (its kind and codec bytes included)."""
    return HEADER + len(payload)


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
        self.meta = db.dbs.get("meta")  # None in a read-only open of a store older than it
        heap.keep_freed_memory()  # chunk buffers churn: reuse them, don't fault in fresh pages

    # -- writing ---------------------------------------------------------------------------------
    def encode(self, kind: int, data) -> tuple[bytes, bytes]:
        """(id, stored value) of an object's canonical bytes."""
        tag, payload = codec.encode(data)
        return object_id(data), stored_value(kind, tag, payload)

    def put_values(self, txn: lmdb.Transaction, items) -> int:
        """Put (id, stored value) pairs that are not there yet; returns how many were new. A new
        commit gets its summary (its trees put before it or stored already), and the counters
        count what is new, in ``txn``."""
        new = 0
        landed = Counters()
        commits = []
        for oid, value in self.db.releasing(items):
            if txn.put(oid, value, db=self.table, overwrite=False):
                new += 1
                landed.add(*unpack(value))
                if value[0] == COMMIT:
                    commits.append(oid)
        for oid in commits:
            self._write_summary(txn, oid)
        self._count(txn, landed)
        self.db.release_pages()
        return new

    def _write_summary(self, txn: lmdb.Transaction, oid: bytes) -> None:
        if self.meta is None:
            return
        try:
            found = summarize(self.load(txn, oid, COMMIT), lambda tid: self.load(txn, tid, TREE))
        except (NotFound, Corrupt):
            return  # a commit without its trees (a partial fetch): readers fall back to them
        txn.put(summary_key(oid), found.encode(), db=self.meta)

    def _count(self, txn: lmdb.Transaction, change: Counters) -> None:
        """Add ``change`` to the counters, if this store keeps them (see ``recount``)."""
        current = self.counters(txn)
        if current is not None:
            txn.put(COUNTERS_KEY, current.merge(change).encode(), db=self.meta)

    def missing(self, ids: list[bytes]) -> list[int]:
        """Indexes of the ids the store lacks (one snapshot; memory stays flat, see release_pages)."""
        out = []
        with self.db.read() as txn:
            for n, oid in enumerate(self.db.releasing(ids)):
                if txn.get(oid, db=self.table) is None:
                    out.append(n)
        return out

    # -- reading ---------------------------------------------------------------------------------
    def has(self, txn: lmdb.Transaction, oid: bytes) -> bool:
        return txn.get(oid, db=self.table) is not None

    def count(self, txn: lmdb.Transaction) -> int:
        """How many objects are stored."""
        return txn.stat(self.table)["entries"]

    def value(self, txn: lmdb.Transaction, oid: bytes) -> bytes | memoryview | None:
        """An object's stored value as it is (kind, codec, payload: what a remote is sent and
        stores), None if it is missing. A view into the map in a ``buffers`` transaction."""
        return txn.get(oid, db=self.table)

    def stored(self, txn: lmdb.Transaction, oid: bytes) -> tuple[int, int, memoryview]:
        value = txn.get(oid, db=self.table)
        if value is None:
            raise NotFound(f"object {oid.hex()} is missing from the store")
        return unpack(value)

    def read(self, txn: lmdb.Transaction, oid: bytes) -> bytes | memoryview:
        """The original bytes of an object, checked against its id (a read-only memoryview for a
        grouped or delta chunk, see ``codec.decode``)."""
        _, tag, payload = self.stored(txn, oid)
        return decode_checked(oid, tag, payload, self.base_reader(txn))

    def base_reader(self, txn: lmdb.Transaction):
        """``base_of`` for ``decode_checked``: a delta base's stored (codec, payload) in ``txn``."""
        def base_of(bid: bytes) -> tuple[int, memoryview]:
            _, tag, payload = self.stored(txn, bid)
            return tag, payload
        return base_of

    def add_bases(self, txn: lmdb.Transaction, tag: int, payload, into: dict, *, copy: bool = False) -> list[bytes]:
        """Put the stored (codec, payload) of a delta's bases into ``into`` (id -> ...), looked up
        here so that worker threads can decode without touching the transaction. With ``copy``
        the payloads are copied out of the map (for random lookups that would each map ~1 MB).
        Returns the base ids ([] for a self-contained chunk)."""
        ids = codec.base_ids(tag, payload)
        for bid in ids:
            if bid not in into:
                _, base_tag, base_payload = self.stored(txn, bid)
                into[bid] = (base_tag, bytes(base_payload) if copy else base_payload)
        return ids

    def delta_bases(self, txn: lmdb.Transaction, oid: bytes) -> list[bytes] | None:
        """The base chunk ids of a stored chunk ([] unless it is a delta); None if it is missing."""
        value = txn.get(oid, db=self.table)
        if value is None:
            return None
        _, tag, payload = unpack(value)
        return codec.base_ids(tag, payload)

    def delta_bases_of(self, txn: lmdb.Transaction, oids) -> Iterator[tuple[bytes, list[bytes] | None]]:
        """(id, ``delta_bases``) of each id, the pages read unmapped as it goes (RSS stays flat
        however many chunks a push or fetch looks at)."""
        for oid in self.db.releasing(oids):
            yield oid, self.delta_bases(txn, oid)

    def holds_delta(self, txn: lmdb.Transaction, manifest) -> bool:
        """True if any chunk of a file is stored as a delta (such a file is no keyframe)."""
        for cid, _ in self.db.releasing(manifest.chunks):
            if self.delta_bases(txn, cid):
                return True
        return False

    def summary(self, txn: lmdb.Transaction, commit_id: bytes) -> Summary:
        """A version's summary: the one written when it landed, else (a version that landed
        before summaries) computed from its trees, writing nothing."""
        value = None if self.meta is None else txn.get(summary_key(commit_id), db=self.meta)
        if value is not None:
            return Summary.decode(value)
        return summarize(self.load(txn, commit_id, COMMIT), lambda tid: self.load(txn, tid, TREE))

    def listed(self, txn: lmdb.Transaction, commit_id: bytes) -> tuple[int, str, str, int, str]:
        """(time, author, message, logical bytes, committed state) of a version, for a listing
        row: from its summary without building one, else from ``summary``."""
        value = None if self.meta is None else txn.get(summary_key(commit_id), db=self.meta)
        if value is not None:
            return listed(value)
        c = self.summary(txn, commit_id)
        return c.time, c.author, c.message, c.logical_bytes, c.shown_meta.get("state", "LIVE")

    def dated(self, txn: lmdb.Transaction, commit_id: bytes) -> Summary | Commit:
        """What a brief history shows of a version (parents, time, author, message): its summary,
        else (a version that landed before summaries) its commit; not the files, never its trees."""
        value = None if self.meta is None else txn.get(summary_key(commit_id), db=self.meta)
        return Summary.decode(value) if value is not None else self.load(txn, commit_id, COMMIT)

    def summaries(self, txn: lmdb.Transaction) -> SummaryIndex:
        """The parents and size of every version with a stored summary, read in one pass (pages
        unmapped as it goes)."""
        index = SummaryIndex()
        if self.meta is not None:
            cur = txn.cursor(db=self.meta)
            if cur.set_range(SUMMARY_PREFIX):
                for n, (key, value) in enumerate(cur, 1):
                    if not bytes(key[:len(SUMMARY_PREFIX)]) == SUMMARY_PREFIX:
                        break
                    index.add(bytes(key[len(SUMMARY_PREFIX):]), value)
                    if n % 4096 == 0:  # a sequential read: pages in order, few per release
                        self.db.release_pages()
        self.db.release_pages()
        return index

    def counters(self, txn: lmdb.Transaction) -> Counters | None:
        """The object counters (None for a store that has not counted its objects yet)."""
        value = None if self.meta is None else txn.get(COUNTERS_KEY, db=self.meta)
        return None if value is None else Counters.decode(value)

    def count_stored(self, txn: lmdb.Transaction) -> Counters:
        """The counters as they should be: every stored object read (its header) once."""
        found = Counters()
        for _, kind, tag, payload in self.iter_stored(txn):
            found.add(kind, tag, payload)
        return found

    def recount(self, txn: lmdb.Transaction) -> Counters:
        """Count every object and keep the counters from now on (a write transaction: no put or
        delete can come between the count and its record)."""
        found = self.count_stored(txn)
        txn.put(COUNTERS_KEY, found.encode(), db=self.meta)
        return found

    def load(self, txn: lmdb.Transaction, oid: bytes, kind: int):
        """A decoded manifest, tree or commit."""
        stored_kind, tag, payload = self.stored(txn, oid)
        if stored_kind != kind:
            raise Corrupt(f"object {oid.hex()} is a {KIND_NAMES.get(stored_kind, '?')}, "
                          f"expected a {KIND_NAMES[kind]}")
        return DECODERS[kind](decode_checked(oid, tag, payload, self.base_reader(txn)))

    def iter_values(self, txn: lmdb.Transaction) -> Iterator[tuple[bytes, bytes | memoryview]]:
        """(id, stored value as it is) of every stored object, in id order. The pages read are
        unmapped as it goes (a value still in use is faulted back in), so RSS stays flat."""
        for key, value in self.db.releasing(txn.cursor(db=self.table)):
            yield bytes(key), value

    def iter_stored(self, txn: lmdb.Transaction) -> Iterator[tuple[bytes, int, int, memoryview]]:
        """(id, kind, codec, payload) of every stored object, in id order (as ``iter_values``)."""
        for oid, value in self.iter_values(txn):
            kind, tag, payload = unpack(value)
            yield oid, kind, tag, payload

    def delete(self, txn: lmdb.Transaction, oid: bytes) -> bool:
        return self.delete_many(txn, [oid]) == 1

    def delete_many(self, txn: lmdb.Transaction, ids) -> int:
        """Delete the objects (and the summaries of the commits) among ``ids`` that are stored;
        returns how many were."""
        gone = Counters()
        deleted = 0
        for oid in self.db.releasing(ids):
            value = txn.get(oid, db=self.table)
            if value is None:
                continue
            gone.add(*unpack(value), sign=-1)
            if value[0] == COMMIT and self.meta is not None:
                txn.delete(summary_key(oid), db=self.meta)
            txn.delete(oid, db=self.table)
            deleted += 1
        self._count(txn, gone)
        return deleted

    # -- the keyframe index (delta bases by file layout; ``keyframes.py`` owns its entries) -----
    @property
    def keeps_keyframes(self) -> bool:
        """False only for a store opened read-only that was made before the keyframes database."""
        return KEYFRAMES in self.db.dbs

    def keyframe_entry(self, txn: lmdb.Transaction, layout_key: bytes) -> bytes | memoryview | None:
        """The keyframe index entry of a file layout (``keyframes.index_entry``), None if none."""
        table = self.db.dbs.get(KEYFRAMES)
        return None if table is None else txn.get(layout_key, db=table)

    def keyframe_entries(self, txn: lmdb.Transaction) -> Iterator[bytes | memoryview]:
        """Every keyframe index entry (one per file layout that has a keyframe)."""
        table = self.db.dbs.get(KEYFRAMES)
        if table is not None:
            with txn.cursor(db=table) as cursor:
                yield from cursor.iternext(keys=False)

    def put_keyframe_entries(self, txn: lmdb.Transaction, entries: dict[bytes, bytes]) -> None:
        """Set the keyframe index entries of these layouts (layout key -> entry), in ``txn``."""
        if entries:
            table = self.db.dbs[KEYFRAMES]
            for key, entry in entries.items():
                txn.put(key, entry, db=table)
