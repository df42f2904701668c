"""The pack layout over an object store (``blobs.BlobStore``): what COS and S3 remotes share.

Layout under the prefix:
- ``packs/<name>``: many objects concatenated (one pack per ``put_many``: tens of MiB), so a push
  is a few large PUTs, never one request per chunk; ``<name>`` is ``t<ms>-<BLAKE3>``: the
  writer's clock when it named the pack (13 digits of milliseconds: names sort by when they were
  written) and the BLAKE3 of the pack's bytes (of a random salt and them for a gc's copy of
  objects whose every copy is condemned); a retried ``put_many`` reuses the name. Buckets written
  before have packs named by the BLAKE3 alone, read as ever;
- ``index/<name>``: the pack's table of ``(object id, offset, length)``, written after its pack;
  an object exists for casreg once its index exists (a pack without index is debris of a killed
  push, and a batch becomes visible at once, when its index lands);
- ``refs/<name>:<seq>``: an append-only log of ref updates (JSON ``{"old", "new"}``), each written
  create-only (``BlobStore.put_if_absent``): the writer of seq n+1 wins, a racer gets None. A
  ref's value is its entry with the highest seq; a deleted ref's last entry has ``"new": null``;
- ``index/condemned-<ms>-<random>``: a gc's condemnation record (JSON ``{"packs": {pack: [id hex,
  ...]}}``), written create-only before anything it names is deleted; its upload time is the
  condemnation time. Beside the indexes (and a casreg from before gc, which could not honour
  them, stops at them: "pack index is damaged"). A copy of an object is condemned when a record
  names it in its pack; ``has_many`` offers only copies that are not, and a push of a condemned
  id writes a new pack. A record goes once every pack it names is gone.
- ``index/t<ms>~<pack>``: a tombstone (empty), written by a gc before it deletes ``index/<pack>``
  (``<ms>`` by the server's clock, never before the pack's own stamp), never deleted: a pack it
  names is gone for good (a name is never written again once its index landed; a gc finishing a
  killed gc's deletion writes a fresh tombstone first, and finishes only packs a record condemns).
  A key with ``~`` that is not a tombstone of a pack name is ignored with a warning. Sorted
  among the indexes by time, so the listing a reader makes of the indexes named after a time
  also gives the tombstones written since.
- ``index/~casreg-layout-2``: written once, before the first merged index with a view: a casreg
  from before tombstones (whose gc would delete without writing them) stops at it ("pack index
  ~casreg-layout-2 is damaged") instead of reading or collecting this bucket. Upgrading: a gc
  of such a casreg that listed before the marker was written deletes without tombstones, so no
  gc of an older casreg may be running when a newer one first writes to the bucket.

- ``merged/<packs>-<id>``: a merged index (``MERGED_MAGIC``, a JSON line ``{"packs": [[pack,
  ETag of its index, records], ...], "view": t}``, then those packs' records in that order),
  written create-only, from a fresh load, by a writer that knows more than ``MERGE_AFTER`` packs
  no merged index it read covers; ``<packs>`` (12 digits) is how many it covers, ``<id>`` the
  BLAKE3 of its bytes, ``view`` the newest upload time (server clock) its writer's listings gave.
  Every reader, cold or warm, GETs the one covering most (cached by name and ETag: once per
  store), lists the condemnation records and then only ``index/`` after ``t<view - MARGIN>``:
  the packs pushed and the tombstones written since (and in the last ``MARGIN``). Its packs
  count unless a tombstone names them: a gc writes the tombstone before the index goes, and a
  merged index is only ever written with packs its writer read as alive, from the merged index
  before it (less the tombstones since its view) or listed, so a merged index racing a push or a
  gc loses nothing and resurrects nothing (a stale one merely lists more). Requests follow what
  changed since the last merge, not how many pushes there ever were. A pack whose name is older
  than the view it is not in (its upload took longer than ``MARGIN``, or its writer's clock is
  that far behind) is missed by ``has_many`` (sent again) and found by ``get_many``, which on a
  miss lists every index (``full``, as gc does and as buckets whose merged index has no view are
  read). The per-pack indexes stay; the merged index a writer built on is deleted once its
  successor is written (a reader that misses it takes the next, or lists everything).

- ``refsnap/<entries>-<id>``: a ref snapshot (``SNAPSHOT_MAGIC``, JSON ``{"refs": {name: [seq,
  ETag, new]}}``): every ref's head when a full ``refs()`` had to read more than
  ``SNAPSHOT_AFTER`` heads it did not give, written create-only (``<entries>``, 16 digits, the log
  entries it covers: the newest is the largest). A reader lists the log, GETs the snapshot and
  only the heads that are not in it at that seq and ETag; the log stays the truth (every
  compare-and-swap reads it), so a snapshot racing a push is merely older.

Reads fetch only the byte ranges they need (adjacent ranges coalesced). Pack indexes and ref log
entries are written once, so they are cached locally (``cache_dir``), keyed by name *and* the ETag
the listing gives: a key rewritten since (the prefix emptied, another site pushing anew) is read
again. A pack removed by a gc while a reader holds its old index is a ``PackGone``
(``RemoteUnreachable``): ``Retrying`` asks again, against a fresh load (which lists the
tombstone), for what was not read.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Collection, Iterator

import blake3

from ..errors import Corrupt, RemoteError, RemoteUnreachable
from .base import Backend, StoredObject, batched, log, remote_ref
from .blobs import BlobInfo, BlobMissing, BlobStore
from .packindex import REC as _REC
from .packindex import PackIndex, packed, unpacked

INDEX_MAGIC = b"casreg-packindex-1\n"
SEQ_WIDTH = 16
RANGE_GAP = 1 << 20
CONDEMNED = "condemned-"  # under index/
MERGED_MAGIC = b"casreg-mergedindex-1\n"
MERGE_AFTER = 8  # packs no merged index covers, past which a writer merges (a cold reader GETs as many)
MARGIN = 120.0  # seconds: a pack upload's time from naming it to its index landing, plus clock skew
LAYOUT = "~casreg-layout-2"  # under index/: a casreg from before tombstones stops at it ("damaged")
LAYOUT_BODY = b"casreg-layout-2\nthis bucket has pack tombstones: use a newer casreg\n"
MERGED_CACHED = "merged-cached"  # in the cache: which file is the merged index cached last
GONE = "~"  # a tombstone is index/<stamp>~<pack> (empty), written before a gc deletes index/<pack>
SNAPSHOT_MAGIC = b"casreg-refsnapshot-1\n"
SNAPSHOT_AFTER = 16  # ref heads no snapshot gives, past which a full refs() writes a snapshot
NAMED_LISTINGS = 8  # refs(names) of up to this many names lists each one's log, more the whole log


CANDIDATES = 2  # merged indexes (ref snapshots) tried, newest first, before reading without one
PACK_NAME = re.compile(r"(t\d{13}-)?[0-9a-f]{64}")  # a pack: stamp and BLAKE3, or (before stamps) BLAKE3
TOMBSTONE = re.compile(r"t\d{13}" + re.escape(GONE) + r"((?:t\d{13}-)?[0-9a-f]{64})")
VIEW_SLACK = 2.0  # seconds a merged index's view may be after its own upload time (listings round)


def _pack_stamp(pack: str) -> float:
    """The time a pack's name gives (0 for a name from before stamps)."""
    return int(pack[1:14]) / 1000 if pack.startswith("t") else 0.0


