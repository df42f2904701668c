"""Streaming ingest: file -> chunks -> BLAKE3 ids -> zstd -> LMDB, on both cores.

With deltas on (the store's codec), a new chunk of a file whose layout has a keyframe is stored
as an XOR delta against the keyframe's aligned bytes when that is smaller (see ``delta``).

The main thread reads the file in large blocks and cuts them (pyfastcdc); a worker pool hashes each
block's chunks, asks the store which ones it lacks and compresses only those (BLAKE3 and zstd
release the GIL); a single-thread executor feeds the whole-file hash in order; a writer thread lands
the new chunks in batched LMDB transactions (LMDB allows one writer; fsync releases the GIL). At
most ``IN_FLIGHT`` blocks are alive at once, so memory does not grow with file size. Chunks land
before anything refers to them (see ``repo.commit``)."""

from __future__ import annotations

import os
import stat
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import blake3

from ..errors import CasregError
from . import codec, delta, keyframes
from .chunker import Chunker
from .encoding import CHUNK, Manifest, object_id
from .grouping import Streaks, chunk_layout, detect_layout
from .keyframecache import KeyframeCache
from .store import ObjectStore, stored_value, unpack
from .tensorheaders import tensor_layout

BLOCK_SIZE = 4 << 20
IN_FLIGHT = 3
FLUSH_BYTES = 8 << 20
WRITES_IN_FLIGHT = 1


def _read_full(f, view: memoryview) -> int:
    """Fill ``view`` from ``f``; fewer bytes only at end of file."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _fingerprint(st: os.stat_result) -> tuple:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _FileCodec:
    """How one file's new chunks are encoded: its tensor layout (element width, data start), its
    delta state, and what its byte planes tend to come to (whole chunks and deltas apart)."""

    def __init__(self):
        self.layout: tuple[int, int] | None = None
        self.dfile: _DeltaFile | None = None
        self.whole_hints = Streaks()
        self.delta_hints = Streaks()
        self.whole_tries = Streaks()  # try 0: the self-contained codecs after a middling delta


class _DeltaFile:
    """One file's delta state: its layout, its keyframe (None: stored whole) and what it stored."""

    def __init__(self, layout: delta.FileLayout, found: tuple[delta.Keyframe, int] | None):
        self.layout = layout
        self.keyframe: delta.Keyframe | None
        self.uses: int
        self.keyframe, self.uses = found if found else (None, 0)
        self.new_chunks = 0
        self.delta_chunks = 0


