"""The one LMDB environment of a store: named databases, write transactions that grow the map.

Databases: ``objects`` (id -> stored object), ``refs`` (name -> commit id),
``reflog`` (name NUL seq -> JSON entry), ``config`` (key -> JSON value), ``keyframes`` (file
layout key -> delta keyframe, see ``objects/keyframes.py``), ``meta`` (object counters and version
summaries, see ``objects/summary.py``); the last two are optional in a read-only open (a store
written before them lacks them); and those a caller names for itself (``Database.table``: a
file:// remote's ``remote-gc``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sys
import tempfile
from typing import Callable, Iterable, Iterator, TypeVar

import lmdb

from .errors import StoreUnavailable

T = TypeVar("T")

DB_NAMES = ("objects", "refs", "reflog", "config", "keyframes", "meta")
OPTIONAL_DBS = ("keyframes", "meta")
# The map is a virtual reservation (LMDB does not allocate it on Linux); it doubles when full.
INITIAL_MAP_SIZE = 1 << 36  # 64 GiB
# Lookups (or puts) of random keys between unmappings: each faults its leaf in with the pages
# around it (64 KiB; see release_pages), and unmapping costs ~0.15 ms.
RELEASE_EVERY = 48
MAX_RETRIES = 8


def describe_lmdb_error(exc: BaseException, path: str) -> str:
    """One line for an LMDB or OS failure, naming the common causes plainly."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if isinstance(exc, lmdb.DiskError) or code == errno.ENOSPC or "No space left" in text:
        return f"disk full while writing the store at {path}"
    if "Input/output error" in text and _nearly_full(path):
        return f"disk full while writing the store at {path} (LMDB reports it as an I/O error)"
    if code in (errno.EACCES, errno.EROFS, errno.EPERM) or "Permission denied" in text or "Read-only" in text:
        return f"store at {path} is read-only or not writable"
    return f"store at {path}: {text.splitlines()[0] if text else type(exc).__name__}"


def _nearly_full(path: str, margin: int = 16 << 20) -> bool:
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < margin


