"""verify finds exactly what is missing or corrupt; gc never drops what a ref reaches."""
import os

import pytest

from casreg.errors import NotFound
from casreg.objects.encoding import COMMIT, MANIFEST, TREE
from tests.helpers import damage, random_bytes, run_cli, write_file


def _chunk_ids(repo, ref):
    with repo.db.read() as txn:
        commit = repo.objects.load(txn, repo.resolve(ref), COMMIT)
        tree = repo.objects.load(txn, commit.tree, TREE)
        manifest = repo.objects.load(txn, tree.entries[0].id, MANIFEST)
        return [cid for cid, _ in manifest.chunks]


def test_clean_store_verifies(repo, tmp_path):
    repo.commit(write_file(tmp_path / "s" / "w", random_bytes(1 << 20)), "m/v1")
    assert repo.verify() == []
    assert repo.verify(full=True) == []


def test_flipped_byte_in_a_chunk_is_found_by_full_verify_and_on_checkout(repo, tmp_path):
    repo.commit(write_file(tmp_path / "s" / "w", random_bytes(1 << 20)), "m/v1")
    victim = _chunk_ids(repo, "m/v1")[3]

    def flip(value):
        value[len(value) // 2] ^= 0x01
    damage(repo, victim, flip)
    assert repo.verify() == []  # presence only
    problems = repo.verify(full=True)
    assert [(p["id"], p["kind"]) for p in problems] == [(victim.hex(), "chunk")]
    assert problems[0]["problem"].startswith("corrupt")
    with pytest.raises(Exception, match=r"^w: .*does not match its hash"):  # names the damaged file
        repo.checkout("m/v1", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_stats_counts_a_chunk_with_a_damaged_header_instead_of_failing(repo, tmp_path):
    text = b"".join(b"line %d of a training log\n" % i for i in range(200_000))
    repo.commit(write_file(tmp_path / "s" / "log.txt", text), "m/v1")
    victim = _chunk_ids(repo, "m/v1")[2]

    def break_magic(value):
        assert value[1] == 1  # a zstd chunk: its frame starts after the kind and codec bytes
        value[2:6] = b"XXXX"
    damage(repo, victim, break_magic)
    full = repo.stats(full=True)  # the counters counted it whole: --full reads it
    assert full["damaged_chunks"] == 1 and full["counters_match"] is False
    proc = run_cli("--store", repo.path, "stats", "--full")
    assert proc.returncode == 0 and b"damaged chunks:    1" in proc.stdout and b"counters:          differ" in proc.stdout
    assert [p["id"] for p in repo.verify(full=True)] == [victim.hex()]


def test_deleted_object_is_reported_missing_with_its_id(repo, tmp_path):
    repo.commit(write_file(tmp_path / "s" / "w", random_bytes(1 << 20)), "m/v1")
    victim = _chunk_ids(repo, "m/v1")[0]
    damage(repo, victim)
    problems = repo.verify()
    assert problems == [{"id": victim.hex(), "kind": "chunk", "problem": "missing"}]


def test_verify_cli_exits_non_zero_and_names_the_object(repo, tmp_path):
    repo.commit(write_file(tmp_path / "s" / "w", random_bytes(1 << 20)), "m/v1")
    victim = _chunk_ids(repo, "m/v1")[1]
    damage(repo, victim)
    proc = run_cli("--store", repo.path, "verify", "--full")
    assert proc.returncode == 1
    assert f"missing: chunk {victim.hex()}" in proc.stdout.decode()


def test_gc_keeps_everything_reachable_and_drops_the_rest(repo, tmp_path):
    keep = random_bytes(2 << 20, "keep")
    drop = random_bytes(2 << 20, "drop")
    repo.commit(write_file(tmp_path / "a" / "w", keep), "m/keep")
    repo.commit(write_file(tmp_path / "b" / "w", keep[:1 << 20]), "m/child", parents=["m/keep"])
    repo.commit(write_file(tmp_path / "c" / "w", drop), "m/drop")
    before = repo.stats()["objects"]
    dry = repo.gc(dry_run=True, prune="now")
    assert dry["deleted_objects"] == 0
    repo.delete_ref("m/drop")
    dry = repo.gc(dry_run=True, prune="now")
    assert dry["deleted_objects"] > 20 and repo.stats()["objects"] == before  # dry run deletes nothing
    done = repo.gc(prune="now")
    assert done["deleted_objects"] == dry["deleted_objects"]
    assert repo.verify(full=True) == []
    repo.checkout("m/keep", str(tmp_path / "out"))
    assert (tmp_path / "out" / "w").read_bytes() == keep
    repo.delete_ref("m/keep")  # still reachable as m/child's parent
    repo.gc(prune="now")
    assert repo.verify(full=True) == []
    repo.checkout(repo.log("m/child")[-1][0].hex(), str(tmp_path / "out2"))
    assert (tmp_path / "out2" / "w").read_bytes() == keep


def test_gc_keeps_what_the_reflog_reached_for_its_grace_period(tmp_path):
    """A version replaced with --force or deleted stays restorable until the grace period ends
    (issue 11: the next gc deleted it at once)."""
    from casreg.registry import Registry
    repo = Registry.init(str(tmp_path / "store"))
    old = repo.commit(write_file(tmp_path / "a" / "w", random_bytes(1 << 20, "old")), "m/v").id
    repo.commit(write_file(tmp_path / "b" / "w", random_bytes(1 << 20, "new")), "m/v", force=True)
    repo.commit(write_file(tmp_path / "c" / "w", random_bytes(1 << 20, "gone")), "m/gone")
    repo.delete_ref("m/gone")
    assert repo.gc()["deleted_objects"] == 0, "within 14 days nothing the reflog names goes"
    repo.checkout(old.hex(), str(tmp_path / "out"))
    assert (tmp_path / "out" / "w").read_bytes() == random_bytes(1 << 20, "old")
    repo.restore_version("m/gone")
    repo.delete_version("m/gone")
    assert repo.gc(prune="1w")["deleted_objects"] == 0
    dropped = repo.gc(prune="now")
    assert dropped["deleted_objects"] >= 2 * 3 + 2 * 8  # two versions: commit, tree, manifest, 1 MiB of chunks
    with pytest.raises(NotFound):
        repo.read_commit(old)
    assert repo.verify(full=True) == []
    repo.close()


def test_gc_grace_is_a_store_setting(repo, tmp_path):
    from casreg.errors import InvalidInput
    repo.commit(write_file(tmp_path / "a" / "w", b"x" * 100), "m/v")
    repo.delete_ref("m/v")
    with pytest.raises(InvalidInput, match="not a duration"):
        repo.set_gc_grace("fortnight")
    repo.set_gc_grace("now")
    assert repo.gc_grace == "now"
    assert repo.gc()["deleted_objects"] == 4  # commit, tree, manifest, chunk


def test_annotations_live_as_long_as_their_version(repo, tmp_path):
    v = repo.commit(write_file(tmp_path / "a" / "w", b"x" * 100), "m/v").id
    repo.set_meta("m/v", {"note": "kept"})
    assert repo.gc(prune="now")["deleted_objects"] == 0
    assert repo.metadata(v.hex()) == {"note": "kept"}
    repo.delete_ref("m/v")
    repo.gc(prune="now")
    assert [name for name, _ in repo.list_refs()] == [], "the annotation of a version gone goes too"
    assert repo.verify(full=True) == []


def test_gc_gives_the_space_back(tmp_path):
    """Issue 16: after gc deleted everything, the LMDB file stayed at 177 MB."""
    from casreg.repo import Repository
    repo = Repository.init(str(tmp_path / "store"))
    repo.commit(write_file(tmp_path / "a" / "w", random_bytes(24 << 20, "space")), "m/v")
    repo.delete_ref("m/v")
    from casreg.db import OPEN_LOCK, _hold_shared
    held = _hold_shared(os.path.join(repo.path, OPEN_LOCK))  # as another process that has it open
    result = repo.gc(prune="now")
    big = result["file_bytes_before"]
    assert big > 24 << 20
    assert result["compaction_skipped"] and result["file_bytes_after"] >= big
    os.close(held)
    result = repo.gc(prune="now", compact=True)
    assert result["compacted"] and result["file_bytes_after"] < 1 << 20
    assert repo.stats()["objects"]["commit"] == 0 and repo.verify(full=True) == []
    repo.commit(write_file(tmp_path / "b" / "w", b"after"), "m/w")  # the swapped-in file works
    repo.close()
    with Repository(str(tmp_path / "store")) as again:
        assert again.resolve("m/w") and not [n for n in os.listdir(again.path) if n.startswith(".compact-")]
