"""Streaming restore: manifest -> chunks decoded and re-hashed on both cores, in file order.

A delta chunk is rebuilt from its bases: read from the decoded keyframe cache when it has them
(and they hash right), else looked up with the batch and decoded once per batch.

The main thread looks the stored chunks up (zero-copy, inside one read transaction); a worker pool
decompresses and checks each against its id; results come back in order with at most
``IN_FLIGHT`` batches alive. All-zero chunks are recognised by id and become holes in the output.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Iterator

import blake3
import lmdb

from ..errors import CasregError, Corrupt
from . import codec, delta, deltaformat
from .encoding import MANIFEST, Manifest
from .keyframecache import KeyframeCache
from .store import ObjectStore, decode_checked

BATCH_BYTES = 4 << 20
IN_FLIGHT = 3
RELEASE_BATCHES = 2  # unmapping costs ~1 ms: once per 8 MiB restored, not per batch


@lru_cache(maxsize=64)
def zero_chunk_id(length: int) -> bytes:
    return blake3.blake3(bytes(length)).digest()


def _decode_batch(batch, bases: dict, cached: dict, keyframes: KeyframeCache) -> list:
    """Original bytes of each (id, length, codec, payload), None for an all-zero chunk; ``bases``
    holds the stored form of every delta base the batch needs, ``cached`` where the keyframe
    cache has some of them (id -> keyframe manifest id, offset, length).

    Cached bases are used unchecked: a delta built on wrong base bytes fails its own hash check,
    and is then rebuilt from the stored bases."""
    out: list[bytes | memoryview | None] = []
    from_cache: dict = {}
    for base_id, (keyframe, offset, length) in cached.items():
        base = keyframes.read(keyframe, offset, length)
        if base is not None:
            from_cache[base_id] = base
    memo = dict(from_cache)
    for cid, length, tag, payload in batch:
        if tag == codec.ZSTD and len(payload) <= 64 + length // 1024 and cid == zero_chunk_id(length):
            out.append(None)  # only a near-empty frame can be all zeros: hash zeros just for those
            continue
        try:
            data = decode_checked(cid, tag, payload, bases.__getitem__, memo)
        except Corrupt:
            suspects = [b for b in codec.base_ids(tag, payload) if b in from_cache]
            if not suspects:
                raise
            for b in suspects:  # distrust the cache for these bases from now on
                del from_cache[b]
                memo.pop(b, None)
            data = decode_checked(cid, tag, payload, bases.__getitem__, memo)
        if len(data) != length:
            raise Corrupt(f"chunk {cid.hex()} does not match its manifest's length")
        out.append(data)
    return out


class Restorer:
    def __init__(self, objects: ObjectStore, *, workers: int = 2):
        self.objects = objects
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="casreg-restore")
        self.keyframes = KeyframeCache(objects.db.path)
        # keyframe manifest id -> chunk id -> (offset, length)
        self._offsets: dict[bytes, dict[bytes, tuple[int, int]] | None] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.keyframes.close()

    def _cached(self, txn: lmdb.Transaction, payload, ids: list[bytes], into: dict) -> None:
        """Where the keyframe cache holds the bases (``ids``) of a delta chunk, into ``into``."""
        keyframe = deltaformat.keyframe_of(payload)
        if keyframe not in self._offsets:
            offsets: dict[bytes, tuple[int, int]] | None = None
            if self.keyframes.has(keyframe):
                try:
                    chunks = self.objects.load(txn, keyframe, MANIFEST).chunks
                    offsets = {}
                    for (cid, n), pos in zip(chunks, delta.starts(n for _, n in chunks)):
                        offsets.setdefault(cid, (pos, n))
                except CasregError:  # the keyframe's manifest is gone (gc): its chunks live on
                    offsets = None
            self._offsets[keyframe] = offsets
        offsets = self._offsets[keyframe]
        if offsets:
            for bid in ids:
                if bid in offsets and bid not in into:
                    into[bid] = (keyframe, *offsets[bid])

    def __enter__(self) -> Restorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _batches(self, txn: lmdb.Transaction, manifest: Manifest):
        batch: list[tuple[bytes, int, int, memoryview]] = []
        bases: dict[bytes, tuple[int, memoryview]] = {}  # delta base id -> stored (codec, payload)
        cached: dict[bytes, tuple[bytes, int, int]] = {}  # delta base id -> keyframe id, offset, length
        size = 0
        for cid, length in manifest.chunks:
            kind, tag, payload = self.objects.stored(txn, cid)
            batch.append((cid, length, tag, payload))
            ids = self.objects.add_bases(txn, tag, payload, bases)
            if ids:
                self._cached(txn, payload, ids, cached)
            size += length
            if size >= BATCH_BYTES:
                yield batch, bases, cached
                batch, bases, cached, size = [], {}, {}, 0
        if batch:
            yield batch, bases, cached

    def iter_chunks(self, txn: lmdb.Transaction, manifest: Manifest
                    ) -> Iterator[tuple[int, bytes | memoryview | None]]:
        """(length, bytes or None for zeros) of each chunk in order, verified. ``txn`` must be open
        with ``buffers=True`` or not; it must stay open while this iterates."""
        pending: deque = deque()
        try:
            for count, (batch, bases, cached) in enumerate(self._batches(txn, manifest), 1):
                pending.append((self.pool.submit(_decode_batch, batch, bases, cached, self.keyframes),
                                [n for _, n, _, _ in batch]))
                while len(pending) >= IN_FLIGHT:
                    fut, lengths = pending.popleft()
                    yield from zip(lengths, fut.result())
                if count % RELEASE_BATCHES == 0:
                    self.objects.db.release_pages()  # keep RSS flat however large the file
            while pending:
                fut, lengths = pending.popleft()
                yield from zip(lengths, fut.result())
        finally:
            for fut, _ in pending:
                fut.cancel()
                if not fut.cancelled():
                    fut.exception()

    def write_file(self, txn: lmdb.Transaction, manifest: Manifest, fd: int) -> None:
        """Write a file's bytes to ``fd`` (a new, empty regular file), holes for zero chunks."""
        offset = 0
        for length, data in self.iter_chunks(txn, manifest):
            if data is not None:
                view = memoryview(data)
                while view:
                    written = os.pwrite(fd, view, offset)
                    view = view[written:]
                    offset += written
            else:
                offset += length
        os.ftruncate(fd, manifest.size)

    def write_stream(self, txn: lmdb.Transaction, manifest: Manifest, out) -> None:
        for length, data in self.iter_chunks(txn, manifest):
            out.write(data if data is not None else bytes(length))
