"""The one sync engine: push, fetch, pull and remote verify over any backend.

Negotiation (``negotiate.py``): a push walks from the new versions down and stops where the
remote's knowledge starts; only the new versions' changed objects are asked about. Order of
writes, on both sides: chunks, then manifests and trees, then commits, then the ref (CAS). Every object received is
decoded and re-hashed before it is kept; nothing corrupt enters the local store.
Fetch, verify --remote and gc --remote walk the remote's graph with ``graph.walk`` over a
``RemoteLoader`` (a level at a time, one round trip per level and batch).

Deltas: a delta chunk is pushed as it is only when the remote holds its bases or gets them in the
same push; otherwise it is re-encoded self-contained, so a push never sends a keyframe the pushed
versions do not name. A fetched delta brings its bases with it (fetched first if not local), so
the local store can always rebuild and verify what it holds on its own.
"""

from __future__ import annotations

import contextlib
import itertools
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Container

from .. import notes
from ..errors import CasregError, Corrupt, NonFastForward, NotFound, RefConflict, RemoteError
from ..objects import codec, delta, graph
from ..objects.encoding import CHUNK, COMMIT, DECODERS, FILE, KIND_NAMES, MANIFEST, MAX_CHUNK, MAX_SIZE, TREE
from ..objects.graph import children
from ..objects.store import decode_checked, stored_value, unpack
from ..refs import check_ref_name
from .base import HAVE_BATCH, Backend, batched
from .negotiate import Negotiation
from .staging import Staged

GET_BATCH = 256
LAND_BATCH = 4096  # fetched manifests a transaction lands (see Backend.batch_objects)
LOAD_BATCH = 4096  # ids a fetch looks up or asks a remote about at once (a level: not all at once)
RELEASE_READS = 64  # values a push reads between unmappings: each fault maps 64 KiB around it


@dataclass
class PushResult:
    ref: str
    old: bytes | None
    new: bytes
    objects_sent: int = 0
    bytes_sent: int = 0
    up_to_date: bool = False

    def to_json(self) -> dict:
        return {"ref": self.ref, "old": self.old.hex() if self.old else None, "new": self.new.hex(),
                "objects_sent": self.objects_sent, "bytes_sent": self.bytes_sent, "up_to_date": self.up_to_date}


@dataclass
class FetchResult:
    refs: dict[str, bytes] = field(default_factory=dict)  # remote name -> commit id
    objects_received: int = 0
    bytes_received: int = 0

    def to_json(self) -> dict:
        return {"refs": {k: v.hex() for k, v in self.refs.items()}, "objects_received": self.objects_received,
                "bytes_received": self.bytes_received}


def tracking_ref(remote: str, name: str) -> str:
    return check_ref_name(f"remotes/{remote}/{name}")


def is_ancestor(repo, ancestor: bytes, descendant: bytes) -> bool:
    """True if ``ancestor`` is ``descendant`` or in its history (both must be local)."""
    with repo.db.read() as txn:
        return graph.is_ancestor(repo.objects, txn, ancestor, descendant)


def verified(oid: bytes, value: bytes, expected_kind: int | None = None, base_of=None, cache=None) -> bytes | memoryview:
    """The original bytes of a received object, after checking kind, size, codec and hash (a
    delta's bases come from ``base_of``, see ``store.decode_checked``). No object is decoded past
    the largest size its kind can have: a small hostile frame cannot claim gigabytes."""
    kind, tag, payload = unpack(value)
    if expected_kind is not None and kind != expected_kind:
        raise Corrupt(f"object {oid.hex()} from the remote is a {KIND_NAMES.get(kind, '?')}, "
                      f"expected a {KIND_NAMES[expected_kind]}; refusing it")
    try:
        return decode_checked(oid, tag, payload, base_of, cache, MAX_SIZE.get(kind, MAX_CHUNK))
    except Corrupt as exc:
        raise Corrupt(f"{exc} (received from the remote); refusing it") from None