class Ingester:
    """Stores files as chunks; one instance per commit, used from one thread."""

    def __init__(self, objects: ObjectStore, chunker: Chunker, *, workers: int = 2,
                 progress: Callable[[int], None] | None = None, grouping: bool = False, deltas: bool = False):
        self.objects = objects
        self.chunker = chunker
        self.grouping = grouping or deltas  # byte-grouped codec for numeric data (the store's codec)
        self.cache: KeyframeCache | None = None
        self.keyframes: keyframes.KeyframeIndex | None = None
        if deltas:
            self.cache = KeyframeCache(objects.db.path)
            self.keyframes = keyframes.KeyframeIndex(objects, self.cache)
        self.keyframe_updates: dict[bytes, bytes] = {}  # to land with the commit (see keyframes.py)
        self.progress = progress or (lambda n: None)
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="casreg-chunk")
        self.hash_pool = ThreadPoolExecutor(1, thread_name_prefix="casreg-filehash")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="casreg-write")
        self._writes: deque = deque()
        self.buffer_size = max(BLOCK_SIZE, 4 * chunker.max_size)
        self._free: list[bytearray] = []
        self._seen: set[bytes] = set()
        self._seen_lock = threading.Lock()
        self._unwritten: list[tuple[bytes, bytes]] = []
        self._unwritten_bytes = 0
        self.new_chunks = 0
        self.new_bytes = 0

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.hash_pool.shutdown(wait=True)
        self.writer.shutdown(wait=True)
        if self.keyframes is not None:
            self.keyframes.close()
        if self.cache is not None:  # set with self.keyframes
            self.cache.close()

    def __enter__(self) -> Ingester:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- workers ---------------------------------------------------------------------------------
    def _process(self, view: memoryview, cuts: list[tuple[int, int]], base: int, fc: _FileCodec):
        """Hash every chunk of one block; compress and pack the ones the store lacks.
        ``base`` is the block's offset in the file."""
        ids = [blake3.blake3(view[o:o + n]).digest() for o, n in cuts]
        missing = self.objects.missing(ids)
        fresh = []
        with self._seen_lock:  # each new chunk is compressed once, however often it repeats
            for i in missing:
                if ids[i] not in self._seen:
                    self._seen.add(ids[i])
                    fresh.append(i)
        values = []
        decoded: dict[int, bytes | None] = {}  # keyframe chunk index -> bytes (None: unusable)
        for i in fresh:
            o, n = cuts[i]
            tag, payload = self._encode(view[o:o + n], base + o, fc, decoded)
            values.append((ids[i], stored_value(CHUNK, tag, payload)))
        return [(cid, n) for cid, (_, n) in zip(ids, cuts)], values

    def _encode(self, data, start: int, fc: _FileCodec, decoded: dict):
        """(codec, payload) of a new chunk: a delta against the keyframe when that is clearly
        smallest (< ``delta.ACCEPT`` of the bytes), else the smaller of delta and self-contained;
        once the self-contained form has lost to this file's middling deltas (< ``delta.MIDDLING``)
        ``Streaks.STREAK`` times in a row, it is only tried every ``Streaks.PROBE``-th time
        for them (a delta that barely shrinks the chunk is always compared)."""
        layout = chunk_layout(fc.layout, start)
        dfile = fc.dfile
        if dfile is None or dfile.keyframe is None:
            return codec.encode(data, layout, grouping=self.grouping, hints=fc.whole_hints)
        layout = layout or detect_layout(data)
        payload = self._delta(data, layout, start, fc, decoded) if layout else None
        if payload is not None and len(payload) < delta.ACCEPT * len(data):
            return codec.DELTA, payload
        if payload is not None and len(payload) < delta.MIDDLING * len(data):
            fc.whole_tries.next_chunk()
            if fc.whole_tries.skip(0):  # this file's middling deltas keep winning anyway
                return codec.DELTA, payload
        tag, whole = codec.encode(data, layout, grouping=True, hints=fc.whole_hints)
        if payload is not None:
            fc.whole_tries.note(0, failed=len(whole) >= len(payload))
            if len(payload) < len(whole):
                return codec.DELTA, payload
        return tag, whole

    @staticmethod
    def _delta(data, layout, start: int, fc: _FileCodec, decoded: dict) -> bytes | None:
        dfile = fc.dfile
        assert dfile is not None and dfile.keyframe is not None  # _encode deltas only against one
        keyframe = dfile.keyframe
        plan = keyframe.plan(dfile.layout, start, len(data))
        if plan is None:
            return None
        indexes, segments = plan
        bases = []
        for i in indexes:
            if i not in decoded:
                decoded[i] = keyframe.read_base(i)
            if decoded[i] is None:
                return None  # deltas are one deep: never against a delta
            bases.append(decoded[i])
        return codec.encode_delta(data, keyframe.manifest_id, [keyframe.chunks[i][0] for i in indexes],
                                  bases, segments, layout, fc.delta_hints)

    # -- main thread -----------------------------------------------------------------------------
    def _buffer(self) -> bytearray:
        return self._free.pop() if self._free else bytearray(self.buffer_size)

    def _write_async(self) -> None:
        """Hand the chunks waiting in memory to the writer thread (one transaction)."""
        if self._unwritten:
            items = self._unwritten
            self._writes.append(self.writer.submit(
                self.objects.db.write, lambda txn: self.objects.put_values(txn, items)))
            self._unwritten, self._unwritten_bytes = [], 0
        while len(self._writes) > WRITES_IN_FLIGHT:
            self._writes.popleft().result()

    def flush(self) -> None:
        """Write every chunk seen so far and wait until it has landed."""
        self._write_async()
        while self._writes:
            self._writes.popleft().result()

    def _finish_block(self, pending: deque, chunks: list, dfile: _DeltaFile | None) -> None:
        batch, hashed, buf, nbytes = pending.popleft()
        ids, values = batch.result()
        hashed.result()
        chunks.extend(ids)
        self._unwritten.extend(values)
        for _, value in values:
            self._unwritten_bytes += len(value)
            self.new_bytes += len(value)
            if dfile is not None:
                dfile.new_chunks += 1
                dfile.delta_chunks += not codec.of(unpack(value)[1]).self_contained
        self.new_chunks += len(values)
        if self._unwritten_bytes >= FLUSH_BYTES:
            self._write_async()
        self._free.append(buf)
        self.progress(nbytes)

    def add_file(self, path: str) -> Manifest:
        """Store one regular file's chunks; its manifest is returned, not written."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise CasregError(f"cannot read {path}: {exc.strerror}") from None
        with open(fd, "rb", buffering=0, closefd=True) as f:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise CasregError(f"not a regular file: {path}")
            manifest = self._stream(f, path, before.st_size)
            after = os.fstat(fd)
        if _fingerprint(before) != _fingerprint(after) or manifest.size != before.st_size:
            raise CasregError(f"file changed while it was being read, refusing to store it: {path}")
        return manifest

    def _note_keyframe(self, dfile: _DeltaFile | None, manifest: Manifest) -> None:
        """After a file that stored new chunks: count a use of its keyframe (so that a keyframe
        which no longer helps still expires), or make the file the keyframe of its layout, if
        none of its chunks is a delta (a keyframe must be a base for every byte)."""
        if dfile is None or not dfile.new_chunks:
            pass
        elif dfile.keyframe is not None:
            self.keyframe_updates[dfile.layout.key] = keyframes.index_entry(dfile.keyframe.manifest_id, dfile.uses + 1)
        elif not self._has_delta(manifest):
            manifest_id = object_id(manifest.encode())
            self.keyframe_updates[dfile.layout.key] = keyframes.index_entry(manifest_id, 0)

    def _has_delta(self, manifest: Manifest) -> bool:
        with self.objects.db.read(buffers=True) as txn:
            try:
                return self.objects.holds_delta(txn, manifest)
            finally:
                self.objects.db.release_pages()

    def _stream(self, f, path: str, size: int) -> Manifest:
        file_hash = blake3.blake3()
        chunks: list[tuple[bytes, int]] = []
        pending: deque = deque()
        total = 0
        carry = 0
        fc = _FileCodec()
        dfile = None
        buf = self._buffer()
        try:
            while True:
                try:
                    n = carry + _read_full(f, memoryview(buf)[carry:])
                except OSError as exc:
                    raise CasregError(f"cannot read {path}: {exc.strerror}") from None
                eof = n < len(buf)
                view = memoryview(buf)[:n]
                cuts = self.chunker.cut(view) if n else []
                end = n
                if not eof:  # the last chunk may grow with the next block: cut it again there
                    end = cuts[-1][0]
                    cuts = cuts[:-1]
                if total == 0 and self.grouping:
                    fc.layout = tensor_layout(view[:n])  # width of the tensors, if the file says
                if total == 0 and self.keyframes is not None:
                    file_layout = delta.file_layout(os.path.basename(path), size, view[:n])
                    if file_layout is not None:
                        found = self.keyframes.find(file_layout)
                        fc.dfile = _DeltaFile(file_layout, found)
                dfile = fc.dfile
                base = total  # the file offset of this buffer's first byte
                total += end
                hashed = self.hash_pool.submit(file_hash.update, view[:end])
                pending.append((self.pool.submit(self._process, view, cuts, base, fc), hashed, buf, end))
                if eof:
                    break
                while len(pending) >= IN_FLIGHT:
                    self._finish_block(pending, chunks, dfile)
                carry = n - end
                nxt = self._buffer()
                nxt[:carry] = view[end:n]
                buf = nxt
            while pending:
                self._finish_block(pending, chunks, dfile)
        finally:
            for batch, hashed, _, _ in pending:  # on error: let workers finish with the buffers
                batch.exception()
                hashed.exception()
        manifest = Manifest(total, file_hash.digest(), chunks)
        self._note_keyframe(dfile, manifest)
        return manifest
