"""What a version holds, kept beside it so that listings need not read its trees, and the store's
object counters (counts, stored and raw bytes), so that ``stats`` need not read every object.

Both live in the LMDB ``meta`` database and are written by ``ObjectStore`` in the transaction that
puts or deletes the objects, so a crash never leaves them wrong:
- ``summary/<commit id>``: a version's parents, logical size (the root tree's entries, links
  left out), number of files (the whole tree) and what ``versions`` shows of its commit, written
  when the commit lands by any path (commit, fetch, clone); a version stored before there were
  summaries has none, and ``ObjectStore.summary`` reads its trees instead (writing nothing).
- ``objects/counters``: see ``Counters``. A store older than them has none until ``stats --full``
  counts every object once (``ObjectStore.recount``); until then nothing updates them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from ..errors import Corrupt
from . import codec
from .encoding import CHUNK, DIR, FILE, KIND_NAMES, LINK, Commit, Tree

SUMMARY_PREFIX = b"summary/"
COUNTERS_KEY = b"objects/counters"
_FORMAT = 1
SHOWN_META = ("state",)  # the committed metadata a listing shows without reading the commit
_HEAD = struct.Struct("<BQQH")  # format, logical bytes, files, number of parents; then the parents
_SHOWN = struct.Struct("<qIII")  # time, then the lengths of author, message, shown metadata (JSON)


@dataclass(slots=True)  # listings make one per row: slots build faster
class Summary:
    """What listings show of a version: its parents, logical size and number of files, and from
    its commit the time, author, message and ``shown_meta``: the keys of the metadata it was
    committed with that listings show (``state``; notes may have changed it since: ``notes.read``)."""
    parents: list[bytes]
    logical_bytes: int
    files: int
    time: int
    author: str
    message: str
    shown_meta: dict

    def encode(self) -> bytes:
        author, message = self.author.encode(), self.message.encode()
        meta = json.dumps(self.shown_meta, sort_keys=True).encode() if self.shown_meta else b""
        return b"".join((_HEAD.pack(_FORMAT, self.logical_bytes, self.files, len(self.parents)), *self.parents,
                         _SHOWN.pack(self.time, len(author), len(message), len(meta)), author, message, meta))

    @classmethod
    def decode(cls, value) -> Summary:
        if not isinstance(value, bytes):
            value = bytes(value)
        try:
            fmt, logical, files, n = _HEAD.unpack_from(value)
            end_parents = _HEAD.size + 32 * n
            when, n_author, n_message, n_meta = _SHOWN.unpack_from(value, end_parents)
            at = end_parents + _SHOWN.size
            end_author = at + n_author
            end_message = end_author + n_message
            if fmt != _FORMAT or len(value) != end_message + n_meta:
                raise ValueError
            meta = json.loads(value[end_message:]) if n_meta else {}
            if not isinstance(meta, dict):
                raise ValueError
            parents = ([value[_HEAD.size:end_parents]] if n == 1 else  # most versions have one: listings decode
                       [value[i:i + 32] for i in range(_HEAD.size, end_parents, 32)])  # one per row
            return cls(parents, logical, files, when, value[at:end_author].decode(),
                       value[end_author:end_message].decode(), meta)
        except (struct.error, ValueError, TypeError):  # UnicodeDecodeError is a ValueError
            raise Corrupt("a version summary is malformed") from None


def listed(value) -> tuple[int, str, str, int, str]:
    """What a listing row shows of a stored summary: (time, author, message, logical bytes,
    committed state or "LIVE"), without building a ``Summary`` (``versions`` reads one per
    version); Corrupt as ``Summary.decode``."""
    try:
        fmt, logical, _, n = _HEAD.unpack_from(value)
        at = _HEAD.size + 32 * n
        when, n_author, n_message, n_meta = _SHOWN.unpack_from(value, at)
        at += _SHOWN.size
        end_author = at + n_author
        end_message = end_author + n_message
        if fmt != _FORMAT or len(value) != end_message + n_meta:
            raise ValueError
        state = "LIVE"
        if n_meta:
            meta = json.loads(bytes(value[end_message:]))
            if not isinstance(meta, dict):
                raise ValueError
            state = meta.get("state", "LIVE")
        return when, bytes(value[at:end_author]).decode(), bytes(value[end_author:end_message]).decode(), logical, state
    except (struct.error, ValueError, TypeError):
        raise Corrupt("a version summary is malformed") from None


class SummaryIndex:
    """The parents and logical size of every version with a summary, read in one pass over the
    ``meta`` database in key order (a walk of many versions then costs a dictionary lookup each,
    not a random B-tree lookup); only the fixed part of each summary is kept."""

    def __init__(self):
        self._heads: dict[bytes, bytes] = {}

    def add(self, commit_id: bytes, value) -> None:
        n = _HEAD.unpack_from(value)[3]
        self._heads[commit_id] = bytes(value[:_HEAD.size + 32 * n])

    def parents_and_size(self, commit_id: bytes) -> tuple[list[bytes], int] | None:
        value = self._heads.get(commit_id)
        if value is None:
            return None
        _, logical, _, n = _HEAD.unpack_from(value)
        return [value[i:i + 32] for i in range(_HEAD.size, _HEAD.size + 32 * n, 32)], logical


def summary_key(commit_id: bytes) -> bytes:
    return SUMMARY_PREFIX + commit_id


def logical_size(tree: Tree) -> int:
    """A version's logical size: its root tree's entries (a directory's is its total), no links."""
    return sum(e.size for e in tree.entries if e.kind != LINK)


def summarize(commit: Commit, load_tree) -> Summary:
    """The summary of ``commit``, reading its trees with ``load_tree(id) -> Tree`` (each once)."""
    root = load_tree(commit.tree)
    logical = logical_size(root)
    tree: Tree | None = root
    del root
    files = 0
    seen = {commit.tree}
    pending: list[bytes] = []  # ids: a tree is loaded when its turn comes, one at a time in memory
    while tree is not None:
        for e in tree.entries:
            if e.kind == FILE:
                files += 1
            elif e.kind == DIR and e.id is not None and e.id not in seen:
                seen.add(e.id)
                pending.append(e.id)
        tree = load_tree(pending.pop()) if pending else None
    return Summary(list(commit.parents), logical, files, commit.time, commit.author, commit.message,
                   {key: commit.meta[key] for key in SHOWN_META if key in commit.meta})


@dataclass
class Counters:
    """What the ``objects`` database holds, kept as objects land and leave: per kind the number of
    objects and their stored bytes (header included); for chunks their raw bytes and their stored
    bytes per codec; ``damaged``: chunks whose header could not be read when they were counted."""
    count: dict[str, int] = field(default_factory=lambda: {name: 0 for name in KIND_NAMES.values()})
    stored: dict[str, int] = field(default_factory=lambda: {name: 0 for name in KIND_NAMES.values()})
    chunk_raw: int = 0
    chunk_codec: dict[str, int] = field(default_factory=dict)
    damaged: int = 0

    def add(self, kind: int, tag: int, payload, sign: int = 1) -> None:
        """Count a stored object (kind, codec tag, payload) in (``sign`` 1) or out (-1)."""
        name = KIND_NAMES.get(kind, "unknown")
        stored = len(payload) + 2  # the kind and codec bytes
        self.count[name] = self.count.get(name, 0) + sign
        self.stored[name] = self.stored.get(name, 0) + sign * stored
        if kind == CHUNK:
            try:
                self.chunk_raw += sign * codec.raw_size(tag, payload)
            except Corrupt:
                self.damaged += sign
            cname = codec.CODECS[tag].name if tag in codec.CODECS else str(tag)
            self.chunk_codec[cname] = self.chunk_codec.get(cname, 0) + sign * stored

    def merge(self, other: Counters) -> Counters:
        for mine, theirs in ((self.count, other.count), (self.stored, other.stored),
                             (self.chunk_codec, other.chunk_codec)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.chunk_raw += other.chunk_raw
        self.damaged += other.damaged
        for table in (self.count, self.stored, self.chunk_codec):  # as a fresh count has them
            for key in [k for k, n in table.items() if n == 0 and k not in KIND_NAMES.values()]:
                del table[key]
        return self

    def encode(self) -> bytes:
        return json.dumps({"count": self.count, "stored": self.stored, "chunk_raw": self.chunk_raw,
                           "chunk_codec": self.chunk_codec, "damaged": self.damaged}, sort_keys=True).encode()

    @classmethod
    def decode(cls, value) -> Counters:
        try:
            d = json.loads(bytes(value))
            return cls(dict(d["count"]), dict(d["stored"]), int(d["chunk_raw"]), dict(d["chunk_codec"]),
                       int(d["damaged"]))
        except (KeyError, TypeError, ValueError):
            raise Corrupt("the store's object counters are malformed; `casreg stats --full` shows the truth") from None

