"""Walking the object graph: commits -> parents and trees -> manifests -> chunks -> delta bases.

``walk`` is the one walk of the whole graph, a level at a time, over a loader (the local store's
here, a remote's in ``remotes/sync.py``). ``reachable`` (``walk`` over the local store) serves
``verify`` (report what is missing or corrupt), ``gc`` (mark) and ``stats``; fetch, verify --remote
and gc --remote walk a remote with ``sync.RemoteLoader``. Commits alone: ``ancestors`` walks a
version's history (``is_ancestor``), ``newest_first`` in time order (``log``; over the commits'
summaries for ``log --oneline``); push's negotiation walks on its own terms
(``remotes/negotiate.py`` says why).
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Protocol, TypeVar

import lmdb

from ..errors import CasregError, Corrupt, NotFound
from .encoding import CHUNK, COMMIT, DIR, FILE, MANIFEST, TREE, Commit
from .store import ObjectStore

Problem = Callable[[bytes, int, CasregError], None]


def describe(error: CasregError) -> str:
    """A problem as verify reports it: "missing" or "corrupt: why"."""
    return "missing" if isinstance(error, NotFound) else f"corrupt: {error}"


def halt(oid: bytes, kind: int, error: CasregError) -> None:
    """``on_problem`` that stops the walk with the error as the loader met it (fetch, gc --remote)."""
    raise error


def _raise(oid: bytes, kind: int, error: CasregError) -> None:
    kind_of_error = NotFound if isinstance(error, NotFound) else Corrupt
    raise kind_of_error(f"object {oid.hex()} ({describe(error)}); run `casreg verify`")


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


class Dated(Protocol):
    """What ordering a history needs of a version: a commit, or its summary (``summary.Summary``)."""
    time: int
    parents: list[bytes]


D = TypeVar("D", bound=Dated)


def newest_first(load: Callable[[bytes], D], start: bytes) -> Iterator[tuple[bytes, D]]:
    """``start``'s history by commit time, newest first, read lazily (git log's order) with
    ``load(id)`` (a commit or what stands for it): taking the first n loads about n, not the
    whole history."""
    import heapq
    first = load(start)
    heap = [(-first.time, 0, start, first)]
    seen = {start}
    tie = 1
    while heap:
        _, _, cid, commit = heapq.heappop(heap)
        yield cid, commit
        for parent in commit.parents:
            if parent not in seen:
                seen.add(parent)
                loaded = load(parent)
                heapq.heappush(heap, (-loaded.time, tie, parent, loaded))
                tie += 1


def is_ancestor(objects: ObjectStore, txn: lmdb.Transaction, ancestor: bytes, descendant: bytes) -> bool:
    """True if ``ancestor`` is ``descendant`` or in its history (False if it is not stored here)."""
    if not objects.has(txn, ancestor):
        return False
    return any(cid == ancestor for cid, _ in ancestors(objects, txn, descendant))


Loaded = Iterable[tuple[bytes, "list[tuple[bytes, int]] | CasregError"]]
LoadLevel = Callable[[dict[bytes, int]], Loaded]


def walk(roots: Iterable[tuple[bytes, int]], load_level: LoadLevel, *, known: dict[bytes, int] | None = None,
         on_problem: Problem = _raise, leaves: set[bytes] | None = None) -> dict[bytes, int]:
    """Every object reachable from ``roots`` (id, kind) -> its kind, read a level at a time: the
    one graph walk (gc, verify, stats, fetch, verify --remote, gc --remote).

    ``load_level`` (a *loader*: ``local_loader`` here, ``sync.RemoteLoader`` for a remote) gets a
    whole level (id -> kind) and yields, for each id it read, its children (``children``; a
    chunk's: its delta bases) or the error that stopped it (``NotFound``: missing, ``Corrupt``:
    damaged), which goes to ``on_problem``; an id it yields nothing for is kept but not followed.
    A level is all chunks or none: chunks are read after every commit, tree and manifest (one
    chunk level, however deep the trees; then one of delta bases), so a remote loader makes one
    round trip per level and batch. Objects in ``known`` were walked already. With ``leaves``,
    chunks are not walked: their ids go into ``leaves`` and not into the result (a fetch reads
    the ones it lacks itself; no chunk is then held three times, in the result, in its level and
    in the caller's set)."""
    known = known or {}
    seen: dict[bytes, int] = {}
    structured: dict[bytes, int] = {}
    chunks: dict[bytes, int] = {}

    def add(pairs: Iterable[tuple[bytes, int]]) -> None:
        for oid, kind in pairs:
            if kind == CHUNK and leaves is not None:
                leaves.add(oid)
            elif oid not in seen and oid not in known:
                (chunks if kind == CHUNK else structured).setdefault(oid, kind)

    add(roots)
    while structured or chunks:
        if structured:
            level, structured = structured, {}
        else:
            level, chunks = chunks, {}
        seen.update(level)
        for oid, got in load_level(level):
            if isinstance(got, CasregError):
                on_problem(oid, level[oid], got)
            else:
                add(got)
    return seen


def local_loader(objects: ObjectStore, txn: lmdb.Transaction, *, bases: bool = True) -> LoadLevel:
    """The loader of the local store, in one read transaction: structured objects decoded and
    hash-checked, chunks only checked for presence (a delta chunk's children are its bases,
    unless ``bases`` is False). The pages the lookups map are dropped as they go
    (``Database.releasing``), so RSS stays flat however large the graph."""

    def load(oid: bytes, kind: int) -> list[tuple[bytes, int]] | CasregError:
        try:
            if kind != CHUNK:
                return list(children(kind, objects.load(txn, oid, kind)))
            base_ids = objects.delta_bases(txn, oid) if bases else ([] if objects.has(txn, oid) else None)
        except CasregError as exc:
            return exc
        if base_ids is None:
            return NotFound(f"object {oid.hex()} is missing from the store")
        return [(b, CHUNK) for b in base_ids]

    def load_level(level: dict[bytes, int]) -> Loaded:
        for oid, kind in objects.db.releasing(level.items()):
            yield oid, load(oid, kind)
    return load_level


def reachable(objects: ObjectStore, txn: lmdb.Transaction, roots: Iterable[tuple[bytes, int]],
              on_problem: Problem = _raise, *, bases: bool = True) -> dict[bytes, int]:
    """``walk`` over the local store (``local_loader``); by default a missing or damaged object
    raises."""
    return walk(roots, local_loader(objects, txn, bases=bases), on_problem=on_problem)
