"""FATE 2.x's file model engine: one tar per task output at its storage key."""

from __future__ import annotations

import contextlib
import os

from ..errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    RemoteError,
)
from .base import FateStore
from .entries import COMPONENT, LAYOUT_2, Archive, Entry, check_archive, parse_storage_key, size_limit, too_big
from .where import Location


# file (2.x) -------------------------------------------------------------------------------------------
class FileStore(FateStore):
    """FATE-Flow 2.x's ``file`` engine: each task output a tar at ``<path>/<storage key>``."""

    def __init__(self, location: Location):
        super().__init__(location)
        self.root = location.path
        if not os.path.isdir(self.root):
            raise NotFound(f"FATE file store {self.root}: no such directory")

    def _path(self, entry: Entry) -> str:
        from ..safepath import join_inside
        if entry.layout != LAYOUT_2:
            raise NotFound(f"{entry}: FATE's file engine holds 2.x task outputs only")
        return join_inside(self.root, *entry.storage_key.split("/"))

    def entries(self) -> list[Entry]:
        out = []
        for top, dirs, files in os.walk(self.root):
            depth = 0 if top == self.root else os.path.relpath(top, self.root).count(os.sep) + 1
            dirs[:] = sorted(d for d in dirs if depth < 5 and not os.path.islink(os.path.join(top, d)))
            if depth == 5:
                for name in files:
                    key = os.path.relpath(os.path.join(top, name), self.root).replace(os.sep, "/")
                    entry = parse_storage_key(key, f"{self.root}/{key}")
                    if entry:
                        out.append(entry)
        return sorted(out, key=lambda e: e.sort_key)

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        limit = max_bytes or size_limit()
        path = self._path(entry)
        entry = Entry(LAYOUT_2, entry.party_model_id, entry.model_version, COMPONENT, entry.component,
                      entry.output_key, path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFound(f"{entry}: no such file") from None
        except OSError as exc:
            raise RemoteError(f"{entry}: cannot open: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise too_big(entry, size, limit)
            data = f.read(size + 1)
        if len(data) > limit:
            raise too_big(entry, len(data), limit)
        return Archive(entry, check_archive(data, entry))

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        if layout not in (None, LAYOUT_2):
            raise InvalidInput("FATE's file engine holds 2.x task outputs only")
        self._checked_write(party_model_id, model_version, data, component, output_key, LAYOUT_2)
        entry = Entry(LAYOUT_2, party_model_id, model_version, COMPONENT, component, output_key)
        path = self._path(entry)
        entry = Entry(LAYOUT_2, party_model_id, model_version, COMPONENT, component, output_key, path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.casreg-{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            if force:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise AlreadyExists(f"{entry}: already in the store; replace it with force") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return entry