# -- push ------------------------------------------------------------------------------------------
def push(repo, backend: Backend, names: list[str], *, force: bool = False, progress=None) -> list[PushResult]:
    """Push ``names``: every fast-forward checked first, then one negotiation and one upload for
    all of them (``negotiate``), then each remote ref moved by compare-and-swap. Reads only the
    pushed names' remote refs: their values are the tips the negotiation starts from as known
    held (a remote holding more of the history is found by ``has_many`` on the walk)."""
    remote_refs = backend.refs(names)
    results, moving = [], []
    for name in names:
        new = repo.resolve(name)
        old = remote_refs.get(name)
        result = PushResult(name, old, new)
        results.append(result)
        if old == new:
            result.up_to_date = True
            continue
        if old is not None and not force and not is_ancestor(repo, old, new):
            raise NonFastForward(f"push of {name} rejected: the remote is at {old.hex()[:12]}, which is not in the "
                                 f"history of {new.hex()[:12]} (non-fast-forward); fetch first or use --force")
        moving.append(result)
    if not moving:
        return results
    with repo.db.read() as txn:
        known = [t for t in set(remote_refs.values()) if repo.objects.has(txn, t)]
    talk = Negotiation(repo, backend, known)
    counts = [talk.missing_for(r.new) for r in moving]
    missing = talk.sending  # in the pushed refs' order: the first count are the first ref's, ...
    # only several refs need a map of which ref brought what (for the bytes each one sent)
    owner = None
    if len(counts) > 1:
        owner = dict(zip(missing, itertools.chain.from_iterable(itertools.repeat(i, n) for i, n in enumerate(counts))))
    whole, as_delta = _delta_forms(repo, talk, missing)
    del talk  # what it knew of the remote (a set as large as the push) is not needed to send
    ids = _write_order(repo, missing, as_delta)
    missing.clear()  # its table (30 MB at 6x10^5 objects) is not needed to send
    sent = _send(repo, backend, ids, whole, progress, owner, len(counts))
    for result, count, nbytes in zip(moving, counts, sent):
        result.objects_sent = count
        result.bytes_sent = nbytes
    for result in moving:
        if not backend.set_ref_if_equals(result.ref, result.old, result.new):
            raise RefConflict(f"push of {result.ref} rejected: the remote ref moved while pushing "
                              f"(someone else pushed); fetch and try again")
    return results


def _delta_forms(repo, talk: Negotiation, missing: dict[bytes, int]) -> tuple[set[bytes], set[bytes]]:
    """(the delta chunks to send self-contained, those to send as deltas): a delta goes as it is
    only when the remote holds its bases or gets them in this push."""
    with repo.db.read() as txn:
        needs = {oid: bases for oid, bases in repo.objects.delta_bases_of(
            txn, (oid for oid, kind in missing.items() if kind == CHUNK)) if bases}
    unknown = sorted({b for bases in needs.values() for b in bases} - talk.on_remote - missing.keys())
    talk._has(unknown)
    whole = {oid for oid, bases in needs.items() if not all(b in talk.on_remote or b in missing for b in bases)}
    return whole, set(needs) - whole


def _write_order(repo, missing: dict[bytes, int], as_delta: set[bytes]) -> list[bytes]:
    """The ids of ``missing`` (id -> kind) in write order: chunks first, deltas after every
    other chunk, then manifests, trees, commits, a tree after the trees it names and a commit
    after its parents (``_children_first``): a remote holding an object must hold all below it,
    and batches are cut anywhere (a cut push rerun trusts what landed). A list of the ids, no
    sort keys (a tuple per object was a tenth of the push)."""
    ids = [oid for oid, kind in missing.items() if kind == CHUNK and oid not in as_delta]
    ids += [oid for oid, kind in missing.items() if kind == CHUNK and oid in as_delta]
    ids += [oid for oid, kind in missing.items() if kind == MANIFEST]
    with repo.db.read() as txn:
        for kind in (TREE, COMMIT):
            ids += _children_first(repo, txn, missing, kind)
    return ids


