"""``gc --remote`` on every kind of real remote: space comes back, live versions stay whole,
what a push has uploaded but not yet named survives the grace period, ``--dry-run`` changes nothing."""

from __future__ import annotations

import json
import os
import time

import pytest

from casreg.remotes import ops
from casreg.remotes.gc import collect
from tests.helpers import new_store, random_bytes, run_cli, tree_files, write_file

pytestmark = pytest.mark.slow  # real servers

VERSIONS = 4
SIZE = 1 << 20


def server_bytes(remote) -> int:
    """What the remote occupies, as its server counts it."""
    if remote.kind == "file":
        return os.path.getsize(os.path.join(remote.url[len("file://"):], "data.mdb"))
    if remote.kind == "redis":
        return sum(remote.r.memory_usage(k) or 0 for k in remote.r.scan_iter(match=remote.prefix + "*", count=1000))
    if remote.kind == "mysql":
        with remote.conn.cursor() as cur:
            cur.execute(f"ANALYZE TABLE {remote.prefix}objects")
            cur.fetchall()
            cur.execute("SELECT data_length + index_length FROM information_schema.TABLES "
                        "WHERE table_schema = DATABASE() AND table_name = %s", (f"{remote.prefix}objects",))
            return int(cur.fetchone()[0])
    be = remote.backend()
    try:
        return sum(info.size for folder in ("packs", "index") for info in be.blobs.list_info(folder).values())
    finally:
        be.close()


def _versions(tmp_path, remote):
    """A store with VERSIONS named versions of one model pushed to ``remote``: (store, {ref: source})."""
    store = new_store(tmp_path, "a", remote)
    sources = {}
    for i in range(VERSIONS):
        root = tmp_path / "src" / f"v{i}"
        write_file(root / "model.safetensors", random_bytes(SIZE, f"weights-{i}"))
        write_file(root / "config.json", b'{"hidden": 384}')
        store.commit(str(root), f"models/m/v{i}")
        sources[f"models/m/v{i}"] = root
        ops.push_refs(store, "origin", [f"models/m/v{i}"])  # a push each (COS/S3: a pack each)
    return store, sources


def _all_live_fetch_whole(tmp_path, remote, sources: dict, name: str) -> None:
    clone = ops.clone(remote.url, str(tmp_path / name))
    try:
        assert sorted(r for r in ops.ls_remote(clone, "origin") if r.startswith("models/")) == sorted(sources)
        for ref, root in sources.items():
            out = tmp_path / name / "out" / ref.rpartition("/")[2]
            clone.checkout(ref, str(out))
            assert tree_files(out) == tree_files(root), ref
        assert ops.verify(clone, "origin", full=True) == []
    finally:
        clone.close()


def test_gc_remote_gives_the_space_of_deleted_versions_back(remote, tmp_path):
    store, sources = _versions(tmp_path, remote)
    for i in range(VERSIONS // 2):
        ops.delete_remote_ref(store, "origin", f"models/m/v{i}")
        del sources[f"models/m/v{i}"]
    before = server_bytes(remote)
    result = store_gc(store, grace="now")
    assert result.deleted_objects > 0 and result.deleted_bytes >= (VERSIONS // 2) * SIZE * 0.9
    after = server_bytes(remote)
    assert after < before - (VERSIONS // 2) * SIZE * 0.5, (before, after)
    _all_live_fetch_whole(tmp_path, remote, sources, "b")
    again = store_gc(store, grace="now")
    assert again.deleted_objects == 0 and again.condemned_objects == 0, "nothing more to take"
    store.close()


def store_gc(store, **options):
    return ops.gc_remote(store, "origin", **options)  # what Registry.gc_remote calls


def test_what_a_push_uploaded_but_has_not_named_survives_the_grace_period(remote, tmp_path):
    store, sources = _versions(tmp_path, remote)
    ops.delete_remote_ref(store, "origin", "models/m/v0")
    unnamed = [(bytes([i]) * 32, b"\x01\x00" + random_bytes(1000, f"loose-{i}")) for i in range(3)]
    be = remote.backend()
    try:
        be.put_many(unnamed)  # a push that has not moved its ref yet
        result = collect(be, grace="1h")
        assert result.deleted_objects == 0 and result.condemned_objects == 0
        assert result.young_objects >= len(unnamed)
        assert be.has_many([oid for oid, _ in unnamed]) == {oid for oid, _ in unnamed}
    finally:
        be.close()
    _all_live_fetch_whole(tmp_path, remote, {k: v for k, v in sources.items() if k != "models/m/v0"}, "b")
    store.close()


def test_dry_run_deletes_nothing(remote, tmp_path):
    store, sources = _versions(tmp_path, remote)
    ops.delete_remote_ref(store, "origin", "models/m/v0")
    be = remote.backend()
    listed = sorted((o.id, o.where, o.condemned) for o in be.list_objects())
    be.close()
    proc = run_cli("gc", "--remote", "origin", "--grace", "now", "--dry-run", "--json",
                   cwd=os.path.dirname(store.path), check=0)
    report = json.loads(proc.stdout)
    assert report["dry_run"] and report["deletable_objects"] > 0 and report["deleted_objects"] == 0
    be = remote.backend()
    assert sorted((o.id, o.where, o.condemned) for o in be.list_objects()) == listed
    be.close()
    store.close()


@pytest.mark.parametrize("kind", ["redis"])
def test_with_a_grace_period_a_gc_condemns_and_a_later_one_deletes(kind, request, tmp_path):
    """The two steps on one backend (the others share the engine; the contract suite checks their
    condemnation): grace 1 s (+ 1 s of clock slack), so the first gc only condemns and the one
    2 s later deletes."""
    from tests.remote_kinds import open_remote
    remote = open_remote(kind, request, tmp_path)
    try:
        store, sources = _versions(tmp_path, remote)
        ops.delete_remote_ref(store, "origin", "models/m/v0")
        del sources["models/m/v0"]
        time.sleep(2.1)  # the deleted version's upload is older than the grace period now
        first = store_gc(store, grace="1s")
        assert first.condemned_objects > 0 and first.deleted_objects == 0
        be = remote.backend()
        refs = ops.ls_remote(store, "origin")
        assert store.resolve("models/m/v0") not in be.has_many([store.resolve("models/m/v0")])
        be.close()
        assert "models/m/v0" not in refs
        time.sleep(2.1)  # its condemnation too
        second = store_gc(store, grace="1s")
        assert second.deleted_objects == first.condemned_objects
        _all_live_fetch_whole(tmp_path, remote, sources, "b")
        store.close()
    finally:
        remote.cleanup()


def test_a_gc_reads_the_listing_into_its_columns_through_the_retrying_wrapper(remote, tmp_path, monkeypatch):
    """``Backend.listing``: retried whole around the columns, never a list of every StoredObject
    first (Retrying.list_objects builds one), and it lists what list_objects does."""
    from casreg.remotes.wrappers import Retrying
    store, _ = _versions(tmp_path, remote)
    ops.delete_remote_ref(store, "origin", "models/m/v0")
    be = remote.backend()
    listed = sorted((o.id, o.size, o.where, o.condemned) for o in be.list_objects())
    listing = be.listing()
    assert sorted((o.id, o.size, o.where, o.condemned) for o in map(listing.item, range(len(listing)))) == listed
    be.close()

    def whole_list(self):
        raise AssertionError("gc read the listing as a list of StoredObject")
    monkeypatch.setattr(Retrying, "list_objects", whole_list)
    result = store_gc(store, grace="now", dry_run=True)
    assert result.stored_objects == len(listed) and result.deletable_objects > 0
    store.close()
