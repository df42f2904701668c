"""``staging.Staged``: what a fetch received waits on disk, not in memory, until it lands."""

from __future__ import annotations

import os

import pytest

from casreg.errors import CasregError
from casreg.objects.encoding import COMMIT, MANIFEST, TREE
from casreg.remotes.staging import Staged


def test_staged_objects_come_back_by_kind_in_the_order_added_and_leave_no_file(tmp_path):
    items = [(i.to_bytes(32, "big"), bytes([kind]) + b"v%d" % i * (i % 7 + 1))
             for i, kind in enumerate([MANIFEST, TREE, MANIFEST, COMMIT, TREE, MANIFEST] * 500)]
    with Staged(str(tmp_path)) as staged:
        for oid, value in items:
            staged.add(oid, value)
        assert os.listdir(tmp_path) == []  # unlinked from the start: a crash leaves nothing
        assert (staged.count, staged.bytes) == (len(items), sum(len(v) for _, v in items))
        for kind in (TREE, MANIFEST, COMMIT, TREE):  # passes may repeat, in any order
            assert list(staged.of_kind(kind)) == [(o, v) for o, v in items if v[0] == kind]


def test_staged_refuses_an_add_or_a_second_pass_while_a_pass_reads(tmp_path):
    with Staged(str(tmp_path)) as staged:
        staged.add(b"a" * 32, bytes([TREE]) + b"x")
        staged.add(b"b" * 32, bytes([TREE]) + b"y")
        reading = staged.of_kind(TREE)
        next(reading)
        with pytest.raises(RuntimeError):
            staged.add(b"c" * 32, bytes([TREE]))
        with pytest.raises(RuntimeError):
            next(staged.of_kind(TREE))
        assert [o for o, _ in reading] == [b"b" * 32]
        assert len(list(staged.of_kind(TREE))) == 2  # the pass ended: another may begin


def test_an_add_after_a_pass_that_stopped_early_lands_at_the_end(tmp_path):
    with Staged(str(tmp_path)) as staged:
        for i in range(3):
            staged.add(bytes([i]) * 32, bytes([TREE]) + b"t%d" % i)
        reading = staged.of_kind(TREE)
        next(reading)
        reading.close()  # a pass ended before the end of the file
        staged.add(b"z" * 32, bytes([COMMIT]) + b"c")
        assert [o[:1] for o, _ in staged.of_kind(TREE)] == [b"\x00", b"\x01", b"\x02"]
        assert list(staged.of_kind(COMMIT)) == [(b"z" * 32, bytes([COMMIT]) + b"c")]


def test_a_full_disk_while_staging_is_a_one_line_error_and_closing_adds_none(tmp_path):
    staged = Staged(str(tmp_path))
    staged._file.close()
    staged._file = open("/dev/full", "w+b")  # every write: ENOSPC, as a full disk
    with pytest.raises(CasregError, match="cannot stage fetched objects"):
        for i in range(100_000):  # past the buffer: the write reaches the disk
            staged.add(i.to_bytes(32, "big"), bytes([MANIFEST]) + b"m" * 64)
    staged.close()  # what was left unwritten goes without a second error
