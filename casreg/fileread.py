"""One file of a version read by byte range, a few chunks at a time (what an HTTP download with
``Range`` needs): only the chunks the range overlaps are looked up, decoded and re-hashed.

``file_info`` finds the file (size, mode, content id: its manifest's id, which names its bytes);
``read_range`` yields ``[start, stop)`` of it in pieces of about ``PIECE`` bytes. Each piece is
read in a read transaction of its own, inside ``guard()`` (a server's lock), and the transaction
is closed before the piece is handed on: a slow reader holds no LMDB snapshot and no lock while
the bytes travel. A file's chunks never change (they are named by their hash); only a ``gc`` that
removes the last name of the version meanwhile can cut a read short (NotFound mid-way).
"""

from __future__ import annotations

import bisect
import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator

from .errors import Corrupt, InvalidInput
from .objects.encoding import COMMIT, FILE, MANIFEST, Manifest

PIECE = 4 << 20


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    mode: int
    content_id: bytes  # the manifest's id: equal ids, equal bytes
    file_hash: bytes   # BLAKE3 of the whole file

    def to_json(self) -> dict:
        return {"path": self.path, "size": self.size, "mode": self.mode, "content_id": self.content_id.hex(),
                "blake3": self.file_hash.hex()}


def file_info(repo, spec: str, path: str) -> FileInfo:
    """The file ``path`` of version ``spec`` (NotFound if it has none; InvalidInput for a
    directory or a link)."""
    version = repo.resolve(spec)
    with repo.db.read() as txn:
        entry = repo._entry_at(txn, repo.objects.load(txn, version, COMMIT).tree, path.strip("/"))
        if entry.kind != FILE or not path.strip("/"):
            raise InvalidInput(f"not a file: {path}")
        manifest = repo.objects.load(txn, entry.id, MANIFEST)
    if manifest.size != entry.size:
        raise Corrupt(f"manifest {entry.id.hex()} does not match its tree entry")
    return FileInfo(path.strip("/"), entry.size, entry.mode, entry.id, manifest.file_hash)


def read_range(repo, content_id: bytes, start: int = 0, stop: int | None = None, *,
               guard: Callable[[], ContextManager] = contextlib.nullcontext, piece: int = PIECE) -> Iterator[bytes]:
    """Bytes ``[start, stop)`` of the file whose manifest is ``content_id``, in pieces."""
    with guard(), repo.db.read() as txn:
        manifest = repo.objects.load(txn, content_id, MANIFEST)
    stop = manifest.size if stop is None else min(stop, manifest.size)
    if not 0 <= start <= stop:
        raise InvalidInput(f"invalid byte range {start}-{stop} of a {manifest.size}-byte file")
    ends, pos = [], 0
    for _, length in manifest.chunks:
        pos += length
        ends.append(pos)
    first = bisect.bisect_right(ends, start)  # the chunk holding byte ``start``
    restorer = repo.restorer()
    try:
        index, offset = first, start
        while offset < stop:
            last = index
            while last < len(ends) and ends[last] - offset < piece and ends[last] < stop:
                last += 1
            last = min(last, len(ends) - 1)
            part = Manifest(0, b"", manifest.chunks[index:last + 1])
            chunk_start = ends[index - 1] if index else 0
            out = bytearray()
            with guard(), repo.db.read(buffers=True) as txn:
                for length, data in restorer.iter_chunks(txn, part):
                    out += data if data is not None else bytes(length)
            lo, hi = offset - chunk_start, min(stop, ends[last]) - chunk_start
            yield bytes(out[lo:hi])
            offset, index = chunk_start + hi, last + 1
    finally:
        restorer.close()
