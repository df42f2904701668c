"""The pack layout over an object store (``blobs.BlobStore``): what COS and S3 remotes share.

Layout under the prefix:
- ``packs/<id>``: many objects concatenated (one pack per ``put_many``: tens of MiB), so a push
  is a few large PUTs, never one request per chunk; ``<id>`` is the BLAKE3 of the pack's bytes;
- ``index/<id>``: the pack's table of ``(object id, offset, length)``, written after its pack; an
  object exists for casreg once its index exists (a pack without index is debris of a killed push,
  and a batch becomes visible at once, when its index lands);
- ``refs/<name>:<seq>``: an append-only log of ref updates (JSON ``{"old", "new"}``), each written
  create-only (``BlobStore.put_if_absent``): the writer of seq n+1 wins, a racer gets None. A
  ref's value is its entry with the highest seq; a deleted ref's last entry has ``"new": null``.

Reads fetch only the byte ranges they need (adjacent ranges coalesced). Pack indexes and ref log
entries are written once, so they are cached locally (``cache_dir``), keyed by name *and* the ETag
the listing gives: a key rewritten since (the prefix emptied, another site pushing anew) is read
again.
"""

from __future__ import annotations

import json
import os
import struct
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import blake3

from ..errors import Corrupt, RemoteError
from .base import Backend, remote_ref
from .blobs import BlobStore

_REC = struct.Struct("<32sQI")
INDEX_MAGIC = b"casreg-packindex-1\n"
SEQ_WIDTH = 16
RANGE_GAP = 1 << 20


class PackBackend(Backend):
    """Objects in packs, refs in a create-only log, over ``self.blobs`` (set by the subclass)."""

    blobs: BlobStore

    def __init__(self, url: str, cache_dir: str | None = None):
        super().__init__(url)
        self.cache_dir = cache_dir
        self._index: dict[bytes, tuple[str, int, int]] | None = None
        self._packs_loaded: set[str] = set()

    @property
    def where(self) -> str:
        return self.blobs.where

    # -- objects ---------------------------------------------------------------------------------
    def _load_index(self) -> dict[bytes, tuple[str, int, int]]:
        if self._index is None:
            self._index = {}
        new = [(p, etag) for p, etag in self.blobs.list("index").items() if p not in self._packs_loaded]
        with ThreadPoolExecutor(8) as pool:
            bodies = list(pool.map(lambda p: (p[0], self._get_immutable(f"index/{p[0]}", p[1])), new))
        for pack, body in bodies:
            self._add_index(pack, body)
        return self._index

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

    def _add_index(self, pack: str, body: bytes) -> None:
        assert self._index is not None
        if not body.startswith(INDEX_MAGIC) or (len(body) - len(INDEX_MAGIC)) % _REC.size:
            raise RemoteError(f"{self.where}: pack index {pack} is damaged")
        for oid, offset, length in _REC.iter_unpack(body[len(INDEX_MAGIC):]):
            self._index.setdefault(oid, (pack, offset, length))
        self._packs_loaded.add(pack)

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        index = self._index if self._index is not None else self._load_index()
        return {oid for oid in ids if oid in index}

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        index = self._index if self._index is not None else self._load_index()
        items = [(oid, v) for oid, v in dict(items).items() if oid not in index]
        if not items:
            return
        body = b"".join(v for _, v in items)
        records, offset = [], 0
        for oid, value in items:
            records.append(_REC.pack(oid, offset, len(value)))
            offset += len(value)
        # Named by its content: a retried put_many rewrites the same bytes under the same names.
        pack = blake3.blake3(body).hexdigest()
        self.blobs.put(f"packs/{pack}", body)
        table = INDEX_MAGIC + b"".join(records)
        etag = self.blobs.put(f"index/{pack}", table)  # after the pack: only now do its objects exist
        self._add_index(pack, table)
        self._cache_put(f"index/{pack}", etag, table)

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        index = self._index if self._index is not None else self._load_index()
        by_pack: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
        for oid in ids:
            if oid not in index:
                self._load_index()  # someone may have pushed since we looked
                if oid not in index:
                    raise RemoteError(f"{self.where} lacks object {oid.hex()}")
            pack, offset, length = index[oid]
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
        with ThreadPoolExecutor(4) as pool:
            fetched = pool.map(lambda s: (s, self.blobs.get(f"packs/{s[0]}", (s[1], s[2]))[0]), spans)
            for (pack, start, end, members), body in fetched:
                if len(body) != end - start:
                    raise RemoteError(f"{self.where}: pack {pack} is shorter than its index says")
                for offset, length, oid in members:
                    yield oid, body[offset - start:offset - start + length]

    # -- refs ------------------------------------------------------------------------------------
    def _ref_heads(self) -> dict[str, tuple[int, str]]:
        """Ref name -> (highest seq in its log, that entry's ETag)."""
        heads: dict[str, tuple[int, str]] = {}
        for key, etag in self.blobs.list("refs").items():
            name, _, seq = key.rpartition(":")
            if name and seq.isdigit() and int(seq) > heads.get(name, (-1, ""))[0]:
                heads[name] = (int(seq), etag)
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

    def refs(self) -> dict[str, bytes]:
        heads = self._ref_heads()
        with ThreadPoolExecutor(8) as pool:
            targets = list(pool.map(lambda item: (item[0], self._target_or_error(*item)), heads.items()))
        return self._accept_refs((name, t) for name, t in targets if t is not None)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        seq, etag = self._ref_heads().get(name, (-1, ""))
        current = self._target(name, seq, etag) if seq >= 0 else None
        if current is not None:
            current = remote_ref(name, current)[1]  # a damaged head refuses the update, in one line
        if current != old:
            return False
        entry = json.dumps({"old": old.hex() if old else None, "new": new.hex() if new else None}).encode()
        return self.blobs.put_if_absent(f"refs/{name}:{seq + 1:0{SEQ_WIDTH}d}", entry) is not None

    def close(self) -> None:
        self.blobs.close()
