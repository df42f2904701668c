"""Notes: metadata and state beside a version, never inside it (as git notes are).

A version (commit) is immutable: its id never changes. What is said about it later lives in an
annotation chain under the ref ``notes/<version id>``: each change is a small commit of the empty
tree whose metadata map is the version's whole current metadata, its parent the previous change.
So every change is compare-and-swap guarded, in the reflog (who, when, old, new) and in the
chain's history, and push, fetch, pull and clone carry it like any other ref. A version with no
chain has the metadata it was committed with.

An annotation's tree holds the version's attachments: files about it that are not part of it
(empty for most; a FATE archive's layout, see ``ziplayout``). A metadata change keeps them, so
they travel, are verified and are kept by gc exactly as the metadata is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import NotFound, RefConflict
from .metadata import check_map
from .objects.encoding import COMMIT, TREE, Tree
from .refs import ANY

PREFIX = "notes/"


def notes_ref(version: bytes) -> str:
    return f"{PREFIX}{version.hex()}"


def is_notes_ref(name: str) -> bool:
    return name.startswith(PREFIX)


def annotated(repo, txn) -> set[bytes]:
    """The versions that have notes (one pass over the ``notes/`` refs, in ``txn``)."""
    return {bytes.fromhex(ref[len(PREFIX):]) for ref, _ in repo.refs.items(txn, PREFIX)}


@dataclass
class Change:
    """One entry of a version's metadata history."""
    id: str
    time: int
    author: str
    message: str
    meta: dict[str, Any]

    def to_json(self) -> dict:
        return {"id": self.id, "time": self.time, "author": self.author, "message": self.message,
                "meta": self.meta}


def read(repo, version: bytes) -> dict[str, Any]:
    """The version's current metadata: its latest annotation, else what it was committed with."""
    with repo.db.read() as txn:
        note = repo.refs.get(txn, notes_ref(version))
        commit = repo.objects.load(txn, note if note is not None else version, COMMIT)
    return dict(commit.meta)


def update(repo, version: bytes, updates: dict, *, remove: list[str] | tuple = (), message: str = "",
           expect: bytes | None | object = ANY, author: str | None = None) -> bytes:
    """Record a metadata change of ``version``; returns the new annotation's id. ``expect`` is the
    annotation the change must be based on (None: the version has none yet); by default a change
    that races another is applied on top of it."""
    check_map(updates)
    changed = ", ".join([f"{k}={v}" for k, v in updates.items()] + [f"-{k}" for k in remove])
    for _ in range(8):
        with repo.db.read() as txn:
            current = repo.refs.get(txn, notes_ref(version))
        if expect is not ANY and current != expect:
            raise RefConflict(f"the metadata of {version.hex()[:12]} changed meanwhile; read it again")
        base = read(repo, version)
        meta = {k: v for k, v in base.items() if k not in set(remove)}
        meta.update(updates)
        staged: dict = {}
        tree = _attachments_tree(repo, current) or repo._stage(staged, TREE, Tree([]).encode())
        try:
            return repo.commit_tree(tree, notes_ref(version), staged=staged,
                                    parents=[current] if current else [], meta=meta, expected=current,
                                    author=author, message=message or f"meta: {changed}")
        except RefConflict:
            if expect is not ANY:
                raise
    raise RefConflict(f"the metadata of {version.hex()[:12]} kept changing; try again")


def _attachments_tree(repo, note: bytes | None) -> bytes | None:
    if note is None:
        return None
    with repo.db.read() as txn:
        return repo.objects.load(txn, note, COMMIT).tree


def attach(repo, version: bytes, files: dict[str, str], *, updates: dict | None = None,
           message: str = "") -> bytes:
    """Keep ``files`` (attachment path -> file on disk) beside ``version``, with metadata
    ``updates`` in the same change; returns the new annotation's id. An attachment of the same
    path is replaced; the others stay."""
    check_map(updates or {})
    with repo.protected_from_gc():
        staged: dict = {}
        entries = repo.stage_files(files, staged)
        for _ in range(8):
            with repo.db.read() as txn:
                current = repo.refs.get(txn, notes_ref(version))
            tree, _ = repo.tree_edit(_attachments_tree(repo, current), dict(entries), staged)
            meta = dict(read(repo, version), **(updates or {}))
            try:
                return repo.commit_tree(tree, notes_ref(version), staged=staged,
                                        parents=[current] if current else [], meta=meta, expected=current,
                                        message=message or f"attach: {', '.join(sorted(files))}")
            except RefConflict:
                continue
    raise RefConflict(f"the annotations of {version.hex()[:12]} kept changing; try again")


def attachment(repo, version: bytes, path: str, out) -> bool:
    """Write the attachment ``path`` of ``version`` to ``out``; False if it has none of that name."""
    with repo.db.read() as txn:
        note = repo.refs.get(txn, notes_ref(version))
    if note is None:
        return False
    try:
        repo.cat(f"{note.hex()}:{path}", out)
    except NotFound:
        return False
    return True


def history(repo, version: bytes) -> list[Change]:
    """Every metadata change of ``version``, newest first (empty if it never changed)."""
    with repo.db.read() as txn:
        note = repo.refs.get(txn, notes_ref(version))
        out = []
        while note is not None:
            commit = repo.objects.load(txn, note, COMMIT)
            out.append(Change(note.hex(), commit.time, commit.author, commit.message, dict(commit.meta)))
            note = commit.parents[0] if commit.parents else None
    return out
