"""What a version costs: its logical size, the distinct bytes it holds and what they take stored,
and what it adds over another version (the one before it in a model's history).

- ``logical_bytes``: the sum of its files' sizes (what a checkout writes);
- ``unique_bytes``: the raw bytes of its distinct chunks (a chunk repeated inside it counts once);
- ``stored_bytes``: what those chunks take in the store (compressed, grouped or as deltas; a
  delta chunk counts its own stored form, not its bases');
- ``new_bytes`` / ``new_stored_bytes``: the same for the chunks the other version lacks;
- ``dedup_ratio``: logical / unique; ``total_ratio``: logical / stored.

A version never changes, so a footprint is kept (per store, commit and baseline) once computed:
a page of 50 versions is computed once, then served from memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass

from .objects.encoding import COMMIT, DIR, FILE, LINK, MANIFEST, TREE

CACHE_SIZE = 4096


@dataclass(frozen=True)
class Footprint:
    logical_bytes: int
    unique_bytes: int
    stored_bytes: int
    new_bytes: int
    new_stored_bytes: int

    @property
    def dedup_ratio(self) -> float:
        return round(self.logical_bytes / self.unique_bytes, 4) if self.unique_bytes else 1.0

    @property
    def total_ratio(self) -> float:
        return round(self.logical_bytes / self.stored_bytes, 4) if self.stored_bytes else 1.0

    def to_json(self) -> dict:
        return {**asdict(self), "dedup_ratio": self.dedup_ratio, "total_ratio": self.total_ratio}


_cache: OrderedDict[tuple, Footprint] = OrderedDict()
_cache_lock = threading.Lock()


def _chunks(repo, txn, tree_id: bytes, out: dict[bytes, int], seen_trees: set[bytes]) -> int:
    """Add the (chunk id -> length) of every file under ``tree_id`` to ``out``; its logical size."""
    logical = 0
    stack = [tree_id]
    seen_manifests: set[bytes] = set()
    while stack:
        tid = stack.pop()
        if tid in seen_trees:
            logical += _tree_size(repo, txn, tid)
            continue
        seen_trees.add(tid)
        for e in repo.objects.load(txn, tid, TREE).entries:
            if e.kind == DIR:
                stack.append(e.id)
            elif e.kind == FILE:
                logical += e.size
                if e.id not in seen_manifests:
                    seen_manifests.add(e.id)
                    out.update(repo.objects.load(txn, e.id, MANIFEST).chunks)
    return logical


def _tree_size(repo, txn, tree_id: bytes) -> int:
    return sum(e.size for e in repo.objects.load(txn, tree_id, TREE).entries if e.kind != LINK)


def _stored(repo, txn, ids) -> int:
    return sum(len(repo.objects.stored(txn, cid)[2]) + 2 for cid in ids)


def footprint(repo, version: bytes, baseline: bytes | None = None) -> Footprint:
    """The footprint of commit ``version``; ``new_*`` against commit ``baseline`` (everything is
    new without one)."""
    key = (repo.path, version, baseline)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with repo.db.read() as txn:
        chunks: dict[bytes, int] = {}
        logical = _chunks(repo, txn, repo.objects.load(txn, version, COMMIT).tree, chunks, set())
        stored = _stored(repo, txn, chunks)
        fresh = chunks
        if baseline is not None:
            old: dict[bytes, int] = {}
            _chunks(repo, txn, repo.objects.load(txn, baseline, COMMIT).tree, old, set())
            fresh = {cid: n for cid, n in chunks.items() if cid not in old}
        result = Footprint(logical, sum(chunks.values()), stored, sum(fresh.values()),
                           stored if fresh is chunks else _stored(repo, txn, fresh))
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return result
