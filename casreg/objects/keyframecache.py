"""Keyframes kept decoded on disk: ``<store>/cache/keyframes/<manifest id>``, the file's raw bytes.

Without it, every commit and restore of a version stored as deltas decodes the keyframe's chunks
from the store first (about 0.1 s of CPU per 90 MB file here, 15-20% of such a commit or checkout).
The copy is not free: it takes as much disk as the raw file, and a user sees the whole store
directory. So a keyframe earns its copy only once deltas against it have saved more than the copy
costs: a commit that makes the ``FILL_AFTER``-th or a later version of a layout against its
keyframe writes each base range it decodes into the cache file, at its offset (a sparse file
that fills as it is used). Only the current keyframe of each layout is kept: when a layout gets a
new keyframe, or gc deletes one, its copy goes (``keyframes.prune_cache``); older versions then
restore from the store.

The cache only saves time: every range taken from it is checked against the chunk id it stands
for (BLAKE3) before use (a hole reads as zeros and fails that check), and a miss or a mismatch
falls back to the store. Deleting the directory is always safe; the total is kept under
``CASREG_KEYFRAME_CACHE`` bytes, oldest first.

It is off unless ``CASREG_KEYFRAME_CACHE`` gives it bytes: on the benchmark's 12-version series
one filled copy is 87 MiB beside 406 MiB of objects (the directory 1.21x larger) for ~0.1 s of CPU
saved per delta version committed or checked out. A store's size is what its user sees first.
"""

from __future__ import annotations

import os
import threading

DEFAULT_LIMIT = 0  # off: see above
FILL_AFTER = 2  # deltas against a keyframe (each saves about half of it) before it earns a copy
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
        self._fill_fds: dict[bytes, int] = {}
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------
    def fill(self, manifest_id: bytes, size: int, offset: int, data) -> None:
        """Write ``data`` (checked bytes of the keyframe ``manifest_id``, ``size`` bytes long) at
        ``offset`` of its copy, creating the copy (sparse) if needed. Never fails a commit: a
        full disk or an unwritable store only costs the cache. Thread-safe."""
        if not 0 < size <= self.limit:
            return
        with self._lock:
            fd = self._fill_fds.get(manifest_id)
            if fd is None:
                fd = self._create(manifest_id, size)
                if fd is None:
                    return
                self._fill_fds[manifest_id] = fd
        try:
            view, done = memoryview(data), 0
            while done < len(view):
                done += os.pwrite(fd, view[done:], offset + done)
        except OSError:
            pass

    def _create(self, manifest_id: bytes, size: int) -> int | None:
        path = os.path.join(self.dir, manifest_id.hex())
        try:
            os.makedirs(self.dir, exist_ok=True)
            new = not os.path.exists(path)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)  # holes read as zeros: they fail the hash check
        except OSError:
            os.close(fd)
            return None
        if new:
            self._evict()
        return fd

    def _evict(self) -> None:
        try:
            entries = [e for e in os.scandir(self.dir) if not e.name.startswith(".")]
            newest_first = sorted(((e.stat().st_mtime, e.stat().st_blocks * 512, e.path) for e in entries),
                                  reverse=True)
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
        """Bytes the cache takes on disk (its files are sparse until filled)."""
        try:
            return sum(e.stat().st_blocks * 512 for e in os.scandir(self.dir))
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
            for fd in [*self._fds.values(), *self._fill_fds.values()]:
                if fd is not None:
                    os.close(fd)
            self._fds.clear()
            self._fill_fds.clear()


def _unlink(path: str) -> int:
    try:
        os.unlink(path)
        return 1
    except OSError:
        return 0
