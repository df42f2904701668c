"""Which stored file a new version of a file is delta-encoded against: its layout's keyframe.

The LMDB ``keyframes`` database maps a layout key (``delta.FileLayout.key``) to ``32-byte manifest
id, u32 uses``: the last file of that layout stored whole, and how many versions have been stored
as deltas against it since. After ``delta.KEYFRAME_EVERY - 1`` uses the next version is stored
whole and becomes the keyframe, so drift from an old keyframe never grows without bound.

The index is a hint, not a root: ``gc`` may delete a keyframe no version needs any more; the next
version of that layout then finds no manifest and becomes the keyframe itself.
"""

from __future__ import annotations

import struct
import threading

from ..errors import CasregError
from . import codec, delta
from .basecache import KeyframeCache
from .delta import KEYFRAME_EVERY, FileLayout, Keyframe
from .encoding import MANIFEST, object_id
from .store import ObjectStore, decode_checked

_VALUE = struct.Struct("<32sI")


class KeyframeIndex:
    """Keyframe lookups for one commit; close() when done (it holds a read transaction)."""

    def __init__(self, objects: ObjectStore, cache: KeyframeCache):
        self.objects = objects
        self.cache = cache
        self.table = objects.db.dbs.get("keyframes")
        self._txn = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None

    def _read_stored(self, oid: bytes) -> tuple[int, bytes]:
        with self._lock:  # workers share one read transaction, one at a time
            _, tag, payload = self.objects.stored(self._txn, oid)
            return tag, bytes(payload)

    def _reader(self, manifest_id: bytes, chunks: list[tuple[bytes, int]]):
        """``read_base`` for a keyframe: a chunk's bytes from the cache when they hash right,
        else decoded from the store; None for a chunk stored as a delta (never a base)."""
        starts, pos = [], 0
        for _, n in chunks:
            starts.append(pos)
            pos += n

        def read_base(i: int) -> bytes | None:
            cid, n = chunks[i]
            data = self.cache.read(manifest_id, starts[i], n)
            if data is not None and object_id(data) == cid:
                return data
            tag, payload = self._read_stored(cid)
            return None if tag == codec.DELTA else decode_checked(cid, tag, payload)
        return read_base

    def find(self, layout: FileLayout) -> tuple[Keyframe, int] | None:
        """(keyframe, uses so far) for a new version of ``layout``, or None: store it whole."""
        if self.table is None:
            return None
        with self._lock:
            if self._txn is None:
                self._txn = self.objects.db.read()
            value = self._txn.get(layout.key, db=self.table)
            if value is None:
                return None
            manifest_id, uses = _VALUE.unpack(value)
            if uses >= KEYFRAME_EVERY - 1:
                return None
            try:
                manifest = self.objects.load(self._txn, manifest_id, MANIFEST)
            except CasregError:  # collected by gc, or damaged: start a new keyframe
                return None
            base_layout = layout if layout.tensors is None else self._layout_of(manifest)
            self.objects.db.release_pages()
        if base_layout is None or base_layout.key != layout.key or (
                layout.tensors is None and manifest.size != layout.size):
            return None
        return Keyframe(manifest_id, base_layout, manifest.chunks, self._reader(manifest_id, manifest.chunks)), uses

    def _layout_of(self, manifest) -> FileLayout | None:
        """A safetensors keyframe's own layout (its tensors may sit elsewhere: a longer header),
        from its header bytes, decoded from its first chunks."""
        head, need = bytearray(), 8
        for cid, _ in manifest.chunks:
            if len(head) >= need:
                break
            head += self.objects.read(self._txn, cid)
            if len(head) >= 8:
                need = 8 + int.from_bytes(head[:8], "little")
            if need > delta.MAX_HEADER:
                return None
        return delta.file_layout("", manifest.size, bytes(head))


def pack(manifest_id: bytes, uses: int) -> bytes:
    return _VALUE.pack(manifest_id, uses)
