"""Object counters and version summaries: kept as objects land and leave, equal to a full count,
and read in place of walking every object or every tree (stats, versions, models, browse)."""

import json
import os

import pytest

from casreg.errors import Corrupt
from casreg.objects.summary import COUNTERS_KEY, SUMMARY_PREFIX
from casreg.registry import Registry
from casreg.remotes import ops
from casreg.repo import Repository
from tests.helpers import random_bytes, run_cli, write_file

COUNTED = ("objects", "stored_bytes", "stored_chunk_bytes", "stored_bytes_by_codec", "unique_chunk_bytes",
           "damaged_chunks", "refs", "versions", "logical_bytes", "dedup_ratio", "compression_ratio", "total_ratio")


def _same_as_a_walk(repo) -> dict:
    fast, walked = repo.stats(), repo.stats(full=True)
    assert fast["counted"] == "counters" and walked["counted"] == "walk" and walked["counters_match"]
    assert {k: fast[k] for k in COUNTED} == {k: walked[k] for k in COUNTED}
    with repo.db.read() as txn:
        assert repo.objects.counters(txn) == repo.objects.count_stored(txn)
    return fast


def _forget(repo, prefix: bytes) -> None:
    """Make the store look as one written before counters and summaries."""
    def drop(txn):
        keys = [bytes(k) for k, _ in txn.cursor(db=repo.objects.meta) if bytes(k).startswith(prefix)]
        for key in keys:
            txn.delete(key, db=repo.objects.meta)
    repo.db.write(drop)


def _meta_entries(path: str) -> int:
    with Repository(path, readonly=True) as repo, repo.db.read() as txn:
        return txn.stat(repo.objects.meta)["entries"]


@pytest.mark.parametrize("codec_name", ["zstd", "delta"])
def test_counters_equal_a_full_count_through_commits_deletes_and_gc(tmp_path, codec_name):
    repo = Repository.init(str(tmp_path / "store"), codec_name=codec_name)
    data = random_bytes(3 << 20, "w")
    repo.commit(write_file(tmp_path / "a" / "w.bin", data), "models/m/v1")
    repo.commit(write_file(tmp_path / "b" / "w.bin", data[:1 << 20] + b"x" * 4096 + data[1 << 20:]), "models/m/v2",
                parents=["models/m/v1"])
    repo.commit(write_file(tmp_path / "c" / "w.bin", random_bytes(1 << 20, "drop")), "models/m/drop")
    repo.set_meta("models/m/v1", {"stage": "prod"})  # an annotation commit: counted as an object, no version
    first = _same_as_a_walk(repo)
    assert first["versions"] == 3 and first["objects"]["commit"] == 4
    assert first["logical_bytes"] == 2 * len(data) + 4096 + (1 << 20)
    repo.delete_ref("models/m/drop")
    kept = _same_as_a_walk(repo)  # the reflog keeps the version's objects: the counts stay
    assert kept["versions"] == 2 and kept["objects"] == first["objects"]
    done = repo.gc(prune="now")
    assert done["deleted_objects"] > 0
    after = _same_as_a_walk(repo)
    assert after["stored_bytes"] == first["stored_bytes"] - done["deleted_bytes"]
    repo.close()


def test_a_write_that_fails_leaves_the_counters_as_they_were(repo):
    with repo.db.read() as txn:
        before = repo.objects.counters(txn)
    oid, value = repo.objects.encode(0, b"a chunk that never lands")

    def land_then_fail(txn):
        repo.objects.put_values(txn, [(oid, value)])
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        repo.db.write(land_then_fail)
    with repo.db.read() as txn:
        assert not repo.objects.has(txn, oid) and repo.objects.counters(txn) == before


