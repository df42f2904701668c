"""A casreg store: the Python API behind every CLI command.

Write order (the crash-safety story): chunks land first, in batched LMDB transactions (harmless if
nothing ever refers to them; ``gc`` drops them); then one write transaction lands the manifests,
trees, the commit and moves the ref by compare-and-swap. A kill at any moment leaves either the old
ref or the new one, never a ref pointing at something incomplete.

``gc`` and commits: a commit holds a shared ``flock`` on ``<store>/gc.lock`` from its first chunk to
its ref move; ``gc`` takes it exclusively, so it waits for commits in progress and commits wait for
it. Its mark and sweep run in one LMDB write transaction, so readers keep their snapshots.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import itertools
import json
import math
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple, TypeVar

from . import notes
from . import progress as progress_mod
from .db import Database
from .errors import (
    AlreadyExists,
    CasregError,
    Corrupt,
    InvalidInput,
    NonFastForward,
    NotFound,
    RefConflict,
    StoreUnavailable,
    UnsafePath,
)
from .ignore import EVERYTHING, IGNORE_FILE, PathFilter
from .metadata import check_map
from .objects import codec
from .objects.chunker import Chunker, ChunkerParams
from .objects.encoding import COMMIT, DIR, FILE, KIND_NAMES, LINK, MANIFEST, TREE, Commit, Tree, TreeEntry
from .objects.graph import Dated, describe, is_ancestor, newest_first, reachable
from .objects.store import ObjectStore, stored_size
from .objects.summary import Summary
from .refs import ANY, RefContainer, check_ref_name
from .timespec import parse_duration

if TYPE_CHECKING:  # the pipelines import numpy: loaded when a command needs them, not at start-up
    import lmdb

    from .objects.ingest import Ingester
    from .objects.restore import Restorer

_Dated = TypeVar("_Dated", bound=Dated)  # a commit, or its summary

STORE_DIR = ".casreg"
# The store's codec policy (codec.POLICIES): zstd: every chunk zstd -3 (or raw); grouped: numeric
# chunks as byte-grouped planes (objects/grouping.py), ~9% smaller on fp32 checkpoints; delta:
# grouped, and a new version of a large file as deltas against its keyframe (objects/delta.py),
# the default: the benchmark series takes 0.60x of the zstd store's directory.
CODECS = tuple(codec.POLICIES)
DEFAULT_CODEC = "delta"


def _codec_config(codec_name: str) -> dict:
    """The store's ``codec`` config entry; refuses an unknown codec."""
    if codec_name not in CODECS:
        raise InvalidInput(f"unknown codec {codec_name!r}: choose {', '.join(CODECS)}")
    return {"name": codec_name, "level": codec.ZSTD_LEVEL}
FORMAT = 1
SHORT_NAMESPACES = ("tags/", "models/", "aliases/", "remotes/")  # `golden` finds tags/golden
_ANCESTRY = re.compile(r"(?:[~^]\d*)+$")  # git's rev~2^2 steps after a name
DEFAULT_GRACE = "14d"  # as git's gc.pruneExpire: what no ref reaches stays this long
ENV_STORE = "CASREG_STORE"


def find_store(explicit: str | None = None, start: str | None = None) -> str:
    """The store to use: ``explicit`` / $CASREG_STORE, else ``.casreg`` here or in a parent."""
    explicit = explicit or os.environ.get(ENV_STORE)
    if explicit:
        return os.path.abspath(explicit)
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, STORE_DIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            raise StoreUnavailable("not in a casreg store (no .casreg here or in any parent); run `casreg init`")
        here = parent


def default_author() -> str:
    env = os.environ.get("CASREG_AUTHOR")
    if env:
        return env
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass
class _Node:
    """A path scanned for commit: what it is, before any byte is stored."""
    name: str
    kind: str
    path: str
    mode: int = 0o644
    size: int = 0
    target: str | None = None
    children: list[_Node] = field(default_factory=list)


@dataclass
class CommitResult:
    id: bytes
    logical_bytes: int
    new_chunks: int
    new_stored_bytes: int
    moved: bool = True
    pushed: list = field(default_factory=list)  # sync.PushResult of an auto-sync push

    def to_json(self) -> dict:
        return {"commit": self.id.hex(), "logical_bytes": self.logical_bytes, "moved": self.moved,
                "new_chunks": self.new_chunks, "new_stored_bytes": self.new_stored_bytes,
                **({"pushed": [p.to_json() for p in self.pushed]} if self.pushed else {})}


class Version(NamedTuple):
    """A version as ``log`` and ``show`` give it: its id and its (immutable) commit."""
    id: bytes
    commit: Commit

    def to_json(self) -> dict:
        return {"id": self.id.hex(), **self.commit.to_json()}


def _entry_name(name: str, path: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"file name is not valid UTF-8: {os.fsencode(path)!r}") from None
    return name


