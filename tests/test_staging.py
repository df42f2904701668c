"""``staging.Staged``: what a fetch received waits on disk, not in memory, until it lands."""

from __future__ import annotations

import os

import pytest

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
