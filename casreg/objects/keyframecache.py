"""Keyframes kept decoded on disk: ``<store>/cache/keyframes/<manifest id>``, the file's raw bytes.

Without it, every commit and restore of a version stored as deltas decodes the keyframe's chunks
from the store first, about half of the work. A file that becomes a keyframe is copied here as it
is committed (from the bytes being read: no decoding; tensor files only), so later versions read their bases
with one ``pread``. The cache only saves time: every range taken from it is checked against the chunk
id it stands for (BLAKE3) before use, and a miss or a mismatch falls back to the store. Deleting
the directory is always safe; ``gc`` drops the files of keyframes it deletes; the total is kept
under ``CASREG_KEYFRAME_CACHE`` bytes (default 4 GiB, 0 turns the cache off), oldest first.
"""

from __future__ import annotations

import os
import tempfile
import threading

DEFAULT_LIMIT = 4 << 30
ENV_LIMIT = "CASREG_KEYFRAME_CACHE"


def _limit() -> int:
    try:
        return int(os.environ.get(ENV_LIMIT, DEFAULT_LIMIT))
    except ValueError:
        return DEFAULT_LIMIT


class KeyframeCache:
    def __init__(self, store_path: str):
        self.dir = os.path.join(store_path, "cache", "keyframes")
        self.limit = _limit()
        self._fds: dict[bytes, int | None] = {}
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------
    def writer(self, size: int) -> CacheWriter | None:
        """A writer for the raw bytes of a file that may become a keyframe, or None (too big,
        cache off, or not writable)."""
        if not 0 < size <= self.limit:
            return None
        try:
            os.makedirs(self.dir, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        except OSError:
            return None
        return CacheWriter(self, fd, path)

    def _install(self, path: str, manifest_id: bytes) -> None:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(path, 0o644 & ~mask)  # readable like the store's data file (mkstemp made it 0600)
        os.replace(path, os.path.join(self.dir, manifest_id.hex()))
        self._evict()

    def _evict(self) -> None:
        try:
            entries = [e for e in os.scandir(self.dir) if not e.name.startswith(".")]
            newest_first = sorted(((e.stat().st_mtime, e.stat().st_size, e.path) for e in entries), reverse=True)
        except OSError:
            return
        total = 0
        for _, size, path in newest_first:
            total += size
            if total > self.limit:
                _unlink(path)

    def prune(self, alive) -> int:
        """Delete the cached keyframes whose manifest id ``alive(id)`` denies (and stale temp
        files); returns how many files went."""
        gone = 0
        try:
            names = os.listdir(self.dir)
        except OSError:
            return 0
        for name in names:
            try:
                oid = bytes.fromhex(name)
            except ValueError:
                oid = None
            if oid is None or not alive(oid):
                gone += _unlink(os.path.join(self.dir, name))
        return gone

    def size(self) -> int:
        """Bytes the cache takes on disk."""
        try:
            return sum(e.stat().st_size for e in os.scandir(self.dir))
        except OSError:
            return 0

    # -- reading ---------------------------------------------------------------------------------
    def read(self, manifest_id: bytes, offset: int, length: int) -> bytes | None:
        """``length`` bytes at ``offset`` of a cached keyframe, or None. Unchecked: the caller
        compares them with the chunk id they stand for. Thread-safe."""
        fd = self._fd(manifest_id)
        if fd is None:
            return None
        try:
            data = os.pread(fd, length, offset)
        except OSError:
            return None
        return data if len(data) == length else None

    def has(self, manifest_id: bytes) -> bool:
        return self._fd(manifest_id) is not None

    def _fd(self, manifest_id: bytes) -> int | None:
        with self._lock:
            if manifest_id not in self._fds:
                path = os.path.join(self.dir, manifest_id.hex())
                try:
                    self._fds[manifest_id] = os.open(path, os.O_RDONLY)
                except OSError:
                    self._fds[manifest_id] = None
                else:
                    try:
                        os.utime(path)  # recently used: evicted last
                    except OSError:  # a read-only store: still readable
                        pass
            return self._fds[manifest_id]

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                if fd is not None:
                    os.close(fd)
            self._fds.clear()


class CacheWriter:
    """Appends a file's bytes in order; ``install`` names the result, ``discard`` drops it."""

    def __init__(self, cache: KeyframeCache, fd: int, path: str):
        self.cache, self.path = cache, path
        self.fd: int | None = fd  # None once installed or discarded

    def write(self, data) -> None:
        if self.fd is None:
            return
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:  # a full disk costs the cache, never the commit
            self.discard()

    def install(self, manifest_id: bytes) -> None:
        if self.fd is None:
            return
        os.close(self.fd)
        self.fd = None
        try:
            self.cache._install(self.path, manifest_id)
        except OSError:
            _unlink(self.path)

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            _unlink(self.path)


def _unlink(path: str) -> int:
    try:
        os.unlink(path)
        return 1
    except OSError:
        return 0