def _children_first(repo, txn, missing: dict[bytes, int], kind: int) -> list[bytes]:
    """The ids of ``kind`` in ``missing``, each after those of its kind it names that are in
    ``missing`` too (subtrees, parents): a depth-first post-order. The negotiation finds a tree
    before its subtrees and a commit before its parents."""
    out: list[bytes] = []
    done: set[bytes] = set()
    loads = 0
    for root in [oid for oid, k in missing.items() if k == kind]:
        if root in done:
            continue
        done.add(root)
        stack: list[tuple[bytes, list[bytes] | None]] = [(root, None)]
        while stack:
            oid, pending = stack[-1]
            if pending is None:
                loads += 1
                if loads % RELEASE_READS == 0:
                    repo.db.release_pages()
                obj = repo.objects.load(txn, oid, kind)
                pending = [c for c, k in children(kind, obj) if k == kind and missing.get(c) == kind]
                stack[-1] = (oid, pending)
            while pending and pending[-1] in done:
                pending.pop()
            if pending:
                child = pending.pop()
                done.add(child)
                stack.append((child, None))
            else:
                stack.pop()
                out.append(oid)
    repo.db.release_pages()
    return out


def _send(repo, backend: Backend, ids: list[bytes], whole: set[bytes], progress,
          owner: dict[bytes, int] | None, refs: int) -> list[int]:
    """Send objects in ``ids``' order (``_write_order``) in batches of about
    ``backend.batch_bytes`` and at most ``backend.batch_objects``; each batch is one ``put_many``
    (one COS pack, one MySQL transaction, one Redis pipeline), so a base always lands before the
    deltas built on it, even if the push is cut off. The delta chunks in ``whole`` are
    re-encoded self-contained. Returns the bytes sent for each of the ``refs`` pushed refs:
    ``owner`` says which brought an object first (None: one ref brought them all)."""
    from ..progress import NULL, OBJECTS
    progress = progress or NULL
    progress.start("push", len(ids), OBJECTS)
    sent = [0] * refs
    in_flight: Future[None] | None = None  # one batch uploads while the next is read from the store

    def upload(batch, size):
        nonlocal in_flight
        if in_flight is not None:
            in_flight.result()
        if batch:
            in_flight = uploader.submit(backend.put_many, batch)
            # mypy cannot type a lambda whose default binds a value (python/mypy#15459)
            in_flight.add_done_callback(lambda _f, n=len(batch): progress.advance(n))  # type: ignore[misc]

    with ThreadPoolExecutor(1, thread_name_prefix="casreg-upload") as uploader:
        batch, size = [], 0
        ids.reverse()  # taken from the end: the list lets go of each id as it is sent (a backend
        n = 0  # that reloads its index holds copies of the ids: two of each were 48 MB more)
        with repo.db.read() as txn:
            while ids:
                oid, n = ids.pop(), n + 1
                if n % RELEASE_READS == 0:  # each read faults its neighbours in too (see db.release_pages)
                    repo.db.release_pages()
                value = repo.objects.value(txn, oid)
                if value is None:
                    raise NotFound(f"object {oid.hex()} is missing locally; run `casreg verify`")
                if oid in whole:
                    tag, payload = codec.encode(repo.objects.read(txn, oid), None, grouping=True)
                    value = stored_value(CHUNK, tag, payload)
                batch.append((oid, bytes(value)))
                size += len(value)
                sent[0 if owner is None else owner[oid]] += len(value)
                if size >= backend.batch_bytes or len(batch) >= backend.batch_objects:
                    upload(batch, size)
                    repo.db.release_pages()
                    batch, size = [], 0
        upload(batch, size)
        upload([], 0)  # wait for the last one: the ref may move only after every object landed
    progress.done()
    return sent


