"""Refs: names -> commit ids in LMDB, moved only by compare-and-swap, every move in the reflog.

Modelled on dulwich's RefsContainer: ``set_if_equals(name, old, new)`` and
``remove_if_equals(name, old)``. ``old=None`` means "must not exist"; ``old=ANY`` means "whatever
it is" (``--force``). All methods take the caller's LMDB transaction so a ref can move in the same
write transaction that lands the objects it points at.
"""

from __future__ import annotations

import json
import struct
import time
from typing import Iterator

import lmdb

from ..db import Database
from ..errors import RefConflict
from .names import check_ref_name

ANY = object()
_SEQ = struct.Struct(">Q")


def _short(oid: bytes | None) -> str:
    return oid.hex()[:12] if oid else "nothing"


class RefContainer:
    def __init__(self, db: Database):
        self.db = db
        self.refs = db.dbs["refs"]
        self.log = db.dbs["reflog"]

    def get(self, txn: lmdb.Transaction, name: str) -> bytes | None:
        value = txn.get(name.encode(), db=self.refs)
        return bytes(value) if value is not None else None

    def items(self, txn: lmdb.Transaction, prefix: str = "") -> Iterator[tuple[str, bytes]]:
        cur = txn.cursor(db=self.refs)
        key = prefix.encode()
        if not cur.set_range(key):
            return
        for k, v in cur:
            k = bytes(k)
            if not k.startswith(key):
                break
            yield k.decode(), bytes(v)

    def set_if_equals(self, txn: lmdb.Transaction, name: str, old, new: bytes, *,
                      who: str, message: str) -> None:
        """Point ``name`` at ``new`` if it currently points at ``old``; record the move."""
        check_ref_name(name)
        current = self._check_expected(txn, name, old)
        if current == new:
            return
        txn.put(name.encode(), new, db=self.refs)
        self._append_log(txn, name, current, new, who, message)

    def remove_if_equals(self, txn: lmdb.Transaction, name: str, old, *, who: str, message: str) -> None:
        current = self._check_expected(txn, name, old)
        if current is None:
            return
        txn.delete(name.encode(), db=self.refs)
        self._append_log(txn, name, current, None, who, message)

    def _check_expected(self, txn, name: str, old) -> bytes | None:
        current = self.get(txn, name)
        if old is ANY or current == old:
            return current
        if old is None:
            raise RefConflict(f"ref {name} already exists (at {_short(current)}); use --force to move it")
        raise RefConflict(f"ref {name} is at {_short(current)}, expected {_short(old)}")

    # -- reflog ------------------------------------------------------------------------------------
    def _append_log(self, txn, name: str, old: bytes | None, new: bytes | None, who: str, message: str) -> None:
        prefix = name.encode() + b"\0"
        cur = txn.cursor(db=self.log)
        seq = 0
        # the entry just before the first key past this name's range is its newest
        on_entry = cur.prev() if cur.set_range(prefix + b"\xff" * 8) else cur.last()
        if on_entry:
            key = bytes(cur.key())
            if key.startswith(prefix) and len(key) == len(prefix) + 8:
                seq = _SEQ.unpack(key[len(prefix):])[0] + 1
        entry = {"old": old.hex() if old else None, "new": new.hex() if new else None,
                 "time": time.time(), "who": who, "message": message}
        txn.put(prefix + _SEQ.pack(seq), json.dumps(entry, sort_keys=True).encode(), db=self.log)

    def reflog(self, txn: lmdb.Transaction, name: str) -> list[dict]:
        """Every recorded move of ``name``, newest first."""
        prefix = name.encode() + b"\0"
        cur = txn.cursor(db=self.log)
        out = []
        if cur.set_range(prefix):
            for k, v in cur:
                if not bytes(k).startswith(prefix):
                    break
                out.append(json.loads(bytes(v)))
        out.reverse()
        return out

    def logged_targets(self, txn: lmdb.Transaction, since: float) -> set[bytes]:
        """Every version a reflog entry recorded at or after ``since`` (epoch seconds) names."""
        out: set[bytes] = set()
        for value in txn.cursor(db=self.log).iternext(keys=False):
            entry = json.loads(bytes(value))
            if entry["time"] >= since:
                out.update(bytes.fromhex(h) for h in (entry["old"], entry["new"]) if h)
        return out

    def logged_names(self, txn: lmdb.Transaction) -> list[str]:
        """Names that have a reflog, including deleted refs."""
        names: list[str] = []
        for k in txn.cursor(db=self.log).iternext(values=False):
            name = bytes(k)[:-9].decode()
            if not names or names[-1] != name:
                names.append(name)
        return names
