"""Which pack holds each object of a pack-layout remote (``packs``): id -> a packed int.

A value is ``slot << 96 | offset << 32 | length`` (``slot``: the pack's number, ``packs`` keeps
the names). A large remote's objects arrive in one load: a merged index of 10^5-10^6 records.
As a dict they cost ~160 bytes an object beside the records themselves (the id's bytes, the int,
the dict's slots: 48 MB of a clone of 3x10^5 objects). ``load`` keeps such a load in numpy
arrays sorted by id instead (48 bytes an object, no Python object each) and searches them; what
is added later one pack at a time (a push's packs) or changed (a condemned copy's replacement)
goes to a dict beside them, which wins. A load of fewer than ``ARRAY_MIN`` records goes to the
dict alone (a small remote does not import numpy).
"""

from __future__ import annotations

import struct
from typing import Iterable

REC = struct.Struct("<32sQI")  # a pack index's record: id, offset, length (as stored)
ARRAY_MIN = 1 << 15


def packed(slot: int, offset: int, length: int) -> int:
    return slot << 96 | offset << 32 | length


class PackIndex:
    def __init__(self):
        self._extra: dict[bytes, int] = {}
        self._ids = None  # numpy "S32", sorted
        self._slots = self._offsets = self._lengths = None  # numpy, in _ids's order

    def load(self, parts: list[tuple[int, bytes | memoryview]]) -> list[tuple[bytes, int]]:
        """Index the records (``REC`` each, as stored) of packs given as ``(slot, records)``, into
        an empty index. An id listed more than once keeps its first listing (in ``parts`` order,
        then record order); the later ones are returned as ``(id, packed value)``, each id's in
        their listing order."""
        assert self._ids is None and not self._extra
        if sum(len(records) for _, records in parts) < ARRAY_MIN * REC.size:
            later: list[tuple[bytes, int]] = []
            for slot, records in parts:
                for oid, offset, length in REC.iter_unpack(records):
                    value = packed(slot, offset, length)
                    if self._extra.setdefault(oid, value) != value:
                        later.append((oid, value))
            return later
        import numpy as np
        record = np.dtype([("id", "S32"), ("offset", "<u8"), ("length", "<u4")])
        arrays = [np.frombuffer(records, record) for _, records in parts]
        ids = np.concatenate([a["id"] for a in arrays])
        order = np.argsort(ids, kind="stable")  # equal ids keep their listing order: the first wins
        ids = ids[order]
        slots = np.concatenate([np.full(len(a), slot, np.uint32) for (slot, _), a in zip(parts, arrays)])[order]
        offsets = np.concatenate([a["offset"] for a in arrays])[order]
        lengths = np.concatenate([a["length"] for a in arrays])[order]
        del arrays, order
        repeated = np.zeros(len(ids), bool)
        repeated[1:] = ids[1:] == ids[:-1]
        later = [(ids[i:i + 1].tobytes(), packed(int(slots[i]), int(offsets[i]), int(lengths[i])))
                 for i in np.flatnonzero(repeated)]
        if later:
            keep = ~repeated
            ids, slots, offsets, lengths = ids[keep], slots[keep], offsets[keep], lengths[keep]
        self._ids, self._slots, self._offsets, self._lengths = ids, slots, offsets, lengths
        return later

    def _find(self, oid: bytes) -> int | None:
        ids = self._ids
        if ids is None:
            return None
        i = int(ids.searchsorted(oid))
        if i < len(ids) and ids[i:i + 1].tobytes() == oid:  # raw bytes: an "S32" item drops trailing zeros
            return packed(int(self._slots[i]), int(self._offsets[i]), int(self._lengths[i]))  # type: ignore[index]
        return None

    def get(self, oid: bytes, default: int | None = None) -> int | None:
        value = self._extra.get(oid)
        if value is None:
            value = self._find(oid)
        return default if value is None else value

    def __contains__(self, oid: bytes) -> bool:
        return oid in self._extra or self._find(oid) is not None

    def __setitem__(self, oid: bytes, value: int) -> None:
        self._extra[oid] = value

    def setdefault(self, oid: bytes, value: int) -> int:
        found = self.get(oid)
        if found is None:
            self._extra[oid] = value
            return value
        return found

    def many(self, oids: Iterable[bytes]) -> list[int | None]:
        """``get`` of each id, in order: one search of the arrays for them all."""
        oids = list(oids)
        ids = self._ids
        if ids is None or not oids or any(len(oid) != 32 for oid in oids):
            return [self.get(oid) for oid in oids]
        out: list[int | None] = [self._extra.get(oid) for oid in oids]
        import numpy as np
        query = np.frombuffer(b"".join(oids), "S32")
        at = np.minimum(ids.searchsorted(query), len(ids) - 1)
        hit = ids[at] == query  # array against array: every byte compared
        for i in np.flatnonzero(hit):
            if out[i] is None:
                j = at[i]
                out[i] = packed(int(self._slots[j]), int(self._offsets[j]), int(self._lengths[j]))  # type: ignore[index]
        return out

    def __len__(self) -> int:
        """Ids listed (an id in both the arrays and the dict counts twice: only a test asks)."""
        return len(self._extra) + (0 if self._ids is None else len(self._ids))