def test_a_store_without_counters_is_walked_until_stats_full_starts_them(repo, tmp_path):
    repo.commit(write_file(tmp_path / "s" / "w", random_bytes(1 << 20)), "m/v1")
    truth = repo.stats(full=True)
    _forget(repo, COUNTERS_KEY)
    repo.commit(write_file(tmp_path / "t" / "w", random_bytes(1 << 20, "2")), "m/v2")  # nothing to update
    with repo.db.read() as txn:
        assert repo.objects.counters(txn) is None
    proc = run_cli("--store", repo.path, "stats", "--json", check=0)
    slow = json.loads(proc.stdout)
    assert slow["counted"] == "walk" and slow["versions"] == 2 and slow["objects"]["commit"] == 2
    assert b"`casreg stats --full` once starts them" in proc.stderr
    assert slow["stored_bytes"] > truth["stored_bytes"]
    run_cli("--store", repo.path, "stats", "--full", check=0)
    fast = json.loads(run_cli("--store", repo.path, "stats", "--json", check=0).stdout)
    assert fast["counted"] == "counters" and {k: fast[k] for k in COUNTED} == {k: slow[k] for k in COUNTED}


def test_stats_full_counts_what_the_refs_reach(repo, tmp_path):
    repo.commit(write_file(tmp_path / "s" / "w", random_bytes(1 << 20)), "m/v1")
    repo.commit(write_file(tmp_path / "t" / "w", random_bytes(1 << 20, "gone")), "m/gone")
    repo.delete_ref("m/gone")
    full = repo.stats(full=True)
    assert full["reachable_objects"]["commit"] == 1 and full["objects"]["commit"] == 2
    assert full["reachable_objects"]["chunk"] < full["objects"]["chunk"]
    assert b"reachable:" in run_cli("--store", repo.path, "stats", "--full", check=0).stdout


def _nested(root):
    write_file(root / "weights" / "a.bin", b"a" * 1000)
    write_file(root / "weights" / "deep" / "b.bin", b"b" * 500)
    write_file(root / "config.json", b"{}")
    os.symlink("config.json", root / "link.json")
    return str(root)


def test_a_summary_is_written_at_commit_and_read_by_versions_models_and_browse(tmp_path):
    reg = Registry.init(str(tmp_path / "store"))
    cid = reg.commit(_nested(tmp_path / "src"), "models/m/v1", message="first").id
    with reg.db.read() as txn:
        summary = reg.objects.summary(txn, cid)
        assert txn.get(SUMMARY_PREFIX + cid, db=reg.objects.meta) is not None
    assert (summary.files, summary.logical_bytes, summary.parents) == (3, 1502, [])
    assert [r["size"] for r in reg.versions("m")] == [1502]
    assert reg.models()[0]["logical_bytes"] == 1502
    detail = reg.version_detail("models/m/v1")
    assert detail["files"] == 3 == len([f for f in reg.ls("models/m/v1") if f["kind"] == "file"])
    reg.close()


def test_versions_stored_before_summaries_read_their_trees_and_write_nothing(tmp_path):
    reg = Registry.init(str(tmp_path / "store"))
    reg.commit(_nested(tmp_path / "src"), "models/m/v1")
    write_file(tmp_path / "src" / "more.bin", b"m" * 10)
    reg.commit(str(tmp_path / "src"), "models/m/v2")
    with_summaries = (reg.versions("m"), reg.models(), {k: reg.stats()[k] for k in COUNTED})
    _forget(reg, SUMMARY_PREFIX)
    reg.close()
    entries = _meta_entries(str(tmp_path / "store"))
    with Registry(str(tmp_path / "store"), readonly=True) as old:
        assert (old.versions("m"), old.models(), {k: old.stats()[k] for k in COUNTED}) == with_summaries
        assert old.version_detail("models/m/v2")["files"] == 4
    listed = run_cli("--store", tmp_path / "store", "versions", "m", "--json", check=0)
    assert [r["size"] for r in json.loads(listed.stdout)] == [1502, 1512]
    assert _meta_entries(str(tmp_path / "store")) == entries  # read-only commands wrote nothing back


def test_a_damaged_summary_is_reported_not_believed(tmp_path):
    reg = Registry.init(str(tmp_path / "store"))
    cid = reg.commit(_nested(tmp_path / "src"), "models/m/v1").id
    reg.db.write(lambda txn: txn.put(SUMMARY_PREFIX + cid, b"\x01short", db=reg.objects.meta))
    with pytest.raises(Corrupt, match="version summary"):
        reg.versions("m")
    reg.close()
    proc = run_cli("--store", tmp_path / "store", "versions", "m")
    assert proc.returncode == Corrupt.exit_code and b"Traceback" not in proc.stderr


