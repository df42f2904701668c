"""``listing.Listing``: a gc's view of every stored copy, in columns sorted by id."""

from __future__ import annotations

import os
import random

from casreg.remotes.base import StoredObject
from casreg.remotes.listing import Listing


def test_a_listing_gives_back_every_copy_grouped_by_id_in_bytes_order():
    rng = random.Random(7)
    ids = [os.urandom(32) for _ in range(300)] + [b"\x00" * 32, b"\xff" * 32, b"\x01" * 31 + b"\x00"]
    copies = []
    for n, oid in enumerate(ids):
        for k in range(rng.choice([1, 1, 2, 3])):  # COS/S3: an id in several packs
            copies.append(StoredObject(oid, n * 10 + k, 1000.0 + n, None if k % 2 == 0 else 2000.0 + k, f"pack{k}"))
    rng.shuffle(copies)
    listing = Listing(copies)
    assert len(listing) == len(copies) and listing.total_bytes == sum(o.size for o in copies)
    groups = list(listing.groups())
    assert [oid for oid, _ in groups] == sorted(ids)
    for oid, positions in groups:
        mine = [o for o in copies if o.id == oid]  # in listing order
        assert [listing.item(i) for i in positions] == mine
        assert [listing.is_condemned(i) for i in positions] == [o.condemned is not None for o in mine]
    assert all(oid in listing for oid in ids)
    assert os.urandom(32) not in listing and b"short" not in listing and b"\x01" * 32 not in listing


def test_an_empty_listing_holds_nothing():
    listing = Listing(iter(()))
    assert len(listing) == 0 and listing.total_bytes == 0 and list(listing.groups()) == []
    assert b"\x00" * 32 not in listing


def test_a_key_that_is_no_object_id_is_left_out_of_the_listing_with_a_warning(caplog):
    good = StoredObject(b"g" * 32, 5, 1.0)
    with caplog.at_level("WARNING", logger="casreg"):
        listing = Listing([StoredObject(b"stray", 3, 1.0), good, StoredObject(b"x" * 40, 3, 1.0)], "redis://r")
    assert [listing.item(i) for i in range(len(listing))] == [good]
    assert "redis://r: 2 listed key(s) are not object ids" in caplog.text