class Repository:
    def __init__(self, path: str, *, readonly: bool = False):
        if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "data.mdb")):
            raise StoreUnavailable(f"{path} is not a casreg store; run `casreg init`")
        self.path = path
        self.db = Database(path, readonly=readonly)
        self.objects = ObjectStore(self.db)
        self.refs = RefContainer(self.db)
        config = self.config()
        if config.get("format") != FORMAT:
            raise StoreUnavailable(f"{path}: unsupported store format {config.get('format')!r}")
        self.chunker_params = ChunkerParams.from_json(config["chunker"])
        self.codec_name = config.get("codec", {}).get("name", "zstd")
        if self.codec_name not in codec.POLICIES:
            raise StoreUnavailable(f"{path}: written with codec {self.codec_name!r}, which this casreg does not know")

    # -- life cycle ------------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str, params: ChunkerParams | None = None, codec_name: str = DEFAULT_CODEC) -> Repository:
        path = os.path.abspath(path)
        params = params or ChunkerParams()
        config = {"format": FORMAT, "chunker": params.to_json(), "codec": _codec_config(codec_name)}
        if os.path.exists(os.path.join(path, "data.mdb")):
            raise AlreadyExists(f"a casreg store already exists at {path}")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create store at {path}: {exc.strerror}") from None
        db = Database(path)

        def write(txn):
            for key, value in config.items():
                txn.put(key.encode(), json.dumps(value, sort_keys=True).encode(), db=db.dbs["config"])
            ObjectStore(db).recount(txn)  # an empty store: its counters start at zero
        db.write(write)
        db.close()
        return cls(path)

    @classmethod
    def open(cls, explicit: str | None = None, *, readonly: bool = False) -> Repository:
        return cls(find_store(explicit), readonly=readonly)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def config(self) -> dict:
        with self.db.read() as txn:
            return {bytes(k).decode(): json.loads(bytes(v)) for k, v in txn.cursor(db=self.db.dbs["config"])}

    def set_codec(self, codec_name: str) -> None:
        """Store later commits with another codec. Stored objects keep their form: every reader
        decodes every codec, and ids do not depend on it."""
        value = json.dumps(_codec_config(codec_name), sort_keys=True).encode()
        self.db.write(lambda txn: txn.put(b"codec", value, db=self.db.dbs["config"]))
        self.codec_name = codec_name

    @property
    def grouping(self) -> bool:
        """New chunks of numbers are stored byte-grouped (the grouped and delta codecs)."""
        return codec.POLICIES[self.codec_name][0]

    @property
    def deltas(self) -> bool:
        """New versions of large files are stored as deltas against a keyframe (delta codec)."""
        return codec.POLICIES[self.codec_name][1]

    def protected_from_gc(self):
        """Held from a writer's first object to its ref move (commit, fetch): a gc waits for it,
        so nothing a writer landed is swept before a ref reaches it."""
        return self._gc_lock(exclusive=False)

    def collecting_garbage(self):
        """Held while garbage is collected (``gc``, or a gc of this store as a file:// remote):
        waits for every writer holding ``protected_from_gc`` and keeps new ones waiting."""
        return self._gc_lock(exclusive=True)

    @contextlib.contextmanager
    def _gc_lock(self, exclusive: bool) -> Iterator[None]:
        lock_path = os.path.join(self.path, "gc.lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreUnavailable(f"store at {self.path} is not writable: {exc.strerror}") from None
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                print("casreg: waiting for " + ("commits in progress" if exclusive else "gc") + " to finish",
                      file=sys.stderr)
                fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    # -- names -----------------------------------------------------------------------------------
    def resolve(self, spec: str) -> bytes:
        """A commit id from a name, the way git resolves one: the ref itself, else the one ref
        among ``tags/``, ``models/``, ``aliases/``, ``remotes/`` + ``spec``, else a full id or a
        unique id prefix of 6+ hex digits; then git's ``~N`` (N first parents back; ``~`` is
        ``~1``) and ``^N`` (the Nth parent; ``^`` is ``^1``, ``^0`` the version itself), as many
        as given (ref names cannot hold either). Ambiguous names list the candidates; unknown
        ones suggest the closest names."""
        if not spec:  # LMDB takes no empty key
            raise InvalidInput("an empty name names no version")
        steps = _ANCESTRY.search(spec)
        if steps is not None and steps.start() > 0:
            return self._ancestor(self.resolve(spec[:steps.start()]), steps.group(), spec)
        with self.db.read() as txn:
            target = self.refs.get(txn, spec)
            if target is not None:
                return target
            found = [(f"{ns}{spec}", t) for ns in SHORT_NAMESPACES
                     if (t := self.refs.get(txn, f"{ns}{spec}")) is not None]
            if len(found) == 1:
                return found[0][1]
            if len(found) > 1:
                raise InvalidInput(f"{spec!r} is ambiguous: it could be " + ", ".join(n for n, _ in found))
            lowered = spec.lower()
            is_hex = bool(lowered) and all(c in "0123456789abcdef" for c in lowered)
            if is_hex and 6 <= len(lowered) <= 64:
                matches = self._ids_with_prefix(txn, lowered)
                commits = [m for m in matches if self.objects.stored(txn, m)[0] == COMMIT]
                if len(commits) == 1:
                    return commits[0]
                if len(commits) > 1:
                    raise InvalidInput(f"ambiguous id prefix {spec!r}: " +
                                       ", ".join(c.hex()[:12] for c in commits[:5]) + "; give more digits")
            names = [name for name, _ in self.refs.items(txn)]
        check_ref_name(spec)
        if is_hex and len(lowered) < 6:
            raise InvalidInput(f"id prefix {spec!r} is too short: give at least 6 hex digits")
        import difflib
        short = {name.split("/", 1)[1]: name for name in names if name.startswith(SHORT_NAMESPACES)}
        close = difflib.get_close_matches(spec, names + list(short), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
        raise NotFound(f"unknown ref or version: {spec}{hint}")

    def _ancestor(self, cid: bytes, steps: str, spec: str) -> bytes:
        """Where ``~N`` / ``^N`` steps lead from ``cid`` (NotFound past the first version)."""
        for op, digits in re.findall(r"([~^])(\d*)", steps):
            n = int(digits) if digits else 1
            if op == "^" and n == 0:
                continue
            for _ in range(n if op == "~" else 1):
                parents = self.read_commit(cid).parents
                index = 0 if op == "~" else n - 1
                if len(parents) <= index:
                    has = f"has {len(parents)} parent{'s' if len(parents) != 1 else ''}"
                    raise NotFound(f"{spec}: version {cid.hex()[:12]} {has}, so nothing is there")
                cid = parents[index]
        return cid

    def _ids_with_prefix(self, txn, hex_prefix: str, limit: int = 16) -> list[bytes]:
        cur = txn.cursor(db=self.objects.table)
        start = bytes.fromhex(hex_prefix[: len(hex_prefix) // 2 * 2])
        out = []
        if cur.set_range(start):
            for key in cur.iternext(values=False):
                key = bytes(key)
                if not key.hex().startswith(hex_prefix):
                    break
                out.append(key)
                if len(out) >= limit:
                    break
        return out

    def _split_spec(self, spec: str) -> tuple[bytes, str]:
        ref, _, path = spec.partition(":")
        return self.resolve(ref), path.strip("/")

    # -- commit ----------------------------------------------------------------------------------
    def _scan(self, path: str, name: str, paths: PathFilter = EVERYTHING, rel: str = "") -> _Node:
        """What ``path`` holds, minus what ``paths`` leaves out (``rel``: its path below the root)."""
        try:
            st = os.lstat(path)
        except OSError as exc:
            raise CasregError(f"cannot read {path}: {exc.strerror}") from None
        name = _entry_name(name, path)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            return _Node(name, LINK, path, 0o777, len(os.fsencode(target)), target=_entry_name(target, path))
        if stat.S_ISREG(st.st_mode):
            return _Node(name, FILE, path, 0o755 if st.st_mode & 0o111 else 0o644, st.st_size)
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidInput(f"cannot store {path}: not a regular file, directory or symlink "
                               f"(leave it out with --exclude or {IGNORE_FILE})")
        node = _Node(name, DIR, path, 0o755)
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise CasregError(f"cannot read directory {path}: {exc.strerror}") from None
        for child in names:
            child_path = os.path.join(path, child)
            if os.path.realpath(child_path) == os.path.realpath(self.path):
                continue  # never store the store itself
            child_rel = f"{rel}{child}"
            is_dir = os.path.isdir(child_path) and not os.path.islink(child_path)
            if paths.skips(child_rel, is_dir):
                continue
            sub = self._scan(child_path, child, paths, child_rel + "/")
            if sub.kind == DIR and not sub.children and paths is not EVERYTHING and os.listdir(child_path):
                continue  # everything in it was left out
            node.children.append(sub)
            node.size += sub.size if sub.kind != LINK else 0
        return node

    def _store_node(self, node: _Node, ingester: Ingester, staged: dict) -> bytes:
        """Store a scanned directory's files; returns its tree id (objects staged, not written)."""
        entries = []
        for child in node.children:
            if child.kind == FILE:
                manifest = ingester.add_file(child.path)
                if manifest.size != child.size:
                    raise CasregError(f"file changed while it was being read, refusing to store it: {child.path}")
                oid = self._stage(staged, MANIFEST, manifest.encode())
                entries.append(TreeEntry(child.name, FILE, child.mode, child.size, id=oid))
            elif child.kind == DIR:
                entries.append(TreeEntry(child.name, DIR, 0o755, child.size,
                                         id=self._store_node(child, ingester, staged)))
            else:
                entries.append(TreeEntry(child.name, LINK, 0o777, child.size, target=child.target))
        return self._stage(staged, TREE, Tree(entries).encode())

    def stage_files(self, files: dict[str, str], staged: dict) -> dict[str, TreeEntry]:
        """Store the files ``files`` names (name -> path on disk); returns their tree entries
        (manifests staged, chunks written: the caller holds ``protected_from_gc``)."""
        from .objects.ingest import Ingester
        entries = {}
        with Ingester(self.objects, Chunker(self.chunker_params), grouping=self.grouping,
                      deltas=self.deltas) as ing:
            for name, path in files.items():
                node = self._scan(path, os.path.basename(name))
                if node.kind != FILE:
                    raise InvalidInput(f"not a regular file: {path}")
                manifest = ing.add_file(path)
                oid = self._stage(staged, MANIFEST, manifest.encode())
                entries[name] = TreeEntry(node.name, FILE, node.mode, manifest.size, id=oid)
            ing.flush()
        return entries

    def _stage(self, staged: dict, kind: int, data: bytes) -> bytes:
        oid, value = self.objects.encode(kind, data)
        staged[oid] = value
        return oid

    def commit(self, path: str, ref: str, *, message: str = "", parents: list[str] | tuple[str, ...] = (),
               meta: dict[str, str] | None = None, author: str | None = None, force: bool = False,
               expect_old: str | None = None, unchanged_ok: bool = False, exclude: list[str] | tuple = (),
               include: list[str] | tuple = (), progress=None) -> CommitResult:
        """Store ``path`` (file or directory) as a new version on top of ``ref``.

        Names move forward: an existing ``ref``'s version becomes the new one's parent (or must be
        in the history of the ``parents`` given), and the ref moves by compare-and-swap; a commit
        that races another to the same name lands on top of it (both stay in the history), unless
        ``expect_old`` pins where the ref must be. A tree equal to the current version's stores
        nothing new and moves nothing (``moved`` False). ``force`` rewrites the name: the new
        version's parents are just ``parents`` (the old version stays reachable from the reflog
        until gc's grace period ends). ``unchanged_ok`` makes the name immutable (FATE versions):
        a different tree is refused unless ``force``. ``exclude`` / ``include`` patterns (and the
        directory's ``.casregignore``) choose the files, see ``ignore``.
        """
        check_ref_name(ref)
        progress = progress or progress_mod.NULL
        pinned = None if force or expect_old is None else self._expected(ref, False, expect_old)
        explicit = [self.resolve(p) for p in parents]
        path = os.path.abspath(path)
        if not os.path.lexists(path):
            raise NotFound(f"no such file or directory: {path}")
        paths = PathFilter.for_directory(path, exclude, include) if os.path.isdir(path) else EVERYTHING
        scanned = self._scan(path, os.path.basename(path) or "root", paths)
        root = scanned if scanned.kind == DIR else _Node("", DIR, path, children=[scanned], size=scanned.size)
        staged: dict[bytes, bytes] = {}
        with self.protected_from_gc():
            progress.start("commit", root.size)
            from .objects.ingest import Ingester
            with Ingester(self.objects, Chunker(self.chunker_params), progress=progress.advance,
                          grouping=self.grouping, deltas=self.deltas) as ing:
                tree_id = self._store_node(root, ing, staged)
                ing.flush()
            for _ in range(8):  # a concurrent commit to the same name: go on top of it
                with self.db.read() as txn:
                    current = self.refs.get(txn, ref)
                if expect_old is not None and not force and current != pinned:
                    raise RefConflict(f"ref {ref} is at {current.hex()[:12] if current else 'nothing'}, "
                                      f"expected {pinned.hex()[:12] if pinned else 'nothing'}")
                if current is not None and self.read_commit(current).tree == tree_id:
                    progress.done()
                    return CommitResult(current, root.size, ing.new_chunks, ing.new_bytes, moved=False)
                if current is not None and unchanged_ok and not force:
                    raise AlreadyExists(f"ref {ref} already holds different content; use --force to replace it")
                parent_ids = self._parents_on(ref, current, explicit, force)
                expected = ANY if force else (current if expect_old is None else pinned)
                try:
                    commit_id = self.commit_tree(tree_id, ref, staged=staged, parents=parent_ids, meta=meta,
                                                 message=message, expected=expected, author=author,
                                                 keyframes=ing.keyframe_updates)
                except RefConflict:
                    if expect_old is not None:
                        raise
                    continue
                progress.done()
                return CommitResult(commit_id, root.size, ing.new_chunks, ing.new_bytes)
        raise RefConflict(f"ref {ref} kept moving while committing; try again")

    def _parents_on(self, ref: str, current: bytes | None, explicit: list[bytes], force: bool) -> list[bytes]:
        """The parents of a new version of ``ref``: its current version first, unless the ones
        given already descend from it (or ``force`` rewrites the name)."""
        if force or current is None or current in explicit:
            return explicit
        if not explicit:
            return [current]
        with self.db.read() as txn:
            if any(is_ancestor(self.objects, txn, current, p) for p in explicit):
                return explicit
        raise NonFastForward(f"ref {ref} is at {current.hex()[:12]}, which is not in the history of the "
                             "given parents; add it with --parent or use --force to rewrite the name")

    def commit_tree(self, tree_id: bytes, ref: str, *, staged: dict | None = None, parents: list[bytes] | tuple[bytes, ...] = (),
                    meta: dict | None = None, message: str = "", expected=None, author: str | None = None,
                    keyframes: dict | None = None) -> bytes:
        """A new version of an already stored tree (plus ``staged`` new trees), landed with the
        ref move in one transaction. ``expected`` is the ref's required current value (CAS);
        ``keyframes`` are delta keyframe index entries the commit's files made."""
        check_ref_name(ref)
        staged = dict(staged or {})
        commit = Commit(tree_id, list(parents), author or default_author(), int(time.time()), message,
                        check_map(meta))
        commit_id = self._stage(staged, COMMIT, commit.encode())

        def land(txn):
            self.objects.put_values(txn, staged.items())
            self.objects.put_keyframe_entries(txn, keyframes or {})
            self.refs.set_if_equals(txn, ref, expected, commit_id, who=commit.author,
                                    message=f"commit: {message}" if message else "commit")
        self.db.write(land)
        if keyframes:
            from .objects.keyframes import prune_cache
            prune_cache(self.objects)  # a layout's new keyframe replaces the old one's copy
        return commit_id

    def metadata(self, spec: str) -> dict:
        """A version's current metadata (what it was committed with, as annotated since)."""
        return notes.read(self, self.resolve(spec))

    def set_meta(self, spec: str, updates: dict, *, remove: list[str] | tuple = (), message: str = "",
                 expect=ANY) -> bytes:
        """Change a version's metadata beside it (``notes``): the version and its id stay
        as they are; the change is compare-and-swap guarded and logged. Returns the version id."""
        version = self.resolve(spec)
        notes.update(self, version, updates, remove=remove, message=message, expect=expect)
        return version

    def metadata_history(self, spec: str) -> list:
        return notes.history(self, self.resolve(spec))

    def amend_chain(self, ref: str, updates: dict, *, remove: list[str] | tuple = (), message: str = "") -> bytes:
        """Move ``ref`` to a new commit of the same tree with changed metadata (the old one as
        parent): for chains that are metadata themselves, such as a model's ``modelmeta/``."""
        current = self.resolve(ref)
        old = self.read_commit(current)
        meta = {k: v for k, v in old.meta.items() if k not in set(remove)}
        meta.update(updates)
        changed = ", ".join([f"{k}={v}" for k, v in updates.items()] + [f"-{k}" for k in remove])
        return self.commit_tree(old.tree, ref, parents=[current], meta=meta, expected=current,
                                message=message or f"meta: {changed}")

    def tree_with(self, tree_id: bytes | None, path: str, entry: TreeEntry | None, staged: dict
                  ) -> tuple[bytes, int]:
        """(id, size) of ``tree_id`` with ``path`` replaced by ``entry`` (removed if None)."""
        return self.tree_edit(tree_id, {path: entry}, staged)

    def tree_edit(self, tree_id: bytes | None, edits: dict[str, TreeEntry | None], staged: dict
                  ) -> tuple[bytes, int]:
        """(id, size) of the stored tree ``tree_id`` with each path of ``edits`` replaced by its
        entry (removed if None), in one pass. New trees are staged, everything else is shared;
        missing directories on the way are created."""
        with self.db.read() as txn:
            tree = self.objects.load(txn, tree_id, TREE) if tree_id else Tree([])
        entries = {e.name: e for e in tree.entries}
        below: dict[str, dict[str, TreeEntry | None]] = {}
        for path, entry in edits.items():
            head, _, rest = path.strip("/").partition("/")
            if rest:
                below.setdefault(head, {})[rest] = entry
            elif entry is None:
                entries.pop(head, None)
            else:
                entry.name = head
                entries[head] = entry
        for head, sub in below.items():
            current = entries.get(head)
            sub_id, sub_size = self.tree_edit(current.id if current and current.kind == DIR else None, sub, staged)
            entries[head] = TreeEntry(head, DIR, 0o755, sub_size, id=sub_id)
        size = sum(e.size for e in entries.values() if e.kind != LINK)
        return self._stage(staged, TREE, Tree(list(entries.values())).encode()), size

    def _expected(self, ref: str, force: bool, expect_old: str | None):
        """What the ref must point at for an update to go through (checked again when it lands)."""
        if force:
            return ANY
        if expect_old is not None:
            if expect_old in ("", "none", "0" * 64):
                return None
            return self.resolve(expect_old)
        with self.db.read() as txn:
            current = self.refs.get(txn, ref)
        if current is not None:
            raise AlreadyExists(f"ref {ref} already exists; use --force to move it or --expect-old to update it")
        return None

    # -- refs ------------------------------------------------------------------------------------
    def update_ref(self, ref: str, target: str, *, force: bool = False, expect_old: str | None = None,
                   message: str = "update-ref") -> bytes:
        check_ref_name(ref)
        new = self.resolve(target)
        expected = self._expected(ref, force, expect_old)
        self.db.write(lambda txn: self.refs.set_if_equals(txn, ref, expected, new,
                                                           who=default_author(), message=message))
        return new

    def delete_ref(self, ref: str, *, expect_old: str | None = None) -> bytes:
        with self.db.read() as txn:
            current = self.refs.get(txn, ref)
        if current is None:
            raise NotFound(f"unknown ref: {ref}")
        expected = current if expect_old is None else self.resolve(expect_old)
        self.db.write(lambda txn: self.refs.remove_if_equals(txn, ref, expected,
                                                              who=default_author(), message="delete"))
        return current

    def list_refs(self, prefix: str = "") -> list[tuple[str, bytes]]:
        with self.db.read() as txn:
            return list(self.refs.items(txn, prefix))

    def reflog(self, ref: str) -> list[dict]:
        with self.db.read() as txn:
            entries = self.refs.reflog(txn, ref)
        if not entries:
            raise NotFound(f"no reflog for {ref}")
        return entries

    # -- reading ---------------------------------------------------------------------------------
    def read_commit(self, commit_id: bytes) -> Commit:
        with self.db.read() as txn:
            return self.objects.load(txn, commit_id, COMMIT)

    def log(self, spec: str, limit: int | None = None) -> list[Version]:
        """The version and its ancestors, newest first (the first ``limit`` of them)."""
        return list(self.iter_log(spec, limit))

    def iter_log(self, spec: str, limit: int | None = None) -> Iterator[Version]:
        """``log`` as it is read, one version at a time (memory: the ids seen, not the versions),
        from one snapshot held until the iterator is done."""
        for cid, commit in self._history(spec, limit, lambda txn, cid: self.objects.load(txn, cid, COMMIT)):
            yield Version(cid, commit)

    def iter_history(self, spec: str, limit: int | None = None) -> Iterator[tuple[bytes, Summary | Commit]]:
        """``iter_log`` in brief: (id, what ``log --oneline`` shows: parents, time, author,
        message) in the same order, from the versions' summaries (``ObjectStore.dated``: a
        commit stands in for a version stored before them), so no commit is read or decoded."""
        return self._history(spec, limit, self.objects.dated)

    def _history(self, spec: str, limit: int | None, load: Callable[[lmdb.Transaction, bytes], _Dated]
                 ) -> Iterator[tuple[bytes, _Dated]]:
        """(id, ``load(txn, id)``) of ``spec``'s history newest first, in one read snapshot."""
        start = self.resolve(spec)
        with self.db.read() as txn:
            history = newest_first(lambda cid: load(txn, cid), start)
            for n, (cid, entry) in enumerate(itertools.islice(history, limit), 1):
                yield cid, entry
                # a commit maps ~1 MB (see db.release_pages); summaries are small and together
                if n % 1024 == 0 or (n % 48 == 0 and isinstance(entry, Commit)):
                    self.db.release_pages()
        self.db.release_pages()

    def show(self, spec: str) -> dict:
        """One version: its commit, its current metadata and how often that changed."""
        version = self.resolve(spec)
        return {**Version(version, self.read_commit(version)).to_json(), "meta": notes.read(self, version),
                "meta_changes": len(notes.history(self, version))}

    def diff(self, old: str, new: str):
        """``compare.Diff`` of two versions: files added, removed, changed; bytes that are new."""
        from . import compare
        return compare.diff(self, old, new)

    def status(self, directory: str, spec: str):
        """``compare.Status`` of a directory against a version."""
        from . import compare
        return compare.status(self, directory, spec)

    def _entry_at(self, txn, tree_id: bytes, path: str) -> TreeEntry:
        entry = TreeEntry("", DIR, 0o755, 0, id=tree_id)
        for part in [p for p in path.split("/") if p]:
            if entry.kind != DIR:
                raise NotFound(f"not a directory in this version: {path}")
            assert entry.id is not None  # a directory entry names its tree
            child = self.objects.load(txn, entry.id, TREE).get(part)
            if child is None:
                raise NotFound(f"no such path in this version: {path}")
            entry = child
        return entry

    def _walk_files(self, txn, tree_id: bytes, prefix: str = "") -> Iterator[tuple[str, TreeEntry]]:
        for e in self.objects.load(txn, tree_id, TREE).entries:
            path = f"{prefix}{e.name}"
            if e.kind == DIR:
                assert e.id is not None  # a directory entry names its tree
                yield from self._walk_files(txn, e.id, path + "/")
            else:
                yield path, e

    def ls(self, spec: str) -> list[dict]:
        """Every file and link under ``ref[:path]`` with its size."""
        commit_id, path = self._split_spec(spec)
        with self.db.read() as txn:
            commit = self.objects.load(txn, commit_id, COMMIT)
            entry = self._entry_at(txn, commit.tree, path)
            if entry.kind != DIR:
                return [{"path": path, "kind": entry.kind, "mode": entry.mode, "size": entry.size}]
            prefix = f"{path}/" if path else ""
            assert entry.id is not None  # a directory entry names its tree
            return [{"path": p, "kind": e.kind, "mode": e.mode, "size": e.size,
                     **({"target": e.target} if e.kind == LINK else {})}
                    for p, e in self._walk_files(txn, entry.id, prefix)]

    def cat(self, spec: str, out) -> None:
        """Stream one file of a version (``ref:path``) to a binary file object."""
        commit_id, path = self._split_spec(spec)
        if not path:
            raise InvalidInput(f"name a file: {spec}:<path>")
        with self.db.read(buffers=True) as txn, self.restorer() as restorer:
            entry = self._entry_at(txn, self.objects.load(txn, commit_id, COMMIT).tree, path)
            if entry.kind != FILE:
                raise InvalidInput(f"not a file: {path}")
            assert entry.id is not None  # a file entry names its manifest
            restorer.write_stream(txn, self.objects.load(txn, entry.id, MANIFEST), out)

    def checkout(self, spec: str, dest: str, *, force: bool = False, clean: bool = False,
                 progress=None) -> bytes:
        """Write a version's tree to ``dest``, byte-identical.

        A new or empty ``dest`` is written as a temporary sibling and renamed into place. A
        non-empty directory needs ``force``: the version's files replace the files at their paths
        (each by a rename) and every other file stays, unless ``clean`` removes what the version
        does not hold. A destination that is, holds or lies inside the store is always refused.
        """
        progress = progress or progress_mod.NULL
        commit_id = self.resolve(spec)
        dest = os.path.abspath(dest)
        self._refuse_overlap_with_store(dest)
        merge = False
        if os.path.lexists(dest):
            if not os.path.isdir(dest) or os.path.islink(dest):
                if not force:
                    raise AlreadyExists(f"destination exists and is not a directory: {dest}; use --force")
            elif os.listdir(dest):
                if not force:
                    raise AlreadyExists(f"destination is not empty: {dest}; use --force to write the "
                                      "version's files into it (--clean also removes the others)")
                merge = True
        parent = dest if merge else os.path.dirname(dest)
        try:
            os.makedirs(parent, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.casreg-", dir=parent)
        except OSError as exc:
            raise CasregError(f"cannot write to {parent}: {exc.strerror}") from None
        try:
            with self.db.read(buffers=True) as txn, self.restorer() as restorer:
                commit = self.objects.load(txn, commit_id, COMMIT)
                root = self.objects.load(txn, commit.tree, TREE)
                progress.start("checkout", sum(e.size for e in root.entries if e.kind != LINK))
                self._write_tree(txn, root, tmp, restorer, progress, "")
            if merge:
                _merge_into(tmp, dest, clean=clean, skip=os.path.basename(tmp))
            else:
                os.chmod(tmp, 0o755 & ~_umask())
                self._replace(tmp, dest)
        except OSError as exc:
            raise CasregError(f"cannot write {exc.filename or dest}: {exc.strerror}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        progress.done()
        return commit_id

    def _refuse_overlap_with_store(self, dest: str) -> None:
        """Checkout never writes over, around or into the store itself."""
        store, target = os.path.realpath(self.path), os.path.realpath(dest)
        if store == target or store.startswith(target.rstrip(os.sep) + os.sep):
            raise UnsafePath(f"refusing to check out into {dest}: it holds the store {self.path}; "
                              "choose another directory")
        if target.startswith(store + os.sep):
            raise UnsafePath(f"refusing to check out into {dest}: it lies inside the store {self.path}")

    def restorer(self) -> Restorer:
        """A chunk restorer over this store (close it, or use it as a context manager)."""
        # Grouped and delta chunks: one decoding thread beside the main thread (lookups, writes)
        # keeps both cores busy; a second gained nothing (checkout of a delta version 431 vs 422 ms,
        # of a grouped one 273 vs 285, with kernels.ungroup), while zstd chunks gain from it.
        from .objects.restore import Restorer
        return Restorer(self.objects, workers=1 if self.grouping else 2)

    @staticmethod
    def _replace(tmp: str, dest: str) -> None:
        if not os.path.lexists(dest):
            os.rename(tmp, dest)
            return
        trash = tmp + ".old"
        os.rename(dest, trash)
        os.rename(tmp, dest)
        if os.path.isdir(trash) and not os.path.islink(trash):
            shutil.rmtree(trash)
        else:
            os.unlink(trash)

    def _write_tree(self, txn, tree: Tree, dirpath: str, restorer: Restorer, progress, rel: str) -> None:
        """Write ``tree`` into ``dirpath``; ``rel`` is its path in the version (for messages)."""
        for e in tree.entries:
            target = os.path.join(dirpath, e.name)  # names are single components (checked on decode)
            path = f"{rel}{e.name}"
            try:
                if e.kind == DIR:
                    assert e.id is not None  # a directory entry names its tree
                    os.mkdir(target)
                    self._write_tree(txn, self.objects.load(txn, e.id, TREE), target, restorer, progress,
                                     path + "/")
                elif e.kind == LINK:
                    assert e.target is not None  # a link entry has its target
                    os.symlink(e.target, target)
                else:
                    assert e.id is not None  # a file entry names its manifest
                    manifest = self.objects.load(txn, e.id, MANIFEST)
                    if manifest.size != e.size:
                        raise Corrupt(f"manifest {e.id.hex()} does not match its tree entry")
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 e.mode & 0o777)
                    try:
                        restorer.write_file(txn, manifest, fd)
                    finally:
                        os.close(fd)
                    progress.advance(e.size)
            except OSError as exc:
                raise CasregError(f"cannot write {target}: {exc.strerror}") from None
            except Corrupt as exc:
                if str(exc).startswith(f"{path}/"):  # said already, by a file under this directory
                    raise
                raise Corrupt(f"{path}: {exc} (`casreg verify --full` lists every damaged object)") from None

    # -- maintenance -----------------------------------------------------------------------------
    def _roots(self, txn, *, with_notes: bool = False) -> list[tuple[bytes, int]]:
        """The versions refs name; ``with_notes`` the annotation chains too (not versions: see gc)."""
        return [(cid, COMMIT) for name, cid in self.refs.items(txn) if with_notes or not notes.is_notes_ref(name)]

    def stats(self, full: bool = False) -> dict:
        """What the store holds. From the object counters (``objects/summary.py``, kept as objects
        land and leave): ``objects``, ``stored_bytes``, ``stored_chunk_bytes``,
        ``stored_bytes_by_codec``, ``unique_chunk_bytes``, ``damaged_chunks`` (chunks whose header
        was unreadable when counted) and the ratios; from the refs and the version summaries
        (no tree read): ``refs``, ``versions`` and ``logical_bytes`` of the versions the refs
        reach; from the directory: ``disk_*``, ``keyframe_cache_bytes``. ``counted``: "counters",
        or "walk" when every object was read instead: with ``full`` (which also walks the whole
        graph for ``reachable_objects``, re-reads every chunk header for ``damaged_chunks`` and
        says in ``counters_match`` whether the counters agree), or for a store that keeps no
        counters yet (``full`` on a writable store starts them)."""
        fresh = None
        if full and not self.db.readonly:
            with self.db.read() as txn:
                keeps_counters = self.objects.counters(txn) is not None
            if not keeps_counters:
                fresh = self.db.write(self.objects.recount, buffers=True)  # counted now, kept from now on
        extra: dict = {}
        with self.db.read(buffers=True) as txn:
            kept = self.objects.counters(txn)
            counted = fresh if full else kept
            source = "counters" if counted is not None and not full else "walk"
            if counted is None:
                counted = self.objects.count_stored(txn)
            if full and kept is not None:
                extra["counters_match"] = kept == counted  # False: changed behind casreg's back
            roots = self._roots(txn)
            refs = txn.stat(self.refs.refs)["entries"]
            if full:
                graph = reachable(self.objects, txn, roots)
                extra["reachable_objects"] = {name: sum(1 for kind in graph.values() if kind == k)
                                              for k, name in KIND_NAMES.items()}
                sizes = [self.objects.summary(txn, oid).logical_bytes for oid, kind in graph.items() if kind == COMMIT]
            else:
                sizes = [size for _, size in self._versions_reached(txn, [cid for cid, _ in roots])]
            logical = sum(sizes)
        self.db.release_pages()
        stored_total = sum(counted.stored.values())
        unique, stored_chunks = counted.chunk_raw, counted.stored["chunk"]
        return {
            "refs": refs, "versions": len(sizes), "logical_bytes": logical,
            "unique_chunk_bytes": unique, "stored_bytes": stored_total,
            "stored_chunk_bytes": stored_chunks, "stored_bytes_by_codec": dict(counted.chunk_codec),
            "dedup_ratio": round(logical / unique, 4) if unique else 1.0,
            "compression_ratio": round(unique / stored_chunks, 4) if stored_chunks else 1.0,
            "total_ratio": round(logical / stored_total, 4) if stored_total else 1.0,
            "objects": dict(counted.count), "keyframe_cache_bytes": _keyframe_cache(self.path).size(),
            "damaged_chunks": counted.damaged, "counted": source, **extra,
            **self.disk_usage(),
        }

    def _versions_reached(self, txn, tips: list[bytes]) -> Iterator[tuple[bytes, int]]:
        """(id, logical size) of every commit ``tips`` and their histories hold, each once,
        following the parents the version summaries name (no tree read, but for versions older
        than summaries)."""
        index = self.objects.summaries(txn)
        seen: set[bytes] = set()
        stack = list(tips)
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            found = index.parents_and_size(cid)
            if found is None:
                summary = self.objects.summary(txn, cid)
                found = summary.parents, summary.logical_bytes
            yield cid, found[1]
            stack.extend(found[0])

    def disk_usage(self) -> dict:
        """What the store takes on disk, as ``du`` counts it (allocated blocks): the whole store
        directory, the LMDB file, and the caches (keyframes, remote state) apart."""
        total = cache = 0
        cache_dir = os.path.join(self.path, "cache")
        for root, _, files in os.walk(self.path):
            for name in files:
                try:
                    used = os.lstat(os.path.join(root, name)).st_blocks * 512
                except OSError:
                    continue
                total += used
                if root == cache_dir or root.startswith(cache_dir + os.sep):
                    cache += used
        data = os.lstat(os.path.join(self.path, "data.mdb")).st_blocks * 512
        return {"disk_bytes": total, "disk_store_file_bytes": data, "disk_cache_bytes": cache}

    def verify(self, full: bool = False, progress=None) -> list[dict]:
        """Problems found: every object reachable from a ref present and decodable; with ``full``,
        every stored object decompressed and re-hashed."""
        progress = progress or progress_mod.NULL
        problems: list[dict] = []

        def report(oid: bytes, kind: int, problem: str) -> None:
            problems.append({"id": oid.hex(), "kind": KIND_NAMES.get(kind, "?"), "problem": problem})

        with self.db.read(buffers=True) as txn:
            reachable(self.objects, txn, self._roots(txn, with_notes=True),
                      on_problem=lambda oid, kind, error: report(oid, kind, describe(error)))
            if full:
                from .objects.verify import rehash_all
                known = {p["id"] for p in problems}
                for oid, kind, problem in rehash_all(self.objects, txn, progress):
                    if oid.hex() not in known:
                        report(oid, kind, problem)
        progress.done()
        return problems

    @property
    def gc_grace(self) -> str:
        """How long gc keeps what a ref no longer reaches (store config ``gc.prune``)."""
        return str(self.config().get("gc.prune", DEFAULT_GRACE))

    def set_gc_grace(self, text: str) -> None:
        parse_duration(text)
        value = json.dumps(text).encode()
        self.db.write(lambda txn: txn.put(b"gc.prune", value, db=self.db.dbs["config"]))

    def gc(self, dry_run: bool = False, prune: str | None = None, compact: bool | None = None) -> dict:
        """Delete every object that nothing keeps: not a ref, and no reflog entry younger than
        the grace period (``prune``, default the store's ``gc.prune``, 14 days; ``now`` keeps only
        what refs reach). So a version replaced or deleted stays restorable for that long; the
        writers in progress are kept off by the gc lock.

        Then the data file gives the space back (``Database.compact``): when ``compact`` is True,
        or by default when the sweep freed 64 MiB or a tenth of the file; skipped (and said so)
        while another process has the store open."""
        grace = parse_duration(prune if prune is not None else self.gc_grace)
        since = time.time() - grace

        def sweep(txn, delete: bool) -> dict:
            logged = self.refs.logged_targets(txn, since) if grace > 0 else set()
            roots = self._roots(txn) + [(cid, COMMIT) for cid in logged if self.objects.has(txn, cid)]
            keep = reachable(self.objects, txn, roots)
            # a version's annotations live as long as it does; those of a version gone go too
            orphans = []
            for name, note in self.refs.items(txn, notes.PREFIX):
                if bytes.fromhex(name[len(notes.PREFIX):]) in keep:
                    keep.update(reachable(self.objects, txn, [(note, COMMIT)]))
                else:
                    orphans.append((name, note))
            if delete:
                for name, note in orphans:
                    self.refs.remove_if_equals(txn, name, note, who=default_author(), message="gc: version gone")
            doomed = [(oid, stored_size(payload)) for oid, _, _, payload in self.objects.iter_stored(txn)
                      if oid not in keep]  # listed in full before the first delete
            if delete:
                self.objects.delete_many(txn, [oid for oid, _ in doomed])
            return {"kept_objects": len(keep), "deleted_objects": len(doomed),
                    "deleted_bytes": sum(n for _, n in doomed), "dry_run": not delete,
                    "grace_seconds": grace if math.isfinite(grace) else None}

        if dry_run:
            with self.db.read(buffers=True) as txn:
                return sweep(txn, False)
        with self.collecting_garbage():
            result = self.db.write(lambda txn: sweep(txn, True), buffers=True)
            from .objects.keyframes import prune_cache
            prune_cache(self.objects)  # decoded keyframes of manifests that are gone
            before = self.db.file_size()
            if compact is None:
                compact = result["deleted_bytes"] >= min(64 << 20, before // 10) and result["deleted_objects"] > 0
            result["compacted"] = bool(compact) and self.compact()
            result["compaction_skipped"] = bool(compact) and not result["compacted"]
            result["file_bytes_before"], result["file_bytes_after"] = before, self.db.file_size()
            return result

    def compact(self) -> bool:
        """Give the data file's free pages back to the disk (``Database.compact``); False, changing
        nothing, while another process has the store open. The environment is reopened: ``objects``
        and ``refs`` are made anew here; a handle from ``Database.table`` must be asked for again."""
        if not self.db.compact():
            return False
        self.objects, self.refs = ObjectStore(self.db), RefContainer(self.db)
        return True


def _keyframe_cache(path: str):
    from .objects.keyframecache import KeyframeCache
    return KeyframeCache(path)


def _merge_into(src: str, dst: str, *, clean: bool, skip: str | None = None) -> None:
    """Move the restored entries of ``src`` into ``dst``, one rename each: a file replaces the
    file or link at its path, a directory merges into the directory there. Entries of ``dst`` the
    version lacks stay, unless ``clean`` (``skip`` is never removed: the restore in progress).
    A directory in ``dst`` where the version has a file is replaced only with ``clean``."""
    names = os.listdir(src)
    for name in names:
        source, target = os.path.join(src, name), os.path.join(dst, name)
        source_is_dir = stat.S_ISDIR(os.lstat(source).st_mode)
        try:
            target_mode: int | None = os.lstat(target).st_mode
        except FileNotFoundError:
            target_mode = None
        if target_mode is not None and stat.S_ISDIR(target_mode):
            if source_is_dir:
                _merge_into(source, target, clean=clean)
                continue
            if not clean:
                raise AlreadyExists(f"{target} is a directory, the version has a file there; "
                                  "use --clean to replace it")
            shutil.rmtree(target)
        elif target_mode is not None and source_is_dir:
            os.unlink(target)  # a file or link where the version has a directory
        os.replace(source, target)
    if clean:
        for name in set(os.listdir(dst)) - set(names) - {skip}:
            path = os.path.join(dst, name)
            if stat.S_ISDIR(os.lstat(path).st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
