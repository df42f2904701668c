"""Walking the object graph: commits -> parents and trees -> manifests -> chunks -> delta bases.

One walk serves ``verify`` (report what is missing or corrupt), ``gc`` (mark) and ``stats``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import lmdb

from ..errors import CasregError, Corrupt, NotFound
from .encoding import CHUNK, COMMIT, DIR, FILE, MANIFEST, TREE
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
