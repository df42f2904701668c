"""Which pack holds each object of a pack-layout remote (``packs``): id -> a packed int.

A value is ``slot << 96 | offset << 32 | length`` (``slot``: the pack's number, ``packs`` keeps
the names). A large remote's objects arrive in one load: a merged index of 10^5-10^6 records.
As a dict they cost ~160 bytes an object beside the records themselves (the id's bytes, the int,
the dict's slots: 48 MB of a clone of 3x10^5 objects). ``load`` keeps such a load in numpy
arrays sorted by id instead (56 bytes an object, no Python object each) and searches them; what
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


def unpacked(value: int) -> tuple[int, int, int]:
    """(slot, offset, length) of a ``packed`` value."""
    return value >> 96, value >> 32 & 0xFFFFFFFFFFFFFFFF, value & 0xFFFFFFFF


class PackIndex:
    def __init__(self):
        self._extra: dict[bytes, int] = {}
        self._ids = None  # numpy "S32", sorted
        self._keys = None  # numpy uint64: the first 8 bytes of each id read big-endian (what is searched)
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
        words = ids.view(">u8").reshape(-1, 4)  # an id as 4 big-endian words: their order is the bytes'
        order = np.lexsort((words[:, 3], words[:, 2], words[:, 1], words[:, 0]))  # stable: the first listing first
        del words
        ids = ids[order]
        slots = np.concatenate([np.full(len(a), slot, np.uint32) for (slot, _), a in zip(parts, arrays)])[order]
        offsets = np.concatenate([a["offset"] for a in arrays])[order]
        lengths = np.concatenate([a["length"] for a in arrays])[order]
        del arrays, order
        repeated = np.zeros(len(ids), bool)
        repeated[1:] = ids[1:] == ids[:-1]
        first = np.maximum.accumulate(np.where(repeated, 0, np.arange(len(ids))))  # where each id's run starts
        later = [(ids[i:i + 1].tobytes(), packed(int(slots[i]), int(offsets[i]), int(lengths[i])))
                 for i in np.flatnonzero(repeated)
                 if (slots[i], offsets[i], lengths[i]) != (slots[first[i]], offsets[first[i]], lengths[first[i]])]
        if repeated.any():
            keep = ~repeated
            ids, slots, offsets, lengths = ids[keep], slots[keep], offsets[keep], lengths[keep]
        self._ids, self._slots, self._offsets, self._lengths = ids, slots, offsets, lengths
        # the first word of each id, in this machine's byte order: what is searched (a search of
        # the strings is 20x slower, of big-endian words a byte swap of them all each time)
        self._keys = ids.view(">u8")[::4].astype(np.uint64)
        return later

    def _position(self, oid: bytes, key: int, at: int) -> int | None:
        """Where ``oid`` is in the arrays, searching from ``at`` (the first id whose first word
        is ``key`` or more) through the ids sharing that first word; None if it is not there."""
        ids, keys = self._ids, self._keys
        assert ids is not None and keys is not None
        while at < len(keys) and int(keys[at]) == key:
            if ids[at:at + 1].tobytes() == oid:  # raw bytes: an "S32" item drops trailing zeros
                return at
            at += 1
        return None

    def _value(self, i: int) -> int:
        return packed(int(self._slots[i]), int(self._offsets[i]), int(self._lengths[i]))  # type: ignore[index]

    def _find(self, oid: bytes) -> int | None:
        if self._keys is None or len(oid) != 32:
            return None
        key = int.from_bytes(oid[:8], "big")
        at = self._keys.searchsorted(self._keys.dtype.type(key))  # a Python int above 2^63 would be searched as a float
        i = self._position(oid, key, int(at))
        return None if i is None else self._value(i)

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

    def _array_positions(self, oids: list[bytes]):
        """Where each of ``oids`` (32 bytes each) is in the arrays, -1 where it is not: one
        search for them all (numpy int64)."""
        import numpy as np
        ids, keys = self._ids, self._keys
        assert ids is not None and keys is not None
        query = np.frombuffer(b"".join(oids), "S32")
        query_keys = query.view(">u8")[::4].astype(np.uint64)
        at = keys.searchsorted(query_keys)
        near = np.minimum(at, len(ids) - 1)
        same = ids[near] == query  # array against array: every byte compared
        positions = np.where(same, near, -1).astype(np.int64)
        # the rest are absent, unless another id shares their first word and sorts before them
        for i in np.flatnonzero(~same & (keys[near] == query_keys)).tolist():
            position = self._position(oids[i], int(query_keys[i]), int(at[i]))
            if position is not None:
                positions[i] = position
        return positions

    def _searchable(self, oids: list[bytes]) -> bool:
        """True if ``oids`` can be searched in the arrays at once (``_array_positions``)."""
        return self._ids is not None and bool(oids) and all(len(oid) == 32 for oid in oids)

    def many(self, oids: Iterable[bytes]) -> list[int | None]:
        """``get`` of each id, in order: one search of the arrays for them all."""
        oids = list(oids)
        if not self._searchable(oids):
            return [self.get(oid) for oid in oids]
        import numpy as np
        out: list[int | None] = [self._extra.get(oid) for oid in oids]
        positions = self._array_positions(oids)
        hits = np.flatnonzero(positions >= 0)
        found = positions[hits]
        for i, slot, offset, length in zip(hits.tolist(), self._slots[found].tolist(),  # type: ignore[index]
                                           self._offsets[found].tolist(), self._lengths[found].tolist()):  # type: ignore[index]
            if out[i] is None:
                out[i] = packed(slot, offset, length)
        return out

    def read_order(self, oids: list[bytes]) -> list[bytes]:
        """``oids`` by pack slot, then offset; ids not listed last; ties in the order given. With
        arrays, the sort keys are two numpy columns (12 bytes an id), not a Python int and an
        index each (~90 bytes: 27 MB of a COS clone of 3x10^5 chunks)."""
        if not self._searchable(oids):
            last = 1 << 256
            keys = [last if value is None else value for value in self.many(oids)]
            return [oids[i] for i in sorted(range(len(oids)), key=keys.__getitem__)]
        import numpy as np
        positions = self._array_positions(oids)
        slots = np.full(len(oids), np.iinfo(np.uint32).max, np.uint32)
        offsets = np.full(len(oids), np.iinfo(np.uint64).max, np.uint64)
        listed = np.flatnonzero(positions >= 0)
        slots[listed] = self._slots[positions[listed]]  # type: ignore[index]
        offsets[listed] = self._offsets[positions[listed]]  # type: ignore[index]
        del positions, listed
        if self._extra:  # what was added after the load wins, as in ``get``
            for i, oid in enumerate(oids):
                value = self._extra.get(oid)
                if value is not None:
                    slots[i], offsets[i], _ = unpacked(value)
        return [oids[i] for i in np.lexsort((offsets, slots))]

    def __len__(self) -> int:
        """Ids listed (an id in both the arrays and the dict counts twice: only a test asks)."""
        return len(self._extra) + (0 if self._ids is None else len(self._ids))
