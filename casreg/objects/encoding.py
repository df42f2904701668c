"""Canonical bytes of the structured objects: file manifests, trees and commits.

Every object is named by the BLAKE3-256 hash of its canonical bytes. A chunk's canonical bytes are
its raw content. The structured objects start with a magic line naming kind and format version:

- manifest: ``b"casreg-manifest-1\\n"``, then little-endian ``u64 size, 32-byte BLAKE3 of the whole
  file, u32 count``, then ``count`` records of ``32-byte chunk id, u32 length``, in file order.
- tree: ``b"casreg-tree-1\\n"``, then canonical JSON (sorted keys, no spaces, UTF-8) of a list of
  entries ``{"name", "kind": "file"|"tree"|"link", "mode", "size", "id" | "target"}`` sorted by the
  UTF-8 bytes of ``name``.
- commit: ``b"casreg-commit-1\\n"``, then canonical JSON of
  ``{"tree", "parents", "author", "time", "message", "meta"}`` (ids as lowercase hex).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import blake3

from ..errors import Corrupt

CHUNK, MANIFEST, TREE, COMMIT = 0, 1, 2, 3
KIND_NAMES = {CHUNK: "chunk", MANIFEST: "manifest", TREE: "tree", COMMIT: "commit"}
# The largest each kind can be: what a received object may claim before it is refused (a chunk
# is cut at the chunker's max_size, which a store's config may not set above MAX_CHUNK; a
# manifest of MAX_STRUCTURED lists ~6.7M chunks, a file of some 500 GB).
MAX_CHUNK = 4 << 20
MAX_STRUCTURED = 256 << 20
MAX_SIZE = {CHUNK: MAX_CHUNK, MANIFEST: MAX_STRUCTURED, TREE: MAX_STRUCTURED, COMMIT: 16 << 20}

MANIFEST_MAGIC = b"casreg-manifest-1\n"
TREE_MAGIC = b"casreg-tree-1\n"
COMMIT_MAGIC = b"casreg-commit-1\n"

_MANIFEST_HEAD = struct.Struct("<Q32sI")
_MANIFEST_REC = struct.Struct("<32sI")

FILE, DIR, LINK = "file", "tree", "link"


def object_id(data) -> bytes:
    """The 32-byte BLAKE3 id of canonical bytes."""
    return blake3.blake3(data).digest()


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Manifest:
    size: int
    file_hash: bytes
    chunks: list[tuple[bytes, int]]  # (chunk id, length) in file order

    def encode(self) -> bytes:
        out = bytearray(MANIFEST_MAGIC)
        out += _MANIFEST_HEAD.pack(self.size, self.file_hash, len(self.chunks))
        for cid, length in self.chunks:
            out += _MANIFEST_REC.pack(cid, length)
        return bytes(out)

    @classmethod
    def decode(cls, data) -> Manifest:
        data = bytes(data)
        if not data.startswith(MANIFEST_MAGIC):
            raise Corrupt("not a manifest object")
        pos = len(MANIFEST_MAGIC)
        try:
            size, file_hash, count = _MANIFEST_HEAD.unpack_from(data, pos)
        except struct.error:
            raise Corrupt("truncated manifest") from None
        pos += _MANIFEST_HEAD.size
        if len(data) != pos + count * _MANIFEST_REC.size:
            raise Corrupt("manifest length does not match its chunk count")
        chunks = list(_MANIFEST_REC.iter_unpack(data[pos:]))
        if sum(length for _, length in chunks) != size:
            raise Corrupt("manifest chunk lengths do not add up to the file size")
        return cls(size, file_hash, chunks)


def check_entry_name(name: str) -> str:
    """A tree entry name must be one path component: no traversal, no separators, no NUL."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise Corrupt(f"unsafe name in tree: {name!r}")
    return name


@dataclass
class TreeEntry:
    name: str
    kind: str
    mode: int
    size: int
    id: bytes | None = None  # manifest id (file) or tree id (tree)
    target: str | None = None  # link target (link)

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "mode": self.mode, "size": self.size}
        if self.kind == LINK:
            out["target"] = self.target
        else:
            assert self.id is not None, f"tree entry {self.name!r} has no id"  # set for files and trees
            out["id"] = self.id.hex()
        return out

    @classmethod
    def from_json(cls, d: dict) -> TreeEntry:
        try:
            kind = d["kind"]
            if kind not in (FILE, DIR, LINK):
                raise Corrupt(f"unknown tree entry kind {kind!r}")
            entry = cls(check_entry_name(d["name"]), kind, int(d["mode"]), int(d["size"]))
            if kind == LINK:
                entry.target = str(d["target"])
            else:
                entry.id = bytes.fromhex(d["id"])
                if len(entry.id) != 32:
                    raise ValueError("bad id length")
        except (KeyError, TypeError, ValueError) as exc:
            raise Corrupt(f"malformed tree entry: {exc}") from None
        return entry


@dataclass
class Tree:
    entries: list[TreeEntry] = field(default_factory=list)

    def encode(self) -> bytes:
        entries = sorted(self.entries, key=lambda e: e.name.encode())
        return TREE_MAGIC + canonical_json([e.to_json() for e in entries])

    @classmethod
    def decode(cls, data) -> Tree:
        data = bytes(data)
        if not data.startswith(TREE_MAGIC):
            raise Corrupt("not a tree object")
        try:
            items = json.loads(data[len(TREE_MAGIC):])
        except ValueError:
            raise Corrupt("malformed tree") from None
        if not isinstance(items, list):
            raise Corrupt("malformed tree")
        entries = [TreeEntry.from_json(d) for d in items]
        if len({e.name for e in entries}) != len(entries):
            raise Corrupt("duplicate name in tree")
        return cls(entries)

    def get(self, name: str) -> TreeEntry | None:
        for e in self.entries:
            if e.name == name:
                return e
        return None


@dataclass
class Commit:
    tree: bytes
    parents: list[bytes]
    author: str
    time: int
    message: str
    meta: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return COMMIT_MAGIC + canonical_json({
            "tree": self.tree.hex(), "parents": [p.hex() for p in self.parents],
            "author": self.author, "time": self.time, "message": self.message, "meta": self.meta,
        })

    @classmethod
    def decode(cls, data) -> Commit:
        data = bytes(data)
        if not data.startswith(COMMIT_MAGIC):
            raise Corrupt("not a commit object")
        try:
            d = json.loads(data[len(COMMIT_MAGIC):])
            return cls(bytes.fromhex(d["tree"]), [bytes.fromhex(p) for p in d["parents"]],
                       d["author"], int(d["time"]), d["message"], dict(d["meta"]))
        except (KeyError, TypeError, ValueError):
            raise Corrupt("malformed commit") from None

    def to_json(self) -> dict:
        return {"tree": self.tree.hex(), "parents": [p.hex() for p in self.parents],
                "author": self.author, "time": self.time, "message": self.message, "meta": self.meta}


# kind -> decoder; what it returns (Manifest, Tree or Commit) depends on the kind
DECODERS: dict[int, Callable[[Any], Any]] = {MANIFEST: Manifest.decode, TREE: Tree.decode, COMMIT: Commit.decode}


def kind_of(data) -> int:
    """The kind of a structured object from its magic line (CHUNK for anything else)."""
    head = bytes(data[:20])
    for kind, magic in ((MANIFEST, MANIFEST_MAGIC), (TREE, TREE_MAGIC), (COMMIT, COMMIT_MAGIC)):
        if head.startswith(magic):
            return kind
    return CHUNK
