"""Every stored copy a remote lists (``Backend.list_objects``), held in columns sorted by id.

A gc looks at every copy on the remote once, but acts on few. A list of ``StoredObject`` cost
~190 bytes a copy (the instance, its id, its size and times as Python objects), a set of the ids
~30 more; here a copy is 60 bytes of arrays (id, size, upload and condemnation times, which pack),
and a ``StoredObject`` is made again only for a copy gc condemns, absolves or deletes.
"""

from __future__ import annotations

import logging
import math
from array import array
from typing import Iterable, Iterator

import numpy as np

from .base import StoredObject

ID = 32
log = logging.getLogger("casreg")


class Listing:
    """The copies listed, sorted by id (copies of one id side by side, in listing order)."""

    def __init__(self, objects: Iterable[StoredObject], remote: str = "the remote"):
        ids = bytearray()
        sizes, uploaded, condemned = array("q"), array("d"), array("d")
        where_index: dict[str, int] = {}
        where = array("I")
        skipped = 0
        for o in objects:
            if len(o.id) != ID:  # a stray key under casreg's prefix: not an object, never deleted
                skipped += 1
                continue
            ids += o.id
            sizes.append(o.size)
            uploaded.append(o.uploaded)
            condemned.append(math.nan if o.condemned is None else o.condemned)
            where.append(where_index.setdefault(o.where, len(where_index)))
        if skipped:
            log.warning("%s: %d listed key(s) are not object ids; gc leaves them alone", remote, skipped)
        order = np.argsort(np.frombuffer(ids, dtype=f"S{ID}"), kind="stable")  # bytes order, as Python's
        self._ids = np.frombuffer(ids, dtype=f"S{ID}")[order]
        del ids
        self._sizes = np.frombuffer(sizes, dtype=np.int64)[order]
        self._uploaded = np.frombuffer(uploaded, dtype=np.float64)[order]
        self._condemned = np.frombuffer(condemned, dtype=np.float64)[order]
        self._where = np.frombuffer(where, dtype=np.uint32)[order]
        self._places = list(where_index)
        self._raw = memoryview(self._ids).cast("B")  # type: ignore[arg-type]  # (numpy has the buffer protocol)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def total_bytes(self) -> int:
        return int(self._sizes.sum())

    def id(self, i: int) -> bytes:
        return bytes(self._raw[i * ID:(i + 1) * ID])

    def is_condemned(self, i: int) -> bool:
        return not math.isnan(self._condemned[i])

    def condemned_at(self, i: int) -> float:
        return float(self._condemned[i])

    def uploaded_at(self, i: int) -> float:
        return float(self._uploaded[i])

    def item(self, i: int) -> StoredObject:
        """The copy at ``i`` as ``list_objects`` gave it."""
        condemned = float(self._condemned[i])
        return StoredObject(self.id(i), int(self._sizes[i]), float(self._uploaded[i]),
                            None if math.isnan(condemned) else condemned, self._places[self._where[i]])

    def groups(self) -> Iterator[tuple[bytes, range]]:
        """(id, the positions of its copies), in id order."""
        n = len(self._ids)
        i = 0
        while i < n:
            oid = self.id(i)
            j = i + 1
            while j < n and self._raw[j * ID:(j + 1) * ID] == oid:
                j += 1
            yield oid, range(i, j)
            i = j

    def __contains__(self, oid: object) -> bool:
        if not isinstance(oid, bytes) or len(oid) != ID:
            return False
        i = int(np.searchsorted(self._ids, np.frombuffer(oid, dtype=f"S{ID}")[0]))
        return i < len(self._ids) and self.id(i) == oid