# -- fetch -----------------------------------------------------------------------------------------
def fetch(repo, remote: str, backend: Backend, names: list[str] | None = None, *, repair: bool = False,
          progress=None) -> FetchResult:
    """Bring the remote's refs (all, or ``names``) and every object they need into the local store,
    under ``remotes/<remote>/<name>``. Held from the first chunk to the ref move against gc (a
    gc in between would sweep chunks no ref reaches yet). With ``repair``, versions already local
    are walked too and whatever they lack is fetched (a store damaged by an older casreg heals)."""
    from ..progress import NULL, OBJECTS
    from ..repo import default_author
    progress = progress or NULL
    remote_refs = backend.refs(names or None)
    if names:
        unknown = [n for n in names if n not in remote_refs]
        if unknown:
            raise NotFound(f"the remote has no ref {unknown[0]}")
        annotations = [notes.notes_ref(remote_refs[n]) for n in names]  # metadata comes along
        if any(a not in remote_refs for a in annotations):
            remote_refs |= backend.refs([a for a in annotations if a not in remote_refs])
        remote_refs = {n: remote_refs[n] for n in [*names, *annotations] if n in remote_refs}
    result = FetchResult(dict(remote_refs))
    with repo.protected_from_gc(), Staged(repo.path) as structured:
        chunks = _discover(repo, backend, remote_refs.values(), structured, repair=repair)
        needed = sorted(chunks)
        del chunks
        lacking: list[bytes] = []
        for part in batched(needed, LOAD_BATCH):  # not an index per chunk of a whole clone
            lacking.extend(part[i] for i in repo.objects.missing(part))
        del needed
        wanted = backend.read_order(lacking)
        del lacking
        progress.start("fetch", len(wanted), OBJECTS)
        for batch in batched(wanted, GET_BATCH):
            items = _received_chunks(repo, backend, batch)
            result.objects_received += len(items)
            result.bytes_received += sum(len(v) for _, v in items)
            repo.db.write(lambda txn, items=items: repo.objects.put_values(txn, items))
            progress.advance(len(batch))
        progress.done()
        del wanted
        named = _named_files(structured, unnamed=repair) if getattr(repo, "deltas", False) else []
        result.objects_received += structured.count
        result.bytes_received += structured.bytes
        # manifests land in batches once every chunk has (they name nothing else): one
        # transaction of them all dirtied most of the store's B-tree; trees and commits, which
        # may name each other, land with the refs in one transaction
        for items in batched(structured.of_kind(MANIFEST), LAND_BATCH):
            repo.db.write(lambda txn, items=items: repo.objects.put_values(txn, items))  # unmaps as it goes
        who = default_author()

        def land(txn):  # write order, as everywhere: trees, then the commits that name them
            trees, commits = structured.of_kind(TREE), structured.of_kind(COMMIT)
            try:
                repo.objects.put_values(txn, itertools.chain(trees, commits))
            finally:  # ended here, not when collected: land is run again after the map grows
                trees.close()
                commits.close()
            for name, target in remote_refs.items():
                tracking = tracking_ref(remote, name)
                current = repo.refs.get(txn, tracking)
                if current != target:
                    repo.refs.set_if_equals(txn, tracking, current, target, who=who, message=f"fetch {remote}")
        repo.db.write(land)
    if named:
        from ..objects import keyframes
        keyframes.adopt(repo.objects, named)
    return result


def _named_files(structured: Staged, *, unnamed: bool = False) -> list[tuple[str, bytes]]:
    """(file name, manifest id) of the fetched manifests that could be keyframes (files of at
    least ``delta.MIN_FILE``, by their trees), named by the fetched trees that hold them
    (byte-aligned keyframes are keyed by file name); with ``unnamed`` (a repair, whose trees
    may be local) also those no fetched tree names, as "" (``keyframes.adopt`` checks sizes)."""
    names: dict[bytes, str] = {}
    small: set[bytes] = set()
    for oid, value in structured.of_kind(TREE):
        for entry in DECODERS[TREE](verified(oid, value, TREE)).entries:
            if entry.kind == FILE and entry.size >= delta.MIN_FILE:
                names.setdefault(entry.id, entry.name)
            elif entry.kind == FILE and unnamed:
                small.add(entry.id)
    return [(names.get(oid, ""), oid) for oid, _ in structured.of_kind(MANIFEST)
            if oid in names or (unnamed and oid not in small)]


