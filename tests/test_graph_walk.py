"""``graph.walk``, the one graph walk: a level at a time, chunks after every commit, tree and
manifest, each object read once, over the local store (pages released as it goes) and a remote."""

from __future__ import annotations

import pytest

from casreg.db import RELEASE_EVERY
from casreg.objects import graph
from casreg.objects.encoding import CHUNK, COMMIT
from casreg.remotes import ops
from casreg.remotes.gc import collect
from casreg.remotes.sync import verify_remote
from casreg.repo import Repository
from tests.helpers import random_bytes, write_file
from tests.test_deltas import Series, _version


def _nested_history(tmp_path, repo: Repository, versions: int = 3) -> None:
    """``versions`` versions of one model whose files sit at three depths."""
    root = tmp_path / "src"
    for i in range(versions):
        write_file(root / "a.bin", random_bytes(150_000, f"a{i}"))
        write_file(root / "sub" / "b.bin", random_bytes(150_000, f"b{i % 2}"))
        write_file(root / "sub" / "deep" / "c.bin", random_bytes(150_000, f"c{i}"))
        repo.commit(str(root), "m/model", message=f"v{i}")


def _levels(repo: Repository, txn) -> tuple[dict[bytes, int], list[dict[bytes, int]]]:
    """(what the local walk from the refs reaches, each level its loader was given)."""
    load = graph.local_loader(repo.objects, txn)
    levels: list[dict[bytes, int]] = []

    def recording(level):
        levels.append(dict(level))
        yield from load(level)
    return graph.walk(repo._roots(txn), recording), levels


def test_the_local_walk_reads_whole_levels_and_all_chunks_in_one_level_last(tmp_path):
    repo = Repository.init(str(tmp_path / "store"))
    _nested_history(tmp_path, repo)
    with repo.db.read() as txn:
        seen, levels = _levels(repo, txn)
        assert seen == graph.reachable(repo.objects, txn, repo._roots(txn))
    kinds = [set(level.values()) for level in levels]
    assert kinds[-1] == {CHUNK} and all(CHUNK not in k for k in kinds[:-1])  # no deltas: one chunk level
    assert sum(len(level) for level in levels) == len(seen)  # each object read once
    assert len(seen) == sum(repo.stats()["objects"].values())  # nothing unreachable was stored
    repo.close()


def test_a_walk_with_leaves_names_chunks_without_reading_or_keeping_them(tmp_path):
    repo = Repository.init(str(tmp_path / "store"))
    _nested_history(tmp_path, repo)
    with repo.db.read() as txn:
        everything = graph.reachable(repo.objects, txn, repo._roots(txn))
        load = graph.local_loader(repo.objects, txn)
        levels: list[dict[bytes, int]] = []

        def recording(level):
            levels.append(dict(level))
            yield from load(level)
        leaves: set[bytes] = set()
        seen = graph.walk(repo._roots(txn), recording, leaves=leaves)
    assert leaves == {oid for oid, kind in everything.items() if kind == CHUNK} and leaves
    assert seen == {oid: kind for oid, kind in everything.items() if kind != CHUNK}
    assert all(CHUNK not in level.values() for level in levels)  # no chunk was read
    repo.close()


def test_the_local_walk_releases_mapped_pages_as_it_goes(tmp_path):
    """Each lookup maps its page and those around it; the walk drops the mappings every RELEASE_EVERY
    lookups, so verify, gc and stats stay flat in RSS however large the graph."""
    repo = Repository.init(str(tmp_path / "store"))
    _nested_history(tmp_path, repo, versions=12)
    released = 0
    release = repo.db.release_pages

    def counting():
        nonlocal released
        released += 1
        release()
    repo.db.release_pages = counting  # type: ignore[method-assign]
    with repo.db.read() as txn:
        seen = graph.reachable(repo.objects, txn, repo._roots(txn))
    assert len(seen) > 2 * RELEASE_EVERY
    assert released >= len(seen) // RELEASE_EVERY
    repo.close()


@pytest.mark.parametrize("remote", ["file", "redis"], indirect=True)
def test_gc_and_verify_remote_read_each_object_once_delta_bases_too(remote, tmp_path):
    """Versions stored as deltas against one whose ref is gone: its chunks are reached only as
    delta bases. gc --remote's mark and verify --remote --full read them with the deltas, once."""
    a = Repository.init(str(tmp_path / "a" / ".casreg"), codec_name="delta")
    ops.config(a).add("origin", remote.url)
    s = Series()
    for i in range(3):
        a.commit(_version(tmp_path, f"v{i}", s.file()), f"m/v{i}")
        ops.push_refs(a, "origin", [f"m/v{i}"])  # v0 first: v1 and v2 cross as deltas against it
        s.step()
    ops.delete_remote_ref(a, "origin", "m/v0")
    be = remote.backend()
    try:
        received = be.traffic.objects_received
        result = collect(be, grace="now", dry_run=True)
        assert be.traffic.objects_received - received == result.reachable_objects
        assert result.deletable_objects > 0  # v0's commit, tree and manifests: its chunks are bases
        received = be.traffic.objects_received
        assert verify_remote(be, full=True) == []
        assert be.traffic.objects_received - received == result.reachable_objects
        with a.db.read() as txn:
            local = graph.reachable(a.objects, txn, [(a.resolve(f"m/v{i}"), COMMIT) for i in (1, 2)])
        assert result.reachable_objects == len(local)
    finally:
        be.close()
    a.close()


@pytest.mark.parametrize("remote", ["redis"], indirect=True)
def test_verify_remote_names_a_delta_base_whose_bytes_are_wrong(remote, tmp_path):
    """A base read beside its deltas is hashed on its own: a remote whose base decodes, but to
    other bytes, is named in the problem of the delta built on it (and is not taken as checked)."""
    import zstandard

    from casreg.objects import codec, deltaformat
    from tests.test_deltas import _codecs_of
    a = Repository.init(str(tmp_path / "a" / ".casreg"), codec_name="delta")
    ops.config(a).add("origin", remote.url)
    s = Series()
    for i in range(2):
        a.commit(_version(tmp_path, f"v{i}", s.file()), f"m/v{i}")
        ops.push_refs(a, "origin", [f"m/v{i}"])
        s.step()
    ops.delete_remote_ref(a, "origin", "m/v0")  # v0's chunks are now reached only as bases
    delta_id, _, payload = next(c for c in _codecs_of(a, "m/v1") if c[1] in codec.DELTAS)
    base = deltaformat.base_ids(payload)[0]
    with a.db.read() as txn:
        length = len(a.objects.read(txn, base))
    remote.delete(base)
    be = remote.backend()
    try:
        be.put_many([(base, bytes((CHUNK, codec.ZSTD)) + zstandard.ZstdCompressor().compress(bytes(length)))])
        problems = {p["id"]: p["problem"] for p in verify_remote(be, full=True)}
    finally:
        be.close()
    assert base.hex() in problems.get(delta_id.hex(), ""), problems
    a.close()
