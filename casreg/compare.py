"""Comparing versions: ``diff`` between two versions, ``status`` of a directory against one.

Both walk trees by path and skip subtrees whose ids are equal (nothing below them differs), so
their cost follows what changed. A file is the same when its manifest id is (same bytes).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

import blake3

from .ignore import PathFilter
from .objects.encoding import DIR, FILE, LINK, MANIFEST, TREE, Tree, TreeEntry

ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@dataclass
class FileChange:
    path: str
    change: str  # added | removed | changed
    old_size: int | None
    new_size: int | None

    def to_json(self) -> dict:
        return {"path": self.path, "change": self.change, "old_size": self.old_size, "new_size": self.new_size}


@dataclass
class Diff:
    old: str
    new: str
    changes: list[FileChange] = field(default_factory=list)
    new_bytes: int = 0  # bytes of the new version's chunks the old one does not hold

    def to_json(self) -> dict:
        return {"old": self.old, "new": self.new, "changes": [c.to_json() for c in self.changes],
                "new_bytes": self.new_bytes,
                "counts": {kind: sum(c.change == kind for c in self.changes) for kind in (ADDED, REMOVED, CHANGED)}}


def _same(a: TreeEntry, b: TreeEntry) -> bool:
    return a.kind == b.kind and a.id == b.id and a.target == b.target and (a.kind != FILE or a.mode == b.mode)


def _walk_pair(repo, txn, old_id: bytes | None, new_id: bytes | None, prefix: str, out: list) -> None:
    old = {e.name: e for e in (repo.objects.load(txn, old_id, TREE).entries if old_id else [])}
    new = {e.name: e for e in (repo.objects.load(txn, new_id, TREE).entries if new_id else [])}
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        path = f"{prefix}{name}"
        if a is not None and b is not None and _same(a, b):
            continue
        if (a is not None and a.kind == DIR) or (b is not None and b.kind == DIR):
            _walk_pair(repo, txn, a.id if a is not None and a.kind == DIR else None,
                       b.id if b is not None and b.kind == DIR else None, path + "/", out)
            if a is not None and a.kind != DIR:
                out.append((FileChange(path, REMOVED, a.size, None), a, None))
            if b is not None and b.kind != DIR:
                out.append((FileChange(path, ADDED, None, b.size), None, b))
            continue
        kind = ADDED if a is None else REMOVED if b is None else CHANGED
        out.append((FileChange(path, kind, a.size if a else None, b.size if b else None), a, b))


def _chunks(repo, txn, tree_id: bytes) -> set[bytes]:
    out: set[bytes] = set()
    stack = [tree_id]
    while stack:
        for e in repo.objects.load(txn, stack.pop(), TREE).entries:
            if e.kind == DIR:
                stack.append(e.id)
            elif e.kind == FILE:
                out.update(cid for cid, _ in repo.objects.load(txn, e.id, MANIFEST).chunks)
    return out


def diff(repo, old_spec: str, new_spec: str) -> Diff:
    """Files added, removed and changed from ``old_spec`` to ``new_spec``, and how many bytes of
    the new version are new (chunks the old version lacks: what a push after it would send)."""
    old_id, new_id = repo.resolve(old_spec), repo.resolve(new_spec)
    result = Diff(old_id.hex(), new_id.hex())
    with repo.db.read() as txn:
        old_tree, new_tree = repo.read_commit(old_id).tree, repo.read_commit(new_id).tree
        found: list = []
        _walk_pair(repo, txn, old_tree, new_tree, "", found)
        result.changes = sorted((c for c, _, _ in found), key=lambda c: c.path)
        arrived = [b for _, _, b in found if b is not None and b.kind == FILE]
        if arrived:
            have = _chunks(repo, txn, old_tree)
            fresh: dict[bytes, int] = {}
            for entry in arrived:
                for cid, length in repo.objects.load(txn, entry.id, MANIFEST).chunks:
                    if cid not in have:
                        fresh[cid] = length
            result.new_bytes = sum(fresh.values())
    return result


@dataclass
class Status:
    directory: str
    version: str
    added: list[str] = field(default_factory=list)     # in the directory, not in the version
    removed: list[str] = field(default_factory=list)   # in the version, not in the directory
    changed: list[str] = field(default_factory=list)   # in both, different bytes, mode or target
    unchanged: int = 0

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict:
        return {"directory": self.directory, "version": self.version, "added": self.added,
                "removed": self.removed, "changed": self.changed, "unchanged": self.unchanged, "clean": self.clean}


def _file_hash(path: str) -> bytes:
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(path)
    return hasher.digest()


def status(repo, directory: str, spec: str, paths: PathFilter | None = None) -> Status:
    """How ``directory`` differs from version ``spec`` (the files a commit of it would change):
    sizes first, then the whole-file BLAKE3 the manifest records; ``.casregignore`` applies."""
    directory = os.path.abspath(directory)
    version = repo.resolve(spec)
    paths = paths or PathFilter.for_directory(directory)
    result = Status(directory, version.hex())
    with repo.db.read() as txn:
        stored: dict[str, TreeEntry] = {}
        stack = [(repo.read_commit(version).tree, "")]
        while stack:
            tree_id, prefix = stack.pop()
            tree: Tree = repo.objects.load(txn, tree_id, TREE)
            for e in tree.entries:
                if e.kind == DIR:
                    stack.append((e.id, f"{prefix}{e.name}/"))
                else:
                    stored[f"{prefix}{e.name}"] = e
        store_real = os.path.realpath(repo.path)
        for root, dirs, files in os.walk(directory):
            rel_root = os.path.relpath(root, directory)
            rel_root = "" if rel_root == "." else rel_root + "/"
            dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) != store_real
                             and not paths.skips(f"{rel_root}{d}", True))
            links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
            dirs[:] = [d for d in dirs if d not in links]
            for name in sorted([*files, *links]):
                rel = f"{rel_root}{name}"
                if paths.skips(rel, False):
                    continue
                entry = stored.pop(rel, None)
                if entry is None:
                    result.added.append(rel)
                elif _differs(repo, txn, os.path.join(root, name), entry):
                    result.changed.append(rel)
                else:
                    result.unchanged += 1
        result.removed = sorted(stored)
    result.added.sort()
    result.changed.sort()
    return result


def _differs(repo, txn, path: str, entry: TreeEntry) -> bool:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return entry.kind != LINK or os.readlink(path) != entry.target
    if entry.kind != FILE or st.st_size != entry.size or (0o755 if st.st_mode & 0o111 else 0o644) != entry.mode:
        return True
    return _file_hash(path) != repo.objects.load(txn, entry.id, MANIFEST).file_hash
