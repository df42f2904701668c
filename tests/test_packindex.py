"""The pack-layout remotes' object index (remotes/packindex.py): its arrays answer as a dict would."""

from __future__ import annotations

import os
import random

import pytest

from casreg.remotes import packindex
from casreg.remotes.packindex import REC, PackIndex, packed


def _reference(parts):
    """What the index must hold: the first listing of each id wins; later ones are returned."""
    first: dict[bytes, int] = {}
    later = []
    for slot, records in parts:
        for oid, offset, length in REC.iter_unpack(records):
            value = packed(slot, offset, length)
            if first.setdefault(oid, value) != value:
                later.append((oid, value))
    return first, later


@pytest.mark.parametrize("array_min", [1 << 30, 1], ids=["dict", "arrays"])
def test_loaded_records_answer_as_a_dict_would(array_min, monkeypatch):
    monkeypatch.setattr(packindex, "ARRAY_MIN", array_min)
    rng = random.Random(7)
    ids = [os.urandom(32) for _ in range(3000)]
    ids += [os.urandom(31) + b"\0", os.urandom(30) + b"\0\0", bytes(32), b"\xff" * 32]  # zeros at the end
    shared = os.urandom(8)  # the arrays are searched by an id's first 8 bytes: ids that share them
    ids += [shared + os.urandom(24) for _ in range(6)] + [shared + bytes(24)]
    parts = []
    for slot in range(5):
        chosen = rng.sample(ids, 900) + rng.sample(ids[-11:], 4)  # some ids in several packs
        chosen += chosen[:3]  # and twice in one
        repeat = chosen[3]  # and one record listed twice as it is (no other copy: nothing returned)
        records = [REC.pack(oid, rng.randrange(1 << 40), rng.randrange(1 << 32)) for oid in chosen]
        records.append(records[chosen.index(repeat)])
        parts.append((slot, b"".join(records)))
    expected, expected_later = _reference(parts)
    index = PackIndex()
    by_id = lambda pairs: sorted(pairs, key=lambda pair: pair[0])  # noqa: E731  (stable: each id's own order stays)
    assert by_id(index.load(parts)) == by_id(expected_later)
    absent = [os.urandom(32) for _ in range(50)] + [os.urandom(31) + b"\0"]
    absent += [shared + os.urandom(24) for _ in range(3)] + [shared + b"\xff" * 24, shared + bytes(23) + b"\1"]
    for oid in list(expected) + absent:
        assert index.get(oid) == expected.get(oid)
        assert (oid in index) == (oid in expected)
    queries = rng.sample(list(expected), 400) + absent + [b"short"]
    assert index.many(queries) == [expected.get(q) for q in queries]
    assert index.many([]) == []
    some = queries[0]
    index[some] = packed(9, 1, 2)  # a condemned copy's replacement wins over what was loaded
    assert index.get(some) == packed(9, 1, 2) and index.many([some]) == [packed(9, 1, 2)]
    assert index.setdefault(queries[1], 5) == expected[queries[1]]
    new = os.urandom(32)
    assert index.setdefault(new, packed(3, 4, 5)) == packed(3, 4, 5) and index.get(new) == packed(3, 4, 5)
    assert index.get(absent[0], -1) == -1


def test_a_large_load_keeps_no_python_object_per_record():
    """The point of the arrays: 10^5 records cost ~56 bytes each, not the ~160 of a dict."""
    import tracemalloc
    n = 100_000
    records = b"".join(REC.pack(os.urandom(32), i * 100, 100) for i in range(n))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = PackIndex()
    index.load([(0, records)])
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(index) == n
    assert held < 64 * n, f"{held / n:.0f} bytes a record"


@pytest.mark.parametrize("array_min", [1 << 30, 1], ids=["dict", "arrays"])
def test_read_order_is_by_pack_then_offset_unlisted_last_ties_as_given(array_min, monkeypatch):
    monkeypatch.setattr(packindex, "ARRAY_MIN", array_min)
    rng = random.Random(11)
    shared = os.urandom(8)  # ids sharing the first 8 bytes the arrays search by
    ids = [os.urandom(32) for _ in range(2000)] + [shared + os.urandom(24) for _ in range(5)] + [bytes(32)]
    parts = [(slot, b"".join(REC.pack(oid, rng.randrange(1 << 40), 100) for oid in rng.sample(ids, 700)))
             for slot in range(4)]
    index = PackIndex()
    index.load(parts)
    index[ids[0]] = packed(9, 5, 100)  # added after the load: it wins
    absent = [os.urandom(32) for _ in range(20)] + [shared + os.urandom(24)]
    queries = rng.sample(ids, 1500) + absent + absent[:3]  # some asked twice: ties keep their order
    rng.shuffle(queries)
    last = 1 << 256
    values = [index.get(q) for q in queries]
    keys = [last if v is None else v for v in values]  # what packs.read_order sorted by before
    expected = [queries[i] for i in sorted(range(len(queries)), key=keys.__getitem__)]
    assert index.read_order(queries) == expected
    assert sorted(index.read_order(queries)) == sorted(queries) and index.read_order([]) == []
