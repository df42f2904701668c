"""COS/S3 pack indexes merged and ref logs snapshotted as they accumulate (issue 15), on SeaweedFS:
a cold reader GETs the merged index (the snapshot) plus the few newer ones, and lists only the
indexes named after the merged index's view; nothing is lost or listed twice when a merge races
a push or a gc's deletion, no ref is stale when a snapshot races a ref move; buckets written
without either (or by casreg before tombstones) still read."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

import blake3
import pytest

from casreg.remotes import packs

pytestmark = pytest.mark.slow  # SeaweedFS


@pytest.fixture(autouse=True, params=["dict", "arrays"])
def index_kind(request, monkeypatch):
    """Every test twice: the object index as a dict (a small remote's) and as sorted arrays (a
    large one's, ``packindex.ARRAY_MIN`` records and more), which every load here then uses."""
    from casreg.remotes import packindex
    if request.param == "arrays":
        monkeypatch.setattr(packindex, "ARRAY_MIN", 1)
    return request.param


@pytest.fixture
def remote_cos(seaweed):
    from tests.remote_kinds import COSRemote
    handle = COSRemote(seaweed)
    yield handle
    handle.cleanup()


def _batch(seed: str, n: int = 3) -> list[tuple[bytes, bytes]]:
    values = [f"{seed}-{i}-".encode() * (40 + i) for i in range(n)]
    return [(blake3.blake3(v).digest(), v) for v in values]


def _put_batches(be, seed: str, count: int = 20) -> list[tuple[bytes, bytes]]:
    """``count`` pushes of one small batch each (one pack and one index per push)."""
    pushed = []
    for i in range(count):
        batch = _batch(f"{seed}-{i}")
        be.put_many(batch)
        pushed += batch
    return pushed


def _cold(remote):
    """A backend that never read the bucket (no cache), and its request count so far."""
    be = remote.backend()
    return be, be.traffic.requests


def _assert_complete(be, items) -> None:
    ids = [oid for oid, _ in items]
    assert be.has_many(ids) == set(ids)
    assert dict(be.get_many(ids)) == dict(items)
    listed = [(o.where, o.id) for o in be.list_objects()]
    assert len(listed) == len(set(listed)), "a copy listed twice"
    assert {oid for _, oid in listed} >= set(ids)


@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_a_cold_reader_after_40_pushes_gets_a_handful_of_indexes(remote):
    writer = remote.backend()
    pushed = []
    for i in range(40):  # one pack + index per push, as sync sends a small version
        batch = _batch(f"push-{i}")
        writer.put_many(batch)
        pushed += batch
    assert writer.blobs.list("merged"), "the writer merged the indexes it saw"
    writer.close()
    be, before = _cold(remote)
    try:
        assert be.has_many([oid for oid, _ in pushed]) == {oid for oid, _ in pushed}
        # LIST merged, GET it, LIST the records, LIST index/ after its view, then only the
        # indexes it does not give
        assert be.traffic.requests - before <= 4 + packs.MERGE_AFTER, be.traffic
        assert not be._full, "the merged index's view was used"
        _assert_complete(be, pushed)
    finally:
        be.close()


def test_a_bucket_without_merged_indexes_still_reads_and_gets_one(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 10_000)  # written as casreg before merged indexes
    old = remote.backend()
    pushed = _put_batches(old, "old")
    assert not old.blobs.list("merged")
    old.close()
    monkeypatch.setattr(packs, "MERGE_AFTER", 4)
    be, before = _cold(remote)
    try:
        _assert_complete(be, pushed)
        assert be.traffic.requests - before >= 20, "no merged index: every pack index read"
        more = _batch("new")
        be.put_many(more)  # a writer that sees 21 unmerged indexes merges them
        pushed += more
        assert len(be.blobs.list("merged")) == 1
    finally:
        be.close()
    again, before = _cold(remote)
    try:
        assert again.has_many([oid for oid, _ in pushed]) == {oid for oid, _ in pushed}
        assert again.traffic.requests - before == 4, again.traffic  # LIST merged, GET it, LIST, LIST
        _assert_complete(again, pushed)
    finally:
        again.close()


def test_merges_racing_pushes_and_a_gc_lose_nothing_and_list_nothing_twice(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)  # every third push merges
    rounds = 15
    setup = remote.backend()
    doomed = _put_batches(setup, "doomed", 8)  # merged, then deleted by a gc while the others push
    doomed_packs = sorted({setup.location(oid)[0] for oid, _ in doomed})
    setup.close()
    pushed: dict[str, list] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def pusher(who: str) -> None:
        be = remote.backend()  # its own instance: each writer merges what it has seen
        try:
            start.wait(timeout=30)
            for i in range(rounds):
                batch = _batch(f"{who}-{i}")
                be.put_many(batch)
                pushed[who] += batch
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            be.close()

    def gc() -> None:
        be = remote.backend()
        try:
            start.wait(timeout=30)
            for pack in doomed_packs:
                be._delete_pack(pack)  # what delete_condemned does with a pack it may delete
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            be.close()

    threads = [threading.Thread(target=pusher, args=(who,)) for who in pushed] + [threading.Thread(target=gc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    everything = pushed["a"] + pushed["b"]
    be, _ = _cold(remote)
    try:
        assert be.blobs.list("merged")
        assert be.has_many([oid for oid, _ in doomed]) == set(), "a deleted pack came back"
        assert not be._full, "read through the merged index's view"
        _assert_complete(be, everything)
        assert len(be._packs_loaded) == 2 * rounds
        assert not set(doomed_packs) & {o.where for o in be.list_objects()}
    finally:
        be.close()


def test_a_gc_deleting_a_merged_pack_is_not_resurrected_by_the_merged_index(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    writer = remote.backend()
    victim = _put_batches(writer, "gone", 6)[0][0]
    writer.has_many([victim])
    pack = writer.location(victim)[0]
    writer._delete_pack(pack)  # as gc --remote does: a tombstone, the index, then the pack
    writer.close()
    be, _ = _cold(remote)
    try:
        assert be.has_many([victim]) == set()
        assert pack not in {o.where for o in be.list_objects()}
    finally:
        be.close()


# -- ref snapshots ---------------------------------------------------------------------------------
def _cid(seed: str) -> bytes:
    return blake3.blake3(seed.encode()).digest()


def test_a_cold_full_refs_reads_the_snapshot_and_the_newer_heads(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "SNAPSHOT_AFTER", 10_000)  # a bucket from before snapshots
    writer = remote.backend()
    truth = {f"models/m/v{i}": _cid(f"v{i}") for i in range(40)}
    for name, target in truth.items():
        assert writer.set_ref_if_equals(name, None, target)
    assert writer.refs() == truth and not writer.blobs.list("refsnap")
    monkeypatch.setattr(packs, "SNAPSHOT_AFTER", 16)
    first, before = _cold(remote)
    assert first.refs() == truth  # reads the 40 heads, then writes a snapshot of them
    assert first.traffic.requests - before >= 40
    assert len(first.blobs.list("refsnap")) == 1
    first.close()
    assert writer.set_ref_if_equals("models/m/v0", truth["models/m/v0"], _cid("v0-next"))
    assert writer.set_ref_if_equals("models/m/v1", truth["models/m/v1"], None)
    truth["models/m/v0"] = _cid("v0-next")
    del truth["models/m/v1"]
    writer.close()
    again, before = _cold(remote)
    try:
        assert again.refs() == truth
        # LIST refs, LIST refsnap, GET the snapshot, GET the two heads written since
        assert again.traffic.requests - before == 5, again.traffic
    finally:
        again.close()


def test_snapshots_racing_ref_moves_never_give_a_stale_ref(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "SNAPSHOT_AFTER", 2)
    names = [f"models/race/v{i}" for i in range(8)]
    final: dict[str, bytes] = {}
    errors: list[BaseException] = []
    done = threading.Event()

    def mover() -> None:
        be = remote.backend()
        try:
            for r in range(6):
                for name in names:
                    old = final.get(name)
                    assert be.set_ref_if_equals(name, old, _cid(f"{name}-{r}"))
                    final[name] = _cid(f"{name}-{r}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()
            be.close()

    def snapshotter() -> None:
        try:
            while not done.is_set():
                be = remote.backend()  # cold each time: reads the newest snapshot, writes the next
                try:
                    seen = be.refs()
                    assert set(seen) <= set(names)
                finally:
                    be.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=mover), threading.Thread(target=snapshotter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    be, _ = _cold(remote)
    try:
        assert be.blobs.list("refsnap"), "snapshots were written while the refs moved"
        assert be.refs() == final
        assert be.refs(names[:3]) == {n: final[n] for n in names[:3]}
    finally:
        be.close()


def test_a_damaged_merged_index_or_snapshot_is_passed_over_with_a_warning(remote_cos, monkeypatch, caplog):
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    monkeypatch.setattr(packs, "SNAPSHOT_AFTER", 2)
    writer = remote.backend()
    pushed, truth = [], {}
    for i in range(6):
        batch = _batch(f"damaged-{i}")
        writer.put_many(batch)
        pushed += batch
        truth[f"models/d/v{i}"] = _cid(f"d{i}")
        assert writer.set_ref_if_equals(f"models/d/v{i}", None, truth[f"models/d/v{i}"])
    assert writer.refs() == truth  # writes a snapshot
    writer.close()
    remote.put_raw("merged/999999999999-junk", b"casreg-mergedindex-1\n{not json")  # claims to cover most
    remote.put_raw("refsnap/9999999999999999-junk", b"junk")
    be, _ = _cold(remote)
    try:
        with caplog.at_level(logging.WARNING, logger="casreg"):
            _assert_complete(be, pushed)
            assert be.refs() == truth
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "merged index 999999999999-junk is damaged" in messages
        assert "ref snapshot 9999999999999999-junk is damaged" in messages
        assert be._merged[0] != "999999999999-junk" and be._merged[1], "the next best merged index was used"
    finally:
        be.close()


def test_a_warm_store_reads_the_merged_index_from_its_cache(remote_cos, monkeypatch, tmp_path):
    from casreg.remotes import open_backend
    remote = remote_cos
    writer = remote.backend()
    pushed = _put_batches(writer, "warm")
    writer.close()
    cache = str(tmp_path / "cache")
    first = open_backend(remote.url, cache_dir=cache)
    before = first.traffic.requests
    assert first.has_many([oid for oid, _ in pushed]) == {oid for oid, _ in pushed}
    assert first._merged[0], "cold: the merged index read"
    assert first.traffic.requests - before <= 4 + 3, first.traffic  # LIST, GET merged, LIST x2, 3 newer
    _assert_complete(first, pushed)
    first.close()
    second = open_backend(remote.url, cache_dir=cache)
    try:
        before = second.traffic.requests
        assert second.has_many([oid for oid, _ in pushed]) == {oid for oid, _ in pushed}
        assert second.traffic.requests - before == 3, second.traffic  # the LISTs alone: the rest cached
        assert second._merged[0] == first._merged[0]
    finally:
        second.close()


def test_writers_warm_from_their_cache_merge_every_few_pushes_not_every_push(remote_cos, tmp_path):
    from casreg.remotes import open_backend
    remote = remote_cos
    cache = str(tmp_path / "cache")
    for i in range(40):  # one backend per push, as each `casreg push` opens one
        be = open_backend(remote.url, cache_dir=cache)
        try:
            be.put_many(_batch(f"each-{i}"))
        finally:
            be.close()
    [merged] = list(remote_cos.backend().blobs.list("merged"))
    every = packs.MERGE_AFTER + 1  # a merge each time that many are uncovered, not on each push
    assert int(merged.partition("-")[0]) == 40 // every * every, merged
    def starts(name: str) -> bytes:
        with open(os.path.join(cache, name), "rb") as f:
            return f.read(len(packs.MERGED_MAGIC))
    assert [starts(n) for n in os.listdir(cache)].count(packs.MERGED_MAGIC) == 1, "the cache keeps one merged index"


# -- merged views and tombstones -------------------------------------------------------------------
def _old_push(remote, batch) -> str:
    """One pack as casreg before tombstones wrote it: named by its hash alone."""
    body = b"".join(v for _, v in batch)
    records, offset = [], 0
    for oid, value in batch:
        records.append(packs._REC.pack(oid, offset, len(value)))
        offset += len(value)
    name = blake3.blake3(body).hexdigest()
    remote.put_raw(f"packs/{name}", body)
    remote.put_raw(f"index/{name}", packs.INDEX_MAGIC + b"".join(records))
    return name


def _old_merged(remote, names: list[str]) -> None:
    """A merged index as casreg before tombstones wrote it: no view."""
    be = remote.backend()
    etags = be.blobs.list("index")
    table = [be.blobs.get(f"index/{n}")[0][len(packs.INDEX_MAGIC):] for n in names]
    header = json.dumps({"packs": [[n, etags[n], len(t) // packs._REC.size] for n, t in zip(names, table)]})
    be.blobs.put(f"merged/{len(names):012d}-old", packs.MERGED_MAGIC + header.encode() + b"\n" + b"".join(table))
    be.close()


def test_a_bucket_from_before_tombstones_reads_and_its_first_writer_moves_it_on(remote_cos):
    remote = remote_cos
    batches = [_batch(f"old-{i}") for i in range(30)]
    names = [_old_push(remote, b) for b in batches]
    _old_merged(remote, names[:25])
    pushed = [item for b in batches for item in b]
    be, before = _cold(remote)
    try:
        _assert_complete(be, pushed)
        assert be._full, "a merged index without a view: every index listed"
        more = _batch("new")
        be.put_many(more)  # 31 packs, the merged index has no view: a writer merges them
        pushed += more
        assert be.blobs.list("index").keys() >= {packs.LAYOUT}, "casreg before tombstones now stops here"
        assert list(be.blobs.list("merged")) != [f"{25:012d}-old"]
    finally:
        be.close()
    again, before = _cold(remote)
    try:
        assert again.has_many([oid for oid, _ in pushed]) == {oid for oid, _ in pushed}
        assert not again._full and again.traffic.requests - before == 4, again.traffic
        _assert_complete(again, pushed)
    finally:
        again.close()


def test_a_cold_reader_lists_only_the_indexes_named_after_the_merged_view(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "MARGIN", 0.0)  # one machine, one clock: no slack needed
    monkeypatch.setattr(packs, "MERGE_AFTER", 4)
    writer = remote.backend()
    early = _put_batches(writer, "early", 15)
    time.sleep(1.2)  # listings give upload times to the second
    late = _put_batches(writer, "late", 15)
    early_packs = {writer.location(oid)[0] for oid, _ in early}
    writer.close()
    be, _ = _cold(remote)
    listed: list[str] = []
    real = be.blobs.list_info

    def spy(folder, starting="", after=""):
        out = real(folder, starting, after)
        listed.extend(out if folder == "index" else ())
        return out
    monkeypatch.setattr(be.blobs, "list_info", spy)
    try:
        assert be.has_many([oid for oid, _ in early + late]) == {oid for oid, _ in early + late}
        assert not be._full
        assert listed and not early_packs & set(listed), "indexes merged before the view were not listed"
        _assert_complete(be, early + late)
    finally:
        be.close()


def test_a_merged_index_written_after_a_gc_deleted_a_pack_does_not_bring_it_back(remote_cos, monkeypatch):
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    writer = remote.backend()
    pushed = _put_batches(writer, "stale", 6)
    [merged] = writer.blobs.list("merged")
    stale = writer.blobs.get(f"merged/{merged}")[0]
    victim = pushed[0][0]
    pack = writer.location(victim)[0]
    writer._delete_pack(pack)  # a gc
    # a writer that loaded before the gc writes its merged index (naming the pack) after it
    writer.blobs.put("merged/999999999999-stale", stale)
    writer.close()
    be, _ = _cold(remote)
    try:
        assert be.has_many([victim]) == set()
        assert not be._full and be._merged[0] == "999999999999-stale"
        rest = [item for item in pushed if item[0] not in {oid for oid, _ in _batch("stale-0")}]
        _assert_complete(be, rest)
        assert pack not in {o.where for o in be.list_objects()}
    finally:
        be.close()


def test_a_pack_named_before_the_merged_view_is_still_read(remote_cos, monkeypatch):
    """A push slower than ``MARGIN`` (or a clock far behind) names its pack before a merged view
    that does not hold it: a reader misses it in ``has_many`` (the object is sent again) but
    ``get_many`` lists every index and finds it."""
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    writer = remote.backend()
    pushed = _put_batches(writer, "view", 6)
    slow = _batch("slow")
    with monkeypatch.context() as m:  # only the clock: MERGE_AFTER stays patched
        m.setattr(packs.time, "time", lambda: 1_000_000.0)  # its name: 1970
        writer._write_pack(slow)
    writer.close()
    be, _ = _cold(remote)
    try:
        ids = [oid for oid, _ in pushed + slow]
        assert be.has_many(ids) == {oid for oid, _ in pushed}
        assert dict(be.get_many(ids)) == dict(pushed + slow)
        assert be._full
    finally:
        be.close()


# -- gc against long-lived writers, skewed clocks, killed gcs and hostile keys -------------------
def _objects_of(be, pack: str) -> list:
    return [o for o in be.list_objects() if o.where == pack]


def test_a_long_lived_writer_pushing_a_condemned_batch_again_gives_it_a_new_name(remote_cos):
    """A gc condemns a batch; the same backend (a server's, long-lived) pushes it again: the new
    pack must not take the condemned pack's name, or the gc deletes the copy the push relied on."""
    remote = remote_cos
    writer = remote.backend()
    batch = _batch("again")
    writer.put_many(batch)
    first = writer.location(batch[0][0])[0]
    gc = remote.backend()
    try:
        doomed = _objects_of(gc, first)
        assert gc.condemn(doomed) == len(batch)
        writer._load_index()  # the writer's next push sees the condemnation
        assert writer.has_many([oid for oid, _ in batch]) == set()
        writer.put_many(batch)  # sent again
        second = writer.location(batch[0][0])[0]
        assert second != first, "the condemned pack's name was given again"
        gc.delete_condemned(doomed, cutoff=time.time() + 3600)
        assert gc.blobs.head(f"packs/{first}") is None, "the condemned pack went"
    finally:
        gc.close()
        writer.close()
    be, _ = _cold(remote)
    try:
        _assert_complete(be, batch)
    finally:
        be.close()


def test_a_killed_gcs_early_tombstone_is_renewed_when_its_deletion_is_finished(remote_cos, monkeypatch):
    """A pusher's clock 300 s ahead names a pack after the gc's tombstone; the gc is killed after
    the tombstone, before the index goes; merges since list past the tombstone but still list the
    index (and keep the pack). The gc that finishes the deletion writes a fresh tombstone, so no
    reader trusting those merged indexes offers the deleted objects."""
    remote = remote_cos
    monkeypatch.setattr(packs, "MARGIN", 0.0)
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    ahead = remote.backend()
    ahead._load_index()
    batch = _batch("ahead")
    real_time = time.time
    with monkeypatch.context() as m:
        m.setattr(packs.time, "time", lambda: real_time() + 300)
        pack = ahead._write_pack(batch)
    ahead.close()
    gc = remote.backend()
    doomed = _objects_of(gc, pack)
    gc.condemn(doomed)
    gc.blobs.put(f"index/{packs._stamp(gc.server_time())}{packs.GONE}{pack}", b"")  # then killed
    gc.close()
    time.sleep(1.2)  # listings give upload times to the second: merges' views are after it
    writer = remote.backend()
    others = _put_batches(writer, "after", 8)
    writer.close()
    finisher = remote.backend()
    finisher.delete_condemned(doomed, cutoff=time.time() + 3600)
    finisher.close()
    assert remote.backend().blobs.head(f"index/{pack}") is None
    be, _ = _cold(remote)
    try:
        assert be.has_many([oid for oid, _ in batch]) == set(), "objects of a deleted pack offered"
        assert not be._full
        _assert_complete(be, others)
    finally:
        be.close()


def test_hostile_tombstones_do_not_make_a_gc_delete_a_live_pack(remote_cos, caplog):
    remote = remote_cos
    writer = remote.backend()
    live = _batch("live")
    writer.put_many(live)
    pack = writer.location(live[0][0])[0]
    writer.close()
    remote.put_raw(f"index/zzzzzzzzzzzzzz{packs.GONE}{pack}", b"")  # not a casreg tombstone
    gc = remote.backend()
    with caplog.at_level(logging.WARNING, logger="casreg"):
        assert gc.has_many([oid for oid, _ in live]) == {oid for oid, _ in live}
        gc.delete_condemned([], cutoff=time.time() + 3600)
        assert gc.blobs.head(f"packs/{pack}") is not None
        # a well-formed tombstone no gc record backs: readers take the pack as gone (and send
        # its objects again), but no gc deletes it
        gc.blobs.put(f"index/{packs._stamp(time.time())}{packs.GONE}{pack}", b"")
        gc.delete_condemned([], cutoff=time.time() + 3600)
        assert gc.blobs.head(f"packs/{pack}") is not None and gc.blobs.head(f"index/{pack}") is not None
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "is not a pack index or tombstone" in messages
    assert "no gc record condemns it; left alone" in messages
    gc.close()


@pytest.mark.parametrize("view", ["NaN", "Infinity", '"inf"', "1e12", "-1e400"])
def test_a_merged_index_with_a_hostile_view_is_not_trusted(remote_cos, monkeypatch, caplog, view):
    """A view that is not a number, or is after the merged index's own upload, would make a
    reader skip the tombstones: the reader warns and lists every index instead."""
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    writer = remote.backend()
    pushed = _put_batches(writer, "view", 6)
    [merged] = writer.blobs.list("merged")
    body = writer.blobs.get(f"merged/{merged}")[0]
    header, _, table = body[len(packs.MERGED_MAGIC):].partition(b"\n")
    meta = json.loads(header)
    victim = pushed[0][0]
    pack = writer.location(victim)[0]
    writer._delete_pack(pack)  # a gc: a tombstone, the index, the pack
    text = json.dumps({"packs": meta["packs"], "view": 0}).replace('"view": 0', f'"view": {view}')
    writer.blobs.put("merged/999999999999-hostile", packs.MERGED_MAGIC + text.encode() + b"\n" + table)
    writer.close()
    be, _ = _cold(remote)
    try:
        with caplog.at_level(logging.WARNING, logger="casreg"):
            assert be.has_many([victim]) == set()
        assert be._full or be._merged[0] != "999999999999-hostile"
        assert "999999999999-hostile" in " ".join(r.getMessage() for r in caplog.records)
        _assert_complete(be, [item for item in pushed if item[0] not in {oid for oid, _ in _batch("view-0")}])
    finally:
        be.close()


def test_a_merged_index_naming_a_bad_pack_or_count_is_passed_over(remote_cos, monkeypatch, caplog):
    remote = remote_cos
    monkeypatch.setattr(packs, "MERGE_AFTER", 2)
    writer = remote.backend()
    pushed = _put_batches(writer, "count", 6)
    [merged] = writer.blobs.list("merged")
    body = writer.blobs.get(f"merged/{merged}")[0]
    header, _, table = body[len(packs.MERGED_MAGIC):].partition(b"\n")
    meta = json.loads(header)
    (p0, e0, n0), (p1, e1, _) = meta["packs"][:2]
    negative = [[p0, e0, n0 + 1], [p1, e1, -1], *meta["packs"][2:]]  # the counts still sum right
    traversal = [["../refs/x", e0, n0], *meta["packs"][1:]]
    for name, bad in (("999999999999-negative", negative), ("999999999998-traversal", traversal)):
        writer.blobs.put(f"merged/{name}", packs.MERGED_MAGIC + json.dumps(
            {"packs": bad, "view": meta["view"]}).encode() + b"\n" + table)
    writer.close()
    be, _ = _cold(remote)
    try:
        with caplog.at_level(logging.WARNING, logger="casreg"):
            _assert_complete(be, pushed)
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "999999999999-negative is damaged" in messages and "999999999998-traversal is damaged" in messages
    finally:
        be.close()


def test_a_pack_missing_beside_its_index_is_damage_not_a_gc(remote_cos):
    """A pack gone while its index stays (and no tombstone names it) is no gc's work: one line
    saying so, not ``PackGone`` retried until the remote is called unreachable."""
    from casreg.errors import RemoteError
    remote = remote_cos
    writer = remote.backend()
    batch = _batch("lost")
    writer.put_many(batch)
    pack = writer.location(batch[0][0])[0]
    writer.blobs.delete(f"packs/{pack}")
    try:
        with pytest.raises(RemoteError, match="missing though its index lists it") as info:
            dict(writer.get_many([oid for oid, _ in batch]))
        assert not isinstance(info.value, packs.PackGone)
        before = writer.traffic.requests
        with pytest.raises(RemoteError, match="lacks object"):
            dict(writer.get_many([blake3.blake3(b"never pushed").digest()]))
        assert writer.traffic.requests == before, "a full listing is not listed again for a miss"
    finally:
        writer.close()


@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_listings_page_and_start_after_a_key(remote):
    """``list_info`` over many pages (COS ``Marker``, S3 ``ContinuationToken`` with ``StartAfter``):
    every key once, those after ``after`` only, those starting with ``starting`` only."""
    be = remote.backend()
    try:
        names = [f"k{i:03d}" for i in range(25)] + [f"m{i:03d}" for i in range(5)]
        for name in names:
            be.blobs.put(f"paging/{name}", name.encode())
        be.blobs.page_keys = 4
        before = be.traffic.requests
        assert sorted(be.blobs.list_info("paging")) == names
        assert be.traffic.requests - before == 8, "30 keys in pages of 4"
        assert sorted(be.blobs.list_info("paging", after="k010")) == names[11:]
        assert sorted(be.blobs.list_info("paging", "k0", after="k017")) == names[18:25]
        assert sorted(be.blobs.list_info("paging", "m")) == names[25:]
    finally:
        be.close()


@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_a_full_listing_is_a_snapshot_get_many_still_finds_what_was_pushed_since(remote):
    """gc --remote lists every object (a full load), then reads the refs and walks them: a push
    landing in between moved a ref onto objects that full load did not have, and the walk
    stopped with "lacks object" (seen once in 6 trials of stress.py's remote-gc-race on COS).
    A miss reloads the index, even after a full load."""
    gc_view, pusher = remote.backend(), remote.backend()
    try:
        old = _batch("listed")
        pusher.put_many(old)
        assert {o.id for o in gc_view.list_objects()} == {oid for oid, _ in old}
        new = _batch("pushed-after-the-listing")
        pusher.put_many(new)
        assert pusher.set_ref_if_equals("main", None, new[0][0])
        assert gc_view.refs() == {"main": new[0][0]}
        assert dict(gc_view.get_many([oid for oid, _ in new + old])) == dict(new + old)
        absent = blake3.blake3(b"never pushed").digest()
        before = gc_view.traffic.requests
        with pytest.raises(packs.RemoteError, match=absent.hex()):
            dict(gc_view.get_many([absent]))
        assert gc_view.traffic.requests == before, "loaded after the refs were read: a miss is final"
    finally:
        gc_view.close()
        pusher.close()


@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_a_load_cut_by_an_unreachable_server_leaves_no_half_index(remote):
    """A pack index GET failing half way through a load left the index empty but in place: the
    retry asked the same backend and was told none of the objects exist (a push would have sent
    everything again, a fetch stopped at "lacks object"). Review finding: the load now leaves
    nothing, and the next call loads afresh."""
    from casreg.errors import RemoteUnreachable
    writer = remote.backend()
    pushed = _put_batches(writer, "cut", count=4)
    writer.close()
    reader = remote.backend()
    packed = reader
    while hasattr(packed, "inner"):  # under Retrying, which asks again after an unreachable server
        packed = packed.inner
    get = packed._get_immutable  # a pack index: from the cache the writer filled, else a GET
    failed = []

    def flaky(key, etag):
        if key.startswith("index/") and not failed:
            failed.append(key)
            raise RemoteUnreachable("connection reset (test)")
        return get(key, etag)
    packed._get_immutable = flaky
    try:
        ids = [oid for oid, _ in pushed]
        assert reader.has_many(ids) == set(ids)  # the retry, on the same backend, loaded afresh
        assert failed
        assert dict(reader.get_many(ids)) == dict(pushed)
    finally:
        reader.close()