def _newest_first(listing: dict[str, BlobInfo]) -> list[tuple[str, BlobInfo]]:
    """Merged indexes or ref snapshots, the one covering most first (named by a zero-padded
    count, then a hash)."""
    return sorted(listing.items(), key=lambda item: (item[0].partition("-")[0], item[0]), reverse=True)


def _stamp(seconds: float) -> str:
    """A time as names sort it: ``t`` and 13 digits of milliseconds (after every hex name and
    ``condemned-``, before ``~``)."""
    return f"t{max(0, int(seconds * 1000)):013d}"


def _position(view: float) -> str:
    """Where a reader of a merged index with this view starts listing indexes and tombstones."""
    return _stamp(view - MARGIN)


class PackGone(RemoteUnreachable):
    """A pack this reader's index named was removed (by a gc) meanwhile: read again."""


class _Missing(Exception):
    """A pack's range was not there (turned into ``PackGone`` or damage by ``get_many``)."""

    def __init__(self, pack: str):
        super().__init__(pack)
        self.pack = pack


class PackBackend(Backend):
    """Objects in packs, refs in a create-only log, over ``self.blobs`` (set by the subclass)."""

    batch_bytes = 16 << 20  # one pack per put_many: tens of MiB, few objects to list
    batch_objects = 1 << 14  # small objects go many to a pack, not 10^5 (each held 5x as it is packed)

    blobs: BlobStore
    clock_resolution = 1.0  # listings give upload times to the second

    def __init__(self, url: str, cache_dir: str | None = None):
        super().__init__(url)
        self.cache_dir = cache_dir
        # id -> its preferred copy, packed in one int (``packindex``): a tuple and two ints were
        # 120 bytes more an object, 70 MB of a push of 3x10^5 files
        self._index: PackIndex | None = None
        self._slots: dict[str, int] = {}  # pack -> its number in _index's values
        self._slot_packs: list[str] = []  # number -> pack
        self._dups: dict[bytes, list[tuple[str, int, int]]] = {}  # id -> its other copies (rare)
        self._packs_loaded: dict[str, BlobInfo] = {}
        self._pack_records: dict[str, bytes | memoryview] = {}  # pack -> its index's records, as stored
        self._merged: tuple[str, set[str]] = ("", set())  # the merged index read, the packs it gave
        self._merged_view: float | None = None  # its view (None: written before views)
        self._view = 0.0  # the newest upload time the last load's listings gave (server clock)
        self._full = False  # the last load listed every index
        self._loaded_at = 0.0  # time.monotonic() when the last load began
        self._refs_read_at = 0.0  # ... and when refs() last began
        self._layout = False  # index/LAYOUT exists
        self._condemned: dict[tuple[str, bytes], float] = {}  # (pack, id) -> condemnation time
        self._records: dict[str, BlobInfo] = {}  # condemnation records read
        self._dying: set[str] = set()  # packs with both a tombstone and an index: a gc deleting them
        self._names: dict[str, str] = {}  # pack hash -> the name this backend gave it (a retry reuses it)
        self._clock_offset: float | None = None  # server clock less ours, once server_time() asked

    @property
    def where(self) -> str:
        return self.blobs.where

    # -- objects ---------------------------------------------------------------------------------
    def _forget(self) -> None:
        """Drop what was read of the layout (the next read lists it afresh)."""
        self._index, self._dups, self._packs_loaded, self._pack_records = None, {}, {}, {}
        self._slots, self._slot_packs = {}, []
        self._merged, self._merged_view, self._view, self._full = ("", set()), None, 0.0, False
        self._condemned, self._records, self._dying = {}, {}, set()

    def _load_index(self, full: bool = False) -> PackIndex:
        """Read which packs hold which objects. Cold or warm, a reader GETs the newest merged
        index (from the cache when it read it before), lists the condemnation records and then
        only the indexes and tombstones named after the merged index's view less ``MARGIN``:
        requests follow what changed since, not how many pushes there were. ``full`` (gc; a
        reader missing an object; a bucket whose merged index has no view) lists every index
        and tombstone, as before, using the merged index only to GET fewer indexes."""
        started = time.monotonic()
        found = self._read_merged()
        view = found[3] if found is not None else None
        full = full or view is None
        if full:  # condemnation records sort before packs and tombstones: listed first, as they must be
            listing = self.blobs.list_info("index")
            records = {n: i for n, i in listing.items() if n.startswith(CONDEMNED)}
        else:  # a record goes only after its packs' tombstones: list records before them
            records = self.blobs.list_info("index", CONDEMNED)
            listing = self.blobs.list_info("index", after=_position(view))  # type: ignore[arg-type]
        layout = listing.pop(LAYOUT, None)
        tombstones: dict[str, BlobInfo] = {}
        gone: set[str] = set()
        for name in [n for n in listing if GONE in n]:
            stone = listing.pop(name)
            match = TOMBSTONE.fullmatch(name)
            if match is None:  # not written by casreg: neither a pack's index nor a tombstone
                log.warning("%s: index/%s is not a pack index or tombstone casreg writes; ignored",
                            self.where, name)
                continue
            tombstones[name] = stone
            gone.add(match.group(1))
        listing = {n: i for n, i in listing.items() if n not in records}
        try:  # what fails half way (a GET unreachable) leaves nothing: the next call loads afresh
            self._forget()
            self._index, self._full, self._layout = PackIndex(), full, layout is not None
            self._loaded_at = started
            self._dying = {p for p in listing if p in gone}  # a gc's deletion under way (or killed)
            self._view = max([view or 0.0, *(i.modified for i in (*listing.values(), *tombstones.values(),
                                                                     *records.values()))])
            parts: dict[str, tuple[bytes | memoryview, BlobInfo]] = {}  # pack -> its records, its index's info
            if found is not None:
                name, packs, table, merged_view = found
                at = 0
                for pack, etag, n in packs:
                    part, at = table[at:at + n * _REC.size], at + n * _REC.size
                    info = listing.get(pack)
                    if pack in gone or (info is None and full) or (info is not None and info.etag != etag):
                        continue  # deleted by a gc, or (listing every index) not listed, or rewritten: read alone
                    parts.setdefault(pack, (part, info or BlobInfo(etag)))
                self._merged, self._merged_view = (name, {p for p, _, _ in packs}), merged_view
            new = {p: info for p, info in listing.items() if p not in parts and p not in gone}
            with ThreadPoolExecutor(8) as pool:
                bodies = list(pool.map(lambda p: (p[0], p[1], self._get_immutable(f"index/{p[0]}", p[1].etag)),
                                       new.items()))
            for pack, info, body in bodies:
                parts[pack] = (self._records_of(pack, body), info)
            for oid, value in self._index.load([(self._slot(pack), recs) for pack, (recs, _) in parts.items()]):
                self._dups.setdefault(oid, []).append(self._unpack(value))  # a copy in a later pack
            for pack, (recs, info) in parts.items():
                self._packs_loaded[pack], self._pack_records[pack] = info, recs
            self._load_condemned(records)
        except BaseException:
            self._forget()
            raise
        return self._index

    def _read_merged(self) -> tuple[str, list[tuple[str, str, int]], memoryview, float | None] | None:
        """(name, [(pack, ETag of its index, records)], records, view or None) of the merged
        index covering most, None if there is none. One gone meanwhile or damaged is passed over
        (with a warning) for the next best: the per-pack indexes say the same."""
        for name, info in _newest_first(self.blobs.list_info("merged"))[:CANDIDATES]:
            try:
                body = self._get_merged(name, info.etag)
                if not body.startswith(MERGED_MAGIC):
                    raise ValueError
                end = body.find(b"\n", len(MERGED_MAGIC))
                if end < 0:
                    raise ValueError
                # the records as a view of the body: each pack's part a view of them, not a copy
                header, table = body[len(MERGED_MAGIC):end], memoryview(body)[end + 1:]
                meta = json.loads(header)
                packs = [(str(p), str(e), int(n)) for p, e, n in meta["packs"]]
                if any(n < 0 or not PACK_NAME.fullmatch(p) for p, _, n in packs):
                    raise ValueError
                if sum(n for _, _, n in packs) * _REC.size != len(table):
                    raise ValueError
                view = float(meta["view"]) if "view" in meta else None
                if view is not None and not math.isfinite(view):
                    raise ValueError
                if view is not None and view > info.modified + VIEW_SLACK:
                    # a view after the index's own upload would hide tombstones written
                    # before it: not what a writer can have seen; list everything instead
                    log.warning("%s: merged index %s claims a view after its upload; listing every index",
                                self.where, name)
                    view = None
                return name, packs, table, view
            except BlobMissing:
                continue
            except (ValueError, KeyError, TypeError):
                log.warning("%s: merged index %s is damaged; reading the pack indexes instead", self.where, name)
        return None

    def _get_merged(self, name: str, etag: str) -> bytes:
        """A merged index (named by its bytes), through the cache."""
        cached = self._cache_path(f"merged/{name}", etag)
        if cached:
            with contextlib.suppress(FileNotFoundError):  # another process may have replaced it
                with open(cached, "rb") as f:
                    return f.read()
        body, got = self.blobs.get(f"merged/{name}")
        self._cache_merged(name, got, body)
        return body

    def _cache_merged(self, name: str, etag: str, body: bytes) -> None:
        """Cache a merged index in place of the one cached before (each is megabytes at 10^4
        pushes and replaces the last: the cache keeps one)."""
        path = self._cache_path(f"merged/{name}", etag)
        if not path:
            return
        self._cache_put(f"merged/{name}", etag, body)
        pointer = os.path.join(os.path.dirname(path), MERGED_CACHED)
        try:
            with open(pointer) as f:
                before = f.read().strip()
        except OSError:
            before = ""
        with open(pointer + ".tmp", "w") as f:
            f.write(os.path.basename(path))
        os.replace(pointer + ".tmp", pointer)
        if before and before != os.path.basename(path):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(os.path.dirname(path), before))

    def _due(self) -> bool:
        """More than ``MERGE_AFTER`` known packs in no merged index read, or that one has no view."""
        covered = self._merged[1]
        uncovered = sum(1 for p in self._packs_loaded if p not in covered)
        return uncovered > MERGE_AFTER or (self._merged_view is None and len(self._packs_loaded) > MERGE_AFTER)

    def _merge_if_due(self) -> None:
        """A merged index of every pack this writer knows, once more than ``MERGE_AFTER`` of them
        are in no merged index it read (or the one it read has no view), create-only, named by
        its bytes (racing writers of the same set write one), from a fresh load. Its view is the
        newest upload time that load's listings gave: readers list what is named after it less
        ``MARGIN``."""
        if not self._due():
            return
        self._load_index()  # afresh: the view is now, and what others pushed meanwhile is in it
        if not self._due():
            return
        base = self._merged[0]
        if not self._layout:  # casreg from before tombstones stops at it: its gc would not write them
            self.blobs.put_if_absent(f"index/{LAYOUT}", LAYOUT_BODY)
            self._layout = True
        packs = sorted(self._packs_loaded)
        header = json.dumps({"packs": [[p, self._packs_loaded[p].etag, len(self._pack_records[p]) // _REC.size]
                                       for p in packs], "view": self._view}, separators=(",", ":")).encode()
        body = b"".join([MERGED_MAGIC, header, b"\n", *(self._pack_records[p] for p in packs)])  # one copy
        name = f"{len(packs):012d}-{blake3.blake3(body).hexdigest()}"
        etag = self.blobs.put_if_absent(f"merged/{name}", body)
        if etag:
            self._cache_merged(name, etag, body)
        self._merged, self._merged_view = (name, set(packs)), self._view
        if base and base != name:
            self.blobs.delete(f"merged/{base}")

    def _load_condemned(self, listing: dict[str, BlobInfo]) -> None:
        if any(name not in listing for name in self._records):
            self._condemned, self._records = {}, {}
        for name, info in listing.items():
            if name in self._records:
                continue
            try:
                packs = json.loads(self._get_immutable(f"index/{name}", info.etag))["packs"]
                pairs = [(str(pack), bytes.fromhex(h)) for pack, ids in packs.items() for h in ids]
            except (ValueError, KeyError, TypeError, AttributeError):
                raise RemoteError(f"{self.where}: gc record {name} is damaged") from None
            for pair in pairs:  # the earliest record counts: since then no push was offered the copy
                self._condemned[pair] = min(self._condemned.get(pair, info.modified), info.modified)
            self._records[name] = info
        if self._condemned and self._index:  # prefer a copy that is not condemned
            for oid, copies in self._dups.items():
                best, first = self._live_copy(oid), self.location(oid)
                if best is not None and best != first:
                    self._dups[oid] = [first, *(c for c in copies if c != best)]  # type: ignore[list-item]
                    self._index[oid] = self._packed(*best)

    def _slot(self, pack: str) -> int:
        """``pack``'s number in ``_index`` values."""
        slot = self._slots.get(pack)
        if slot is None:
            slot = self._slots[pack] = len(self._slot_packs)
            self._slot_packs.append(pack)
        return slot

    def _packed(self, pack: str, offset: int, length: int) -> int:
        return packed(self._slot(pack), offset, length)

    def _unpack(self, value: int) -> tuple[str, int, int]:
        slot, offset, length = unpacked(value)
        return self._slot_packs[slot], offset, length

    def _current_index(self) -> PackIndex:
        """The index read last, or a fresh load if none is."""
        return self._index if self._index is not None else self._load_index()

    def location(self, oid: bytes) -> tuple[str, int, int] | None:
        """(pack, offset, length) of the preferred copy of ``oid`` in the index read, None if it
        lists none."""
        assert self._index is not None
        value = self._index.get(oid)
        return None if value is None else self._unpack(value)

    def _copies(self, oid: bytes) -> list[tuple[str, int, int]]:
        first = self.location(oid)
        return [] if first is None else [first, *self._dups.get(oid, ())]

    def _live_copy(self, oid: bytes) -> tuple[str, int, int] | None:
        """A copy of ``oid`` no gc condemned (what a push may rely on), None if there is none."""
        for copy in self._copies(oid):
            if (copy[0], oid) not in self._condemned:
                return copy
        return None

    def _get_immutable(self, key: str, etag: str) -> bytes:
        """An object written once (pack index, ref log entry), through the local cache when this
        store has read it before with this ETag."""
        cached = self._cache_path(key, etag)
        if cached and os.path.exists(cached):
            with open(cached, "rb") as f:
                return f.read()
        body, got = self.blobs.get(key)
        self._cache_put(key, got, body)
        return body

    def _cached(self, key: str, etag: str) -> bool:
        """This store read ``key`` at this ETag before (reading it again costs no request)."""
        path = self._cache_path(key, etag)
        return path is not None and os.path.exists(path)

    def _cache_path(self, key: str, etag: str) -> str | None:
        if not (self.cache_dir and etag):  # no ETag, nothing to check a cached copy against
            return None
        return os.path.join(self.cache_dir, blake3.blake3(f"{self._cache_name(key)}\n{etag}".encode()).hexdigest())

    def _cache_name(self, key: str) -> str:
        """What names ``key`` in the cache: the full key (the cache of a remote survives a change
        of its prefix)."""
        return self.blobs.full_key(key)

    def _cache_put(self, key: str, etag: str, body: bytes) -> None:
        path = self._cache_path(key, etag)
        if not path:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(body)
        os.replace(path + ".tmp", path)

    def _records_of(self, pack: str, body: bytes) -> bytes:
        """The records of a pack's index (``_REC`` each), RemoteError if it is not one."""
        if not body.startswith(INDEX_MAGIC) or (len(body) - len(INDEX_MAGIC)) % _REC.size:
            raise RemoteError(f"{self.where}: pack index {pack} is damaged")
        return body[len(INDEX_MAGIC):]

    def _add_index(self, pack: str, records: bytes | memoryview, info: BlobInfo,
                   ids: list[bytes] | None = None) -> None:
        """Index one more pack's records (``_REC`` each, as stored: a pack just written), read one
        at a time. ``ids``: the records' ids as objects the caller holds already (a push's), kept
        instead of copies. A load indexes its packs all at once (``_load_index``)."""
        assert self._index is not None
        index, slot = self._index, self._slot(pack)
        unpacked = _REC.iter_unpack(records)
        if ids is not None:
            unpacked = ((oid, offset, length) for oid, (_, offset, length) in zip(ids, unpacked))
        for oid, offset, length in unpacked:
            value = packed(slot, offset, length)
            first = index.setdefault(oid, value)
            if first != value:
                old = self._unpack(first)
                self._dups.setdefault(oid, []).append((pack, offset, length))
                if (old[0], oid) in self._condemned and (pack, oid) not in self._condemned:
                    self._dups[oid][-1], index[oid] = old, value
        self._packs_loaded[pack] = info
        self._pack_records[pack] = records

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        index = self._current_index()
        if not self._condemned:
            return {oid for oid, value in zip(ids, index.many(ids)) if value is not None}
        return {oid for oid in ids if self._live_copy(oid) is not None}

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        fresh = dict(items)
        held = self.has_many(list(fresh))  # one search for the batch, not a lookup an object
        if self._write_pack([(oid, v) for oid, v in fresh.items() if oid not in held]):
            self._merge_if_due()

    def _write_pack(self, items: list[tuple[bytes, bytes]], *, create_only: bool = False,
                    salt: bytes = b"") -> str | None:
        """One pack of ``items``, then its index (create-only for a gc's repack); its name, the
        BLAKE3 of ``salt`` and its bytes (a copy of a whole pack needs a salt to be another)."""
        if not items:
            return None
        body = b"".join(v for _, v in items)
        records, offset = [], 0
        for oid, value in items:
            records.append(_REC.pack(oid, offset, len(value)))
            offset += len(value)
        # Named by the time and its content: names sort by when they were written (a reader
        # lists those after its merged index's view), and a retried put_many reuses the name.
        digest = blake3.blake3(salt + body).hexdigest()
        pack = self._names.setdefault(digest, f"{_stamp(time.time() + (self._clock_offset or 0.0))}-{digest}")
        self.blobs.put(f"packs/{pack}", body)
        table = INDEX_MAGIC + b"".join(records)
        if create_only:  # an index already there has these very bytes (a retry, by its name)
            self.blobs.put_if_absent(f"index/{pack}", table)
            self._names.pop(digest, None)
            return pack
        etag = self.blobs.put(f"index/{pack}", table)  # after the pack: only now do its objects exist
        # Landed: the name is never given again (only a retry of a failed write reuses it), for a
        # gc may tombstone it, and a pack written under a tombstoned name is gone for every reader.
        self._names.pop(digest, None)
        self._add_index(pack, self._records_of(pack, table), BlobInfo(etag, len(table), time.time()),
                        [oid for oid, _ in items])
        self._cache_put(f"index/{pack}", etag, table)
        return pack

    def read_order(self, ids: list[bytes]) -> list[bytes]:
        """By pack, then offset (ids it does not list last). In id order a batch's ranges were
        spread over every pack and coalesced across most of each: a clone of 3x10^5 small chunks
        read several times its size, at 4 MB/s from a local server."""
        return self._current_index().read_order(ids)

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        values = self._current_index().many(ids)
        # A miss reloads: the object may be named before the merged view, or pushed since the
        # load, a full one too when refs were read after it (gc lists every object, then reads
        # the refs a push may have moved meanwhile). Once loaded after the refs, a miss is final.
        if None in values and (not self._full or self._loaded_at < self._refs_read_at):
            values = self._load_index(full=True).many(ids)
        by_pack: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
        for oid, value in zip(ids, values):
            if value is None:
                raise RemoteError(f"{self.where} lacks object {oid.hex()}")
            pack, offset, length = self._unpack(value)
            by_pack[pack].append((offset, length, oid))
        spans = []
        for pack, entries in by_pack.items():
            entries.sort()
            start, end, members = entries[0][0], entries[0][0] + entries[0][1], [entries[0]]
            for entry in entries[1:]:
                if entry[0] - end <= RANGE_GAP:
                    end = max(end, entry[0] + entry[1])
                    members.append(entry)
                else:
                    spans.append((pack, start, end, members))
                    start, end, members = entry[0], entry[0] + entry[1], [entry]
            spans.append((pack, start, end, members))
        try:
            with ThreadPoolExecutor(4) as pool:
                fetched = pool.map(lambda s: (s, self._get_range(*s[:3])), spans)
                for (pack, start, end, members), body in fetched:
                    if len(body) != end - start:
                        raise RemoteError(f"{self.where}: pack {pack} is shorter than its index says")
                    for offset, length, oid in members:
                        yield oid, body[offset - start:offset - start + length]
        except _Missing as missing:
            raise self._pack_missing(missing.pack) from None

    def _get_range(self, pack: str, start: int, end: int) -> bytes:
        try:
            return self.blobs.get(f"packs/{pack}", (start, end))[0]
        except BlobMissing:
            raise _Missing(pack) from None

    def _pack_missing(self, pack: str) -> RemoteError:
        """What a pack found missing means: a gc removed it meanwhile (its index went first, or
        it has a tombstone): ``PackGone``, read again from the full listing loaded here; or its
        index is still there and no tombstone names it: the bucket is damaged."""
        self._load_index(full=True)
        if pack in self._packs_loaded:
            return RemoteError(f"{self.where}: pack {pack} is missing though its index lists it")
        return PackGone(f"{self.where}: pack {pack} was removed (by a gc) while reading; "
                        "reading again from a fresh listing")

    # -- refs ------------------------------------------------------------------------------------
    def _ref_heads(self, names: Collection[str] | None = None) -> dict[str, tuple[int, str]]:
        """Ref name -> (highest seq in its log, that entry's ETag), of every ref or of ``names``
        (a listing of each one's log when they are few: ``name:`` is a prefix of no other ref's
        keys, a ref name holds no ``:``)."""
        if names is not None and len(names) <= NAMED_LISTINGS:
            listing = {k: i.etag for n in names for k, i in self.blobs.list_info("refs", f"{n}:").items()}
        else:
            listing = self.blobs.list("refs")
        heads: dict[str, tuple[int, str]] = {}
        for key, etag in listing.items():
            name, _, seq = key.rpartition(":")
            if name and seq.isdigit() and int(seq) > heads.get(name, (-1, ""))[0]:
                heads[name] = (int(seq), etag)
        if names is not None:
            wanted = set(names)
            heads = {name: head for name, head in heads.items() if name in wanted}
        return heads

    def _target(self, name: str, seq: int, etag: str):
        """The ``new`` of a ref log entry, as stored (None: the ref was deleted); Corrupt if the
        entry is not the JSON object casreg writes."""
        try:
            entry = json.loads(self._get_immutable(f"refs/{name}:{seq:0{SEQ_WIDTH}d}", etag))
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or "new" not in entry:
            raise Corrupt(f"{self.where}: ref log entry {name}:{seq} is damaged")
        return entry["new"]

    def _target_or_error(self, name: str, head: tuple[int, str]):
        try:
            return self._target(name, *head)
        except Corrupt as exc:
            return exc

    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        self._refs_read_at = time.monotonic()  # what these refs name was pushed before now (get_many)
        heads = self._ref_heads(None if names is None else list(dict.fromkeys(names)))
        uncached = {name for name, (seq, etag) in heads.items()
                    if not self._cached(f"refs/{name}:{seq:0{SEQ_WIDTH}d}", etag)}
        base, known = self._ref_snapshot() if len(uncached) > SNAPSHOT_AFTER else ("", {})
        targets, unread = {}, {}
        for name, head in heads.items():
            if name in known and known[name][:2] == head:
                targets[name] = known[name][2]
            else:
                unread[name] = head
        with ThreadPoolExecutor(8) as pool:
            targets.update(pool.map(lambda item: (item[0], self._target_or_error(*item)), unread.items()))
        if names is None and len(uncached & unread.keys()) > SNAPSHOT_AFTER:
            self._write_ref_snapshot(heads, targets, base)
        return self._accept_refs((name, t) for name, t in targets.items() if t is not None)

    def _ref_snapshot(self) -> tuple[str, dict[str, tuple[int, str, object]]]:
        """(name, name -> (seq, ETag, new)) of the snapshot covering the most log entries; ("", {})
        if there is none (a bucket written before snapshots). One gone meanwhile or damaged is
        passed over (with a warning) for the next best: the log says the same."""
        for name, _ in _newest_first(self.blobs.list_info("refsnap"))[:CANDIDATES]:
            try:
                body = self.blobs.get(f"refsnap/{name}")[0]  # not cached: each replaces the last
                if not body.startswith(SNAPSHOT_MAGIC):
                    raise ValueError
                refs = json.loads(body[len(SNAPSHOT_MAGIC):])["refs"]
                return name, {str(ref): (int(seq), str(etag), new) for ref, (seq, etag, new) in refs.items()}
            except BlobMissing:
                continue
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("%s: ref snapshot %s is damaged; reading the ref log instead", self.where, name)
        return "", {}

    def _write_ref_snapshot(self, heads: dict[str, tuple[int, str]], targets: dict, base: str) -> None:
        """A create-only snapshot of every ref's head (seq, ETag, new), then the one it replaces
        deleted. Only saves reading: a failure to write it (read-only credentials) is no error."""
        refs = {n: [*heads[n], t] for n, t in targets.items() if t is None or isinstance(t, str)}
        body = SNAPSHOT_MAGIC + json.dumps({"refs": refs}, sort_keys=True, separators=(",", ":")).encode()
        name = f"{sum(seq + 1 for seq, _ in heads.values()):016d}-{blake3.blake3(body).hexdigest()}"
        try:
            self.blobs.put_if_absent(f"refsnap/{name}", body)
            if base and base != name:
                self.blobs.delete(f"refsnap/{base}")
        except RemoteError as exc:
            log.debug("%s: no ref snapshot written: %s", self.where, exc)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        seq, etag = self._ref_heads([name]).get(name, (-1, ""))
        current = self._target(name, seq, etag) if seq >= 0 else None
        if current is not None:
            current = remote_ref(name, current)[1]  # a damaged head refuses the update, in one line
        if current != old:
            return False
        entry = json.dumps({"old": old.hex() if old else None, "new": new.hex() if new else None}).encode()
        return self.blobs.put_if_absent(f"refs/{name}:{seq + 1:0{SEQ_WIDTH}d}", entry) is not None

    # -- gc ----------------------------------------------------------------------------------------
    def server_time(self) -> float:
        """The upload time the server gives a probe key just written (the bucket's clock)."""
        key = f"gc/clock/{uuid.uuid4().hex}"
        asked = time.time()
        self.blobs.put(key, b"")
        try:
            now = self.blobs.list_info("gc/clock")[key.rpartition("/")[2]].modified
            self._clock_offset = now - asked  # rounded down: stamps up to 1 s early, within MARGIN
            return now
        except KeyError:
            raise RemoteError(f"{self.where}: a key just written is not listed") from None
        finally:
            self.blobs.delete(key)

    def list_objects(self) -> Iterator[StoredObject]:
        self._load_index(full=True)
        for pack, info in self._packs_loaded.items():
            for oid, _, length in _REC.iter_unpack(self._pack_records[pack]):
                yield StoredObject(oid, length, info.modified, self._condemned.get((pack, oid)), pack)

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        self._load_index(full=True)
        packs: dict[str, list[str]] = defaultdict(list)
        for item in items:
            info = self._packs_loaded.get(item.where)  # a pack's objects share its upload time
            if info is not None and (item.where, item.id) not in self._condemned and info.modified <= uploaded_before:
                packs[item.where].append(item.id.hex())
        if not packs:
            return 0
        name = f"{CONDEMNED}{int(time.time() * 1000):013d}-{uuid.uuid4().hex}"
        self.blobs.put_if_absent(f"index/{name}", json.dumps({"packs": packs}, sort_keys=True).encode())
        self._load_index(full=True)
        return sum(len(ids) for ids in packs.values())

    def absolve(self, items: list[StoredObject]) -> None:
        """Records are written once: the objects without a clean copy are copied into a new pack
        (indexed create-only), which no record names."""
        self._load_index(full=True)
        ids = list(dict.fromkeys(o.id for o in items if self._live_copy(o.id) is None))
        for batch in batched(ids, 256):
            self._write_pack(sorted(self.get_many(batch)), create_only=True, salt=uuid.uuid4().bytes)
        if ids:
            self._forget()

    def ref_log_targets(self, since: float) -> set[bytes]:
        out: set[bytes] = set()
        for key, info in self.blobs.list_info("refs").items():
            name, _, seq = key.rpartition(":")
            if not (name and seq.isdigit()) or info.modified < since:
                continue
            try:
                entry = json.loads(self._get_immutable(f"refs/{key}", info.etag))
                out.update(bytes.fromhex(entry[k]) for k in ("old", "new") if entry.get(k))
            except (ValueError, TypeError, AttributeError):
                raise Corrupt(f"{self.where}: ref log entry {key} is damaged") from None
        return out

    def delete_condemned(self, items: list[StoredObject], cutoff: float, *, repack_below: float = 0.5,
                         debris_before: float | None = None) -> tuple[int, int]:
        self._clock_offset = None  # measured afresh: this gc's grace period may have been long
        self._load_index(full=True)
        doomed: dict[str, set[bytes]] = defaultdict(set)
        for item in items:
            stamp = self._condemned.get((item.where, item.id))
            if stamp is not None and stamp <= cutoff:
                doomed[item.where].add(item.id)
        objects = size = 0
        for pack, ids in sorted(doomed.items()):
            info = self._packs_loaded.get(pack)
            if info is None:
                continue
            records = list(_REC.iter_unpack(self._pack_records[pack]))
            rest = sorted((r for r in records if r[0] not in ids), key=lambda r: r[1])
            if any(self._condemned.get((pack, r[0]), -1.0) > cutoff for r in rest):
                continue  # holds objects condemned later: wait until they can go too
            gone = [r for r in records if r[0] in ids]
            total = sum(r[2] for r in records)
            if rest and sum(r[2] for r in rest) >= repack_below * total:
                continue  # mostly live: not worth rewriting yet
            if rest and not self._repack(pack, rest):
                continue
            self._delete_pack(pack)
            objects, size = objects + len(gone), size + sum(r[2] for r in gone)
        condemned_packs = {pack for pack, _ in self._condemned}
        for pack in sorted(self._dying):  # a killed gc's deletions, finished
            if pack not in condemned_packs:  # a tombstone no gc of ours wrote: the pack stays
                log.warning("%s: index/%s has a tombstone but no gc record condemns it; left alone",
                            self.where, pack)
                continue
            # A fresh tombstone first: the killed gc's may sort before what readers list now
            # (their merged index may give the pack as alive and have a view after it).
            self._delete_pack(pack)
        self._load_index(full=True)
        for name in self._records:  # records whose every pack is gone (not merely being deleted)
            try:
                packs = json.loads(self._get_immutable(f"index/{name}", self._records[name].etag))["packs"]
            except (ValueError, KeyError, TypeError):
                continue
            if not any(p in self._packs_loaded or p in self._dying for p in packs):
                self.blobs.delete(f"index/{name}")
        if debris_before is not None:  # packs without an index: killed pushes and repacks
            for pack, info in self.blobs.list_info("packs").items():
                if pack not in self._packs_loaded and info.modified <= debris_before:
                    self.blobs.delete(f"packs/{pack}")
        self._forget()
        return objects, size

    def _delete_pack(self, pack: str) -> None:
        """A tombstone, then the index (no reader finds the pack after), then the pack. Readers
        trusting a merged index that names the pack see the tombstone: they list those named
        after their merged index's view less ``MARGIN``, and a merged index is never written with
        a pack whose tombstone its writer listed. The tombstone is stamped by the server's clock
        and never before the pack's own name (a pusher's clock ahead): it sorts after the pack's
        index, so a listing that gives the index gives the tombstone."""
        if self._clock_offset is None:
            self.server_time()
        assert self._clock_offset is not None
        when = max(time.time() + self._clock_offset, _pack_stamp(pack))
        self.blobs.put(f"index/{_stamp(when)}{GONE}{pack}", b"")
        self.blobs.delete(f"index/{pack}")
        self.blobs.delete(f"packs/{pack}")

    def _repack(self, pack: str, rest: list[tuple[bytes, int, int]]) -> bool:
        """The objects ``rest`` of ``pack`` copied into a new pack, indexed; False if ``pack`` is
        gone meanwhile (another gc took it)."""
        try:
            body, _ = self.blobs.get(f"packs/{pack}")
        except BlobMissing:
            return False
        if any(offset + length > len(body) for _, offset, length in rest):
            raise RemoteError(f"{self.where}: pack {pack} is shorter than its index says")
        self._write_pack([(oid, body[offset:offset + length]) for oid, offset, length in rest], create_only=True)
        return True

    def close(self) -> None:
        self.blobs.close()
