"""``file:///path``: another casreg store on this machine (the fastest way to test a remote)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Iterator

from ..errors import RemoteError
from .base import Backend
from .registry import Scheme, register


class FileBackend(Backend):
    def __init__(self, url: str, create: bool = False):
        super().__init__(url)
        from ..repo import Repository
        path = self.u.path
        if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "data.mdb")):
            if not create:
                raise RemoteError(f"remote {self.describe()}: not a casreg store")
            Repository.init(path).close()
        self.repo = Repository(path)

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        self.traffic.requests += 1
        missing = set(self.repo.objects.missing(ids))
        return {oid for i, oid in enumerate(ids) if i not in missing}

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        self.traffic.requests += 1
        self.repo.db.write(lambda txn: self.repo.objects.put_values(txn, items))

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        self.traffic.requests += 1
        with self.repo.db.read() as txn:
            for oid in ids:
                value = txn.get(oid, db=self.repo.objects.table)
                if value is None:
                    raise RemoteError(f"remote {self.url} lacks object {oid.hex()}")
                yield oid, bytes(value)

    def refs(self) -> dict[str, bytes]:
        self.traffic.requests += 1
        return self._accept_refs(self.repo.list_refs())

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        from ..errors import RefConflict
        from ..repo import default_author
        self.traffic.requests += 1

        def move(txn):
            if new is None:
                self.repo.refs.remove_if_equals(txn, name, old, who=default_author(), message="push: delete")
            else:
                self.repo.refs.set_if_equals(txn, name, old, new, who=default_author(), message="push")
        try:
            self.repo.db.write(move)
        except RefConflict:
            return False
        return True

    def close(self) -> None:
        self.repo.close()


def _check_url(out, netloc: str, path: str, bad):
    if netloc not in ("", "localhost") or not path:
        raise bad("use file:///absolute/path/to/store")
    return replace(out, path=path)


register(Scheme("file", lambda url, secrets, create=False, cache_dir=None: FileBackend(url, create=create),
                check_url=_check_url))