class Database:
    """An open LMDB environment with the store's named databases."""

    def __init__(self, path: str, *, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        self._map_ranges: list[tuple[int, int]] | None = None
        self._open_lock = _hold_shared(os.path.join(path, OPEN_LOCK))
        self._open_env()

    def _open_env(self) -> None:
        path, readonly = self.path, self.readonly
        try:
            self.env = self._open(path, readonly)
        except lmdb.Error as exc:
            if readonly and "Permission denied" in str(exc):
                # A read-only medium: no lock file can be written, read without one.
                self.env = self._open(path, readonly, lock=False)
            else:
                raise StoreUnavailable(describe_lmdb_error(exc, path)) from None
        self.dbs = {}
        try:
            for name in DB_NAMES:
                try:
                    self.dbs[name] = self.env.open_db(name.encode(), create=not readonly)
                except lmdb.NotFoundError:
                    if name not in OPTIONAL_DBS:
                        raise
        except lmdb.NotFoundError:
            raise StoreUnavailable(f"{path} is not a casreg store (missing database)") from None
        except lmdb.Error as exc:
            raise StoreUnavailable(describe_lmdb_error(exc, path)) from None

    @staticmethod
    def _open(path: str, readonly: bool, lock: bool = True) -> lmdb.Environment:
        size = INITIAL_MAP_SIZE
        data_file = os.path.join(path, "data.mdb")
        if os.path.exists(data_file):
            size = max(size, 2 * os.path.getsize(data_file))
        return lmdb.open(
            path, map_size=size, max_dbs=len(DB_NAMES) + 2, subdir=True,
            readonly=readonly, lock=lock, create=not readonly, max_readers=256,
        )

    def read(self, buffers: bool = False) -> lmdb.Transaction:
        """A read transaction: a consistent snapshot for as long as it is open."""
        try:
            return self._begin(write=False, buffers=buffers)
        except lmdb.MapResizedError:
            self._set_mapsize(0)  # another process grew the map: adopt its size
            return self._begin(write=False, buffers=buffers)

    def _begin(self, *, write: bool, buffers: bool) -> lmdb.Transaction:
        # lmdb's stubs overload ``begin`` on ``buffers`` as a Literal (its value type follows it)
        if buffers:
            return self.env.begin(write=write, buffers=True)
        return self.env.begin(write=write, buffers=False)

    def write(self, body: Callable[[lmdb.Transaction], T], *, buffers: bool = False) -> T:
        """Run ``body`` in one write transaction; all of it lands or none of it.

        ``body`` may be run again (after the map grows), so it must only write what it was given.
        With ``buffers``, values read are zero-copy views, valid only until the next write.
        """
        if self.readonly:
            raise StoreUnavailable(f"store at {self.path} is opened read-only")
        for _ in range(MAX_RETRIES):
            try:
                with self._begin(write=True, buffers=buffers) as txn:
                    return body(txn)
            except lmdb.MapFullError:
                self._set_mapsize(self.env.info()["map_size"] * 2)
            except lmdb.MapResizedError:
                self._set_mapsize(0)
            except (lmdb.Error, OSError) as exc:
                raise StoreUnavailable(describe_lmdb_error(exc, self.path)) from None
        raise StoreUnavailable(f"store at {self.path}: could not grow the LMDB map")

    def table(self, name: str):
        """A named database of a caller's own beside the store's (``DB_NAMES``), such as a file://
        remote's ``remote-gc``; created on first use (not in a read-only open: StoreUnavailable)."""
        if name not in self.dbs:
            try:
                self.dbs[name] = self.env.open_db(name.encode(), create=not self.readonly)
            except lmdb.NotFoundError:
                raise StoreUnavailable(f"store at {self.path} has no {name} database (opened read-only)") from None
            except lmdb.Error as exc:
                raise StoreUnavailable(describe_lmdb_error(exc, self.path)) from None
        return self.dbs[name]

    def release_pages(self) -> None:
        """Drop this process's mapping of the data file's pages (they stay in the page cache).

        LMDB reads through a shared read-only mmap, so every page a commit or checkout touches
        would count in this process's RSS until exit; streaming a 2 GB file would show 2 GB.
        ``MADV_DONTNEED`` on a shared file mapping is safe at any time: the next access faults
        the same bytes back in from the page cache.
        """
        if _madvise is None:
            return
        if self._map_ranges is None:
            data_file = os.path.realpath(os.path.join(self.path, "data.mdb"))
            try:
                with open("/proc/self/maps") as maps:
                    self._map_ranges = [(int(start, 16), int(end, 16))
                                        for start, end in (line.split()[0].split("-") for line in maps
                                                           if line.rstrip().endswith(data_file))]
            except OSError:
                self._map_ranges = []
        for start, end in self._map_ranges:
            _madvise(start, end - start, _MADV_DONTNEED)

    def releasing(self, items: Iterable[T], every: int = RELEASE_EVERY) -> Iterator[T]:
        """``items`` as they are, the data file's pages unmapped (``release_pages``) after every
        ``every`` of them and once at the end: a loop of random lookups or puts keeps its RSS
        flat however many it makes."""
        n = 0
        for n, item in enumerate(items, 1):
            yield item
            if n % every == 0:
                self.release_pages()
        if n % every:
            self.release_pages()

    def _set_mapsize(self, size: int) -> None:
        self.env.set_mapsize(size)
        self._map_ranges = None  # the map may have moved

    def close(self) -> None:
        self.env.close()
        if self._open_lock is not None:
            os.close(self._open_lock)
            self._open_lock = None

    def file_size(self) -> int:
        return os.path.getsize(os.path.join(self.path, "data.mdb"))

    def compact(self) -> bool:
        """Rewrite the data file without its free pages (LMDB's compacting copy) and swap it in
        atomically. Only when no other process has the store open (each open holds ``open.lock``
        shared): one that had would go on writing to the old file. False, changing nothing, if
        one has. A kill at any point leaves the old file or the new one, each whole."""
        if self.readonly or self._open_lock is None:
            return False
        try:
            fcntl.flock(self._open_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            for stale in os.listdir(self.path):  # what a killed compaction left
                if stale.startswith(COMPACT_PREFIX):
                    shutil.rmtree(os.path.join(self.path, stale), ignore_errors=True)
            tmp = tempfile.mkdtemp(prefix=COMPACT_PREFIX, dir=self.path)
            try:
                self.env.copy(tmp, compact=True)
                fd = os.open(os.path.join(tmp, "data.mdb"), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self.env.close()
                os.rename(os.path.join(tmp, "data.mdb"), os.path.join(self.path, "data.mdb"))
                _fsync_dir(self.path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                if not _is_open(self.env):
                    self._map_ranges = None
                    self._open_env()
        except (lmdb.Error, OSError) as exc:
            raise StoreUnavailable(describe_lmdb_error(exc, self.path)) from None
        finally:
            fcntl.flock(self._open_lock, fcntl.LOCK_SH)
        return True


OPEN_LOCK = "open.lock"
COMPACT_PREFIX = ".compact-"


def _hold_shared(lock_path: str) -> int | None:
    """A shared flock on ``lock_path`` for as long as the store is open (None where the store's
    directory is not writable: nothing can compact it then either)."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _is_open(env: lmdb.Environment) -> bool:
    try:
        env.info()
        return True
    except lmdb.Error:
        return False


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_madvise():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        return fn
    except (OSError, AttributeError):
        return None


_MADV_DONTNEED = 4
_madvise = _load_madvise() if sys.platform.startswith("linux") else None