def test_fetched_versions_get_their_summaries_as_they_land(tmp_path):
    site = Repository.init(str(tmp_path / "site"))
    ops.config(site).add("hub", f"file://{tmp_path / 'hub'}")
    Repository.init(str(tmp_path / "hub")).close()
    cid = site.commit(_nested(tmp_path / "src"), "models/m/v1").id
    ops.push_refs(site, "hub", ["models/m/v1"])
    site.close()
    with Repository(str(tmp_path / "hub")) as hub, hub.db.read() as txn:
        assert txn.get(SUMMARY_PREFIX + cid, db=hub.objects.meta) is not None  # landed by a push
        assert hub.objects.summary(txn, cid).files == 3
    with Repository(str(tmp_path / "hub")) as hub:
        _same_as_a_walk(hub)


def test_listings_print_text_as_it_is(repo, tmp_path):
    repo.commit(write_file(tmp_path / "m" / "w", b"w"), "models/m/v1", message="[bold]fix[/bold] :smile:")
    out = run_cli("--store", repo.path, "versions", "m", check=0).stdout.decode()
    header, row = out.splitlines()
    assert header.split() == ["VERSION", "STATE", "DATE", "AUTHOR", "SIZE", "TAGS", "MESSAGE"]
    assert row.startswith("v1") and row.endswith("[bold]fix[/bold] :smile:")


@pytest.mark.parametrize("parents,meta", [([], {}), ([b"p" * 32], {"state": "ARCHIVED"}),
                                          ([b"a" * 32, b"b" * 32], {"state": "LIVE"})])
def test_a_listing_row_reads_what_the_summary_holds(parents, meta):
    from casreg.objects.summary import Summary, listed
    value = Summary(parents, 12345, 7, 1_700_000_000, "ann@x", "fine-tune \u00e9", meta).encode()
    assert listed(value) == (1_700_000_000, "ann@x", "fine-tune \u00e9", 12345, meta.get("state", "LIVE"))
    with pytest.raises(Corrupt, match="version summary"):
        listed(value[:-1])


def test_versions_are_listed_in_version_order_whatever_their_ids(tmp_path):
    reg = Registry.init(str(tmp_path / "store"))
    names = [f"v{i:02d}" for i in range(12)]
    for name in names:
        write_file(tmp_path / "src" / "w.bin", name.encode() * 100)
        reg.commit(str(tmp_path / "src"), f"models/m/{name}")
    rows = reg.versions("m")
    assert [r["version"] for r in rows] == names
    assert sorted(r["id"] for r in rows) != [r["id"] for r in rows], "ids in another order than names"
    with reg.db.read() as txn:
        for r in rows:
            assert reg.objects.summary(txn, bytes.fromhex(r["id"])).logical_bytes == r["size"]
    reg.close()


def test_a_summary_holds_one_tree_at_a_time_however_wide_the_version():
    """summarize loads a directory's trees as their turn comes: a version of 3x10^5 files in 300
    directories held every subtree at once (+100 MB in the remote's store during a push)."""
    import gc
    import weakref

    from casreg.objects.encoding import DIR, FILE, Commit, Tree, TreeEntry
    from casreg.objects.summary import summarize

    def entry(name, kind, size, seed):
        return TreeEntry(name, kind, 0o755 if kind == DIR else 0o644, size, id=bytes([seed]) * 32)

    leaves = {bytes([d]) * 32: Tree([entry(f"f{i}", FILE, 10, 200) for i in range(5)]) for d in range(1, 41)}
    root_id = bytes([100]) * 32
    trees = {root_id: Tree([entry(f"d{d:02d}", DIR, 50, d) for d in range(1, 41)]), **leaves}
    alive: list[weakref.ref] = []
    most = 0

    def load_tree(tid):
        nonlocal most
        gc.collect()
        alive[:] = [r for r in alive if r() is not None]
        most = max(most, len(alive))
        tree = Tree(list(trees[tid].entries))  # a new object per load, as decoding makes one
        alive.append(weakref.ref(tree))
        return tree

    summary = summarize(Commit(root_id, [], "a", 1, "m", {}), load_tree)
    assert (summary.files, summary.logical_bytes) == (200, 40 * 50)
    assert most <= 2, f"{most} trees were held at once"
