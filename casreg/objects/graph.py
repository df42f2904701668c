"""Walking the object graph: commits -> parents and trees -> manifests -> chunks -> delta bases.

``reachable`` serves ``verify`` (report what is missing or corrupt), ``gc`` (mark) and ``stats``;
``ancestors`` walks a version's history (``is_ancestor``), ``newest_first`` in time order (``log``).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import lmdb

from ..errors import CasregError, Corrupt, NotFound
from .encoding import CHUNK, COMMIT, DIR, FILE, MANIFEST, TREE, Commit
from .store import RELEASE_EVERY, ObjectStore

Problem = Callable[[bytes, int, str], None]


def _raise(oid: bytes, kind: int, problem: str) -> None:
    error = NotFound if problem == "missing" else Corrupt
    raise error(f"object {oid.hex()} ({problem}); run `casreg verify`")


def children(kind: int, obj) -> Iterator[tuple[bytes, int]]:
    """(id, kind) of the objects a decoded commit, tree or manifest refers to."""
    if kind == COMMIT:
        yield obj.tree, TREE
        yield from ((p, COMMIT) for p in obj.parents)
    elif kind == TREE:
        for e in obj.entries:
            if e.kind == FILE:
                yield e.id, MANIFEST
            elif e.kind == DIR:
                yield e.id, TREE
    elif kind == MANIFEST:
        yield from ((cid, CHUNK) for cid, _ in obj.chunks)


def ancestors(objects: ObjectStore, txn: lmdb.Transaction, start: bytes) -> Iterator[tuple[bytes, Commit]]:
    """``start`` and every commit in its history (each once, depth first), decoded."""
    seen: set[bytes] = set()
    stack = [start]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        commit = objects.load(txn, cid, COMMIT)
        yield cid, commit
        stack.extend(commit.parents)


def newest_first(objects: ObjectStore, txn: lmdb.Transaction, start: bytes) -> Iterator[tuple[bytes, Commit]]:
    """``start``'s history by commit time, newest first, read lazily (git log's order): taking
    the first n reads about n commits, not the whole history."""
    import heapq
    first = objects.load(txn, start, COMMIT)
    heap = [(-first.time, 0, start, first)]
    seen = {start}
    tie = 1
    while heap:
        _, _, cid, commit = heapq.heappop(heap)
        yield cid, commit
        for parent in commit.parents:
            if parent not in seen:
                seen.add(parent)
                loaded = objects.load(txn, parent, COMMIT)
                heapq.heappush(heap, (-loaded.time, tie, parent, loaded))
                tie += 1


def is_ancestor(objects: ObjectStore, txn: lmdb.Transaction, ancestor: bytes, descendant: bytes) -> bool:
    """True if ``ancestor`` is ``descendant`` or in its history (False if it is not stored here)."""
    if not objects.has(txn, ancestor):
        return False
    return any(cid == ancestor for cid, _ in ancestors(objects, txn, descendant))


def reachable(objects: ObjectStore, txn: lmdb.Transaction, roots: Iterable[tuple[bytes, int]],
              on_problem: Problem = _raise, *, bases: bool = True) -> dict[bytes, int]:
    """Every object reachable from ``roots`` (id, kind) -> its kind.

    Structured objects are decoded and hash-checked; chunks are only checked for presence, and a
    delta chunk leads to its bases (unless ``bases`` is False: what manifests name, nothing more).
    A missing or corrupt object is passed to ``on_problem`` (which by default raises).
    """
    seen: dict[bytes, int] = {}
    stack = list(roots)
    while stack:
        oid, kind = stack.pop()
        if oid in seen:
            continue
        seen[oid] = kind
        if len(seen) % RELEASE_EVERY == 0:  # each lookup maps ~1 MB (see db.release_pages)
            objects.db.release_pages()
        if kind == CHUNK:
            try:
                base_ids = objects.delta_bases(txn, oid) if bases else ([] if objects.has(txn, oid) else None)
            except CasregError as exc:
                on_problem(oid, kind, f"corrupt: {exc}")
                continue
            if base_ids is None:
                on_problem(oid, kind, "missing")
            stack.extend((b, CHUNK) for b in base_ids or ())
            continue
        try:
            obj = objects.load(txn, oid, kind)
        except NotFound:
            on_problem(oid, kind, "missing")
            continue
        except CasregError as exc:
            on_problem(oid, kind, f"corrupt: {exc}")
            continue
        stack.extend(children(kind, obj))
    return seen


Expand = Callable[[dict[bytes, int]], Iterable[tuple[bytes, Iterable[tuple[bytes, int]]]]]


def reachable_batched(roots: Iterable[tuple[bytes, int]], expand: Expand,
                      known: dict[bytes, int] | None = None) -> dict[bytes, int]:
    """``reachable`` over objects read in batches (a remote: one round trip per level, not per
    object): every object reachable from ``roots`` (id, kind) -> its kind. ``expand`` gets a
    whole level (id -> kind) and yields (id, its children) for each object of it it read and
    checked, the children from ``children`` (a chunk's: its delta bases); an id it yields
    nothing for is kept but not followed. Objects in ``known`` were walked already."""
    seen: dict[bytes, int] = {}
    known = known or {}
    frontier = {oid: kind for oid, kind in roots if oid not in known}
    while frontier:
        seen.update(frontier)
        nxt: dict[bytes, int] = {}
        for _, kids in expand(frontier):
            for child, kind in kids:
                if child not in seen and child not in known:
                    nxt.setdefault(child, kind)
        frontier = nxt
    return seen