def _received_chunks(repo, backend: Backend, ids: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Chunks fetched and verified, with the delta bases they need that the store lacks (those
    listed first: they land before the deltas that name them)."""
    received = dict(backend.get_many(ids))
    received = {**_bases_for(backend, received, repo.objects.missing), **received}
    with repo.db.read() as txn:
        base_of = _base_reader(received, repo.objects.base_reader(txn))
        cache: dict = {}
        for oid, value in received.items():
            verified(oid, value, CHUNK, base_of, cache)
    return list(received.items())


def _bases_for(backend: Backend, received: dict[bytes, bytes], missing=None) -> dict[bytes, bytes]:
    """The delta bases the ``received`` chunks name but do not include, from the remote (only
    those ``missing(ids)`` gives the indexes of, when given)."""
    needed: set[bytes] | list[bytes]  # a set, then sorted
    needed = set()
    for value in received.values():
        _, tag, payload = unpack(value)
        needed.update(codec.base_ids(tag, payload))
    needed = sorted(needed - received.keys())
    if missing is not None:
        needed = [needed[i] for i in missing(needed)]
    return dict(backend.get_many(needed)) if needed else {}


def _base_reader(received: dict[bytes, bytes], fallback=None):
    def base_of(bid: bytes):
        if bid in received:
            _, tag, payload = unpack(received[bid])
            return tag, payload
        if fallback is None:
            raise Corrupt(f"delta base {bid.hex()} is missing")
        return fallback(bid)
    return base_of


def _discover(repo, backend: Backend, tips, structured: Staged, *, repair: bool = False) -> set[bytes]:
    """The chunk ids named by the structured objects the local store lacks; those objects go to
    ``structured`` (fetched and verified, in the order the walk reached them).

    Anything already local is complete (objects are only ever written after their children), so
    the walk stops there, unless ``repair`` asks to walk local objects too. One round trip per
    level of the graph and per GET_BATCH objects; the chunks are fetched afterwards (``fetch``).
    """
    remote = RemoteLoader(backend, keep=structured.add)

    def load_level(level: dict[bytes, int]) -> graph.Loaded:  # never chunks: they are leaves here
        for batch in batched(level.items(), LOAD_BATCH):  # copies of a batch's ids, not of a level's
            ids = [oid for oid, _ in batch]
            missing = {ids[i] for i in repo.objects.missing(ids)}
            if repair:
                with repo.db.read() as txn:
                    yield from graph.local_loader(repo.objects, txn)({o: k for o, k in batch if o not in missing})
            yield from remote({o: k for o, k in batch if o in missing})

    chunks: set[bytes] = set()  # named only: fetch reads what it lacks
    graph.walk(((t, COMMIT) for t in tips), load_level, on_problem=graph.halt, leaves=chunks)
    return chunks


class RemoteLoader:
    """The loader of a remote's graph for ``graph.walk``: a level read in batches (GET_BATCH ids a
    ``get_many``), each object verified (``verified``) before its children are used; a chunk is
    read with the delta bases it names (``_bases_for``, the same round) and leads to them, which
    then need no second read. A read that fails raises, and so do missing bases, unless:

    - ``check_present`` (verify --remote): ``_present`` first; an absent id is ``NotFound``, a
      base that cannot be read leaves its deltas unverifiable (``Corrupt``) and is kept in
      ``base_failures``; with ``read_chunks`` False chunks are only checked for presence;
    - ``only`` (gc's ref log roots, lenient): only those ids are read, one at a time when a batch
      fails, and each failure is yielded as that id's problem.

    ``keep`` is given (id, value) of each structured object read and verified."""

    def __init__(self, backend: Backend, *, check_present: bool = False, read_chunks: bool = True,
                 only: Container[bytes] | None = None, keep: Callable[[bytes, bytes], None] | None = None):
        self.backend = backend
        self.check_present, self.read_chunks, self.only, self.keep = check_present, read_chunks, only, keep
        self.base_failures: list[RemoteError] = []
        self.checked: set[bytes] = set()  # delta bases read and verified with their deltas

    def __call__(self, level: dict[bytes, int]) -> graph.Loaded:
        ids = [oid for oid in level if self.only is None or oid in self.only]
        chunks = all(kind == CHUNK for kind in level.values())
        if chunks:
            ids.sort()
            yield from ((oid, []) for oid in ids if oid in self.checked)
            ids = [oid for oid in ids if oid not in self.checked]
        if self.check_present:  # a batch at a time: not a set of every id present
            kept = []
            for batch in batched(ids, HAVE_BATCH):
                present = _present(self.backend, batch)
                kept += [oid for oid in batch if oid in present]
                yield from ((oid, NotFound(f"the remote lacks object {oid.hex()}")) for oid in batch if oid not in present)
            ids = kept
        if chunks and not self.read_chunks:
            yield from ((oid, []) for oid in ids)
            return
        if chunks:
            ids = self.backend.read_order(ids)  # a batch a range of a pack, not a range a chunk
        for part in batched(ids, GET_BATCH):
            yield from self._chunks(part) if chunks else self._structured(part, level)

    def _read(self, ids: list[bytes]) -> tuple[dict[bytes, bytes], list[tuple[bytes, RemoteError]]]:
        """(id -> value received, (id, why) of those that could not be read: only with ``only``)."""
        try:
            return dict(self.backend.get_many(ids)), []
        except RemoteError:
            if self.only is None:
                raise
        received: dict[bytes, bytes] = {}
        failed = []
        for oid in ids:  # one at a time: keep what is there
            try:
                received.update(self.backend.get_many([oid]))
            except RemoteError as exc:
                failed.append((oid, exc))
        return received, failed

    def _structured(self, ids: list[bytes], level: dict[bytes, int]) -> graph.Loaded:
        received, failed = self._read(ids)
        yield from failed
        for oid, value in received.items():
            kind = level[oid]
            try:
                obj = DECODERS[kind](verified(oid, value, kind))
            except CasregError as exc:
                yield oid, exc
                continue
            if self.keep is not None:
                self.keep(oid, value)
            yield oid, list(children(kind, obj))

    def _chunks(self, ids: list[bytes]) -> graph.Loaded:
        received, failed = self._read(ids)
        yield from failed
        try:
            bases = _bases_for(self.backend, received)
        except RemoteError as exc:
            if self.only is None and not self.check_present:
                raise
            self.base_failures.append(exc)
            bases = {}
        base_of = _base_reader({**bases, **received})
        cache: dict = {}
        sound = set()  # the bases read beside this batch that hash right (a delta uses only part of one)
        for bid, value in bases.items():
            with contextlib.suppress(CasregError):  # the walk reaches it as a chunk and names it
                cache[bid] = verified(bid, value, CHUNK)
                sound.add(bid)
        named: set[bytes] = set()
        for oid, value in received.items():
            try:
                verified(oid, value, CHUNK, base_of, cache)
            except CasregError as exc:
                yield oid, exc
                continue
            sound.add(oid)
            _, tag, payload = unpack(value)
            base_ids = codec.base_ids(tag, payload)
            named.update(base_ids)
            yield oid, [(b, CHUNK) for b in base_ids]
        self.checked.update(named & sound)  # read before the walk asks for the next level


def fast_forward(repo, name: str, target: bytes, *, force: bool = False, message: str = "pull") -> bytes | None:
    """Move local ``name`` to ``target`` if that is a fast-forward (or ``force``); returns the old id."""
    from ..refs import ANY
    from ..repo import default_author
    with repo.db.read() as txn:
        current = repo.refs.get(txn, name)
    if current == target:
        return current
    if current is not None and not force and not is_ancestor(repo, current, target):
        raise NonFastForward(f"{name} has versions the remote lacks (not a fast-forward); use --force to overwrite")
    expected = ANY if force else current
    repo.db.write(lambda txn: repo.refs.set_if_equals(txn, name, expected, target, who=default_author(),
                                                       message=message))
    return current


# -- verify ----------------------------------------------------------------------------------------
def _present(backend: Backend, ids: list[bytes]) -> set[bytes]:
    """Which of ``ids`` (one ``has_many`` batch, at most HAVE_BATCH: the caller batches) the
    remote holds: what ``has_many`` offers, and of the rest those ``get_many`` still returns
    (condemned by a gc after a push relied on them; the next gc absolves them)."""
    present = set(backend.has_many(ids))
    for oid in ids:
        if oid not in present:
            try:
                present.update(o for o, _ in backend.get_many([oid]))
            except RemoteError:
                pass
    return present


def verify_remote(backend: Backend, full: bool = False) -> list[dict]:
    """Every object reachable from the remote's refs present (with ``full``: fetched and re-hashed);
    refs that do not parse (which fetch skips) are problems too."""
    problems: list[dict] = []
    tips = [(t, COMMIT) for t in backend.refs().values()]
    for name, why in backend.bad_refs.items():
        problems.append({"id": "", "kind": "ref", "ref": name, "problem": f"unusable ref: {why}"})

    def report(oid: bytes, kind: int, error: CasregError) -> None:
        problems.append({"id": oid.hex(), "kind": KIND_NAMES[kind], "problem": graph.describe(error)})

    loader = RemoteLoader(backend, check_present=True, read_chunks=full)
    graph.walk(tips, loader, on_problem=report)
    problems += [{"id": "", "kind": "chunk", "problem": f"delta base missing: {exc}"} for exc in loader.base_failures]
    return problems
