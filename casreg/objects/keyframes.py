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

import lmdb

from ..errors import CasregError
from . import codec, delta
from .delta import KEYFRAME_EVERY, FileLayout, Keyframe
from .encoding import MANIFEST, object_id
from .keyframecache import FILL_AFTER, KeyframeCache
from .store import ObjectStore, decode_checked

_VALUE = struct.Struct("<32sI")
HEAD_BYTES = 64 << 10


class KeyframeIndex:
    """Keyframe lookups for one commit; close() when done (it holds a read transaction)."""

    def __init__(self, objects: ObjectStore, cache: KeyframeCache):
        self.objects = objects
        self.cache = cache
        self._txn: lmdb.Transaction | None = None  # opened by the first find()
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None

    def _read_stored(self, oid: bytes) -> tuple[int, bytes]:
        with self._lock:  # workers share one read transaction, one at a time
            assert self._txn is not None  # only a keyframe that find() gave reads
            _, tag, payload = self.objects.stored(self._txn, oid)
            return tag, bytes(payload)

    def _fetcher(self, manifest_id: bytes, size: int, fill: bool):
        """``Keyframe.fetch``: a chunk's bytes from the cache when they hash right, else decoded
        from the store (and, with ``fill``, written into the cache); None for a chunk stored as
        a delta (never a base)."""
        def fetch(cid: bytes, offset: int, length: int) -> bytes | memoryview | None:
            data = self.cache.read(manifest_id, offset, length)
            if data is not None and object_id(data) == cid:
                return data
            tag, payload = self._read_stored(cid)
            if not codec.of(tag).self_contained:
                return None
            decoded = decode_checked(cid, tag, payload)
            if fill:
                self.cache.fill(manifest_id, size, offset, decoded)
            return decoded
        return fetch

    def find(self, layout: FileLayout) -> tuple[Keyframe, int] | None:
        """(keyframe, uses so far) for a new version of ``layout``, or None: store it whole."""
        if not self.objects.keeps_keyframes:
            return None
        with self._lock:
            if self._txn is None:
                self._txn = self.objects.db.read()
            value = self.objects.keyframe_entry(self._txn, layout.key)
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
        fetch = self._fetcher(manifest_id, manifest.size, fill=uses >= FILL_AFTER)
        return Keyframe(manifest_id, base_layout, manifest.chunks, fetch), uses

    def _layout_of(self, manifest) -> FileLayout | None:
        """A stored safetensors file's layout (its tensors may sit elsewhere than in a newer
        version: a longer header)."""
        head = stored_head(self.objects, self._txn, manifest)
        return None if head is None else delta.file_layout("", manifest.size, head)


def stored_head(objects: ObjectStore, txn, manifest) -> bytes | None:
    """A stored file's first bytes: its whole safetensors header, else its first 64 KiB (enough
    for a torch.save zip head or an .npy header); None if a safetensors header is too long."""
    head, need = bytearray(), min(manifest.size, HEAD_BYTES)
    for cid, _ in manifest.chunks:
        if len(head) >= need:
            break
        head += objects.read(txn, cid)
        if len(head) >= 9 and head[8:9] == b"{":  # a safetensors header: read all of it
            need = max(need, min(manifest.size, 8 + int.from_bytes(head[:8], "little")))
            if need > delta.MAX_HEADER:
                return None
    return bytes(head)


def adopt(objects: ObjectStore, files: list[tuple[str, bytes]]) -> int:
    """Make fetched files (name, manifest id) the keyframes of their layouts where a layout has
    none (or lost it to gc), so that the next local version is stored, and pushed, as deltas
    against what was fetched. Files holding delta chunks are skipped (a keyframe must be a base
    for every byte). Returns how many were adopted. (Their cache copies come as any keyframe's:
    once deltas against them have paid for them, see ``keyframecache``.)"""
    if not objects.keeps_keyframes:
        return 0
    updates: dict[bytes, bytes] = {}
    with objects.db.read(buffers=True) as txn:
        for name, manifest_id in objects.db.releasing(files):  # a clone of 3x10^5 files mapped 600 MB here
            manifest = objects.load(txn, manifest_id, MANIFEST)
            if manifest.size < delta.MIN_FILE or objects.holds_delta(txn, manifest):
                continue
            head = stored_head(objects, txn, manifest)
            layout = None if head is None else delta.file_layout(name, manifest.size, head)
            if layout is None or layout.key in updates:
                continue
            current = objects.keyframe_entry(txn, layout.key)
            if current is not None and objects.has(txn, _VALUE.unpack(current)[0]):
                continue
            updates[layout.key] = index_entry(manifest_id, 0)
    if updates:
        objects.db.write(lambda txn: objects.put_keyframe_entries(txn, updates))
        prune_cache(objects)
    return len(updates)


def prune_cache(objects: ObjectStore) -> int:
    """Drop the cache copies of files that are no longer the keyframe of a layout (replaced by a
    newer one, or their manifest deleted by gc); returns how many went."""
    with objects.db.read() as txn:
        current = {_VALUE.unpack(entry)[0] for entry in objects.keyframe_entries(txn)}
        return KeyframeCache(objects.db.path).prune(lambda oid: oid in current and objects.has(txn, oid))


def index_entry(manifest_id: bytes, uses: int) -> bytes:
    return _VALUE.pack(manifest_id, uses)
