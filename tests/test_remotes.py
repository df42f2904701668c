"""push / fetch / pull / clone against every kind of remote, each a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from casreg.errors import CasregError
from casreg.objects import encoding
from casreg.objects.encoding import CHUNK
from casreg.remotes import ops
from casreg.remotes.sync import push
from casreg.repo import Repository
from tests.helpers import ROOT, new_store, one_line_error, random_bytes, run_cli, tree_files, write_file
from tests.remote_kinds import MySQLRemote, RedisRemote

pytestmark = pytest.mark.slow  # real servers, subprocess campaigns: not in the fast lane


def _model(tmp_path, name, weights: bytes) -> str:
    root = tmp_path / "src" / name
    write_file(root / "model.safetensors", weights)
    write_file(root / "config.json", b'{"hidden": 384}')
    return str(root)


def test_push_clone_fetch_pull_round_trip(remote, tmp_path):
    a = new_store(tmp_path, "a", remote)
    v1 = a.commit(_model(tmp_path, "v1", random_bytes(3 << 20, "w1")), "models/m/v1").id
    [pushed] = ops.push_refs(a, "origin", ["models/m/v1"])
    assert pushed.objects_sent > 0 and not pushed.up_to_date
    assert ops.ls_remote(a, "origin") == {"models/m/v1": v1}

    b = ops.clone(remote.url, str(tmp_path / "b"))
    assert b.resolve("models/m/v1") == v1
    b.checkout("models/m/v1", str(tmp_path / "out-b"))
    assert tree_files(tmp_path / "out-b") == tree_files(tmp_path / "src" / "v1")
    assert b.verify(full=True) == []

    edited = random_bytes(3 << 20, "w1")[:1_000_000] + b"one fine-tune step" + random_bytes(3 << 20, "w1")[1_000_000:]
    v2 = a.commit(_model(tmp_path, "v2", edited), "models/m/v1", expect_old=v1.hex(), parents=["models/m/v1"]).id
    ops.push_refs(a, "origin", ["models/m/v1"])
    old, new = ops.pull_ref(b, "origin", "models/m/v1")
    assert (old, new) == (v1, v2)
    assert b.resolve("remotes/origin/models/m/v1") == v2
    b.checkout("models/m/v1", str(tmp_path / "out-b2"))
    assert (tmp_path / "out-b2" / "model.safetensors").read_bytes() == edited
    assert ops.verify(a, "origin", full=True) == []
    [again] = ops.push_refs(a, "origin", ["models/m/v1"])
    assert again.up_to_date


def test_second_checkpoint_sends_only_its_new_chunks(remote, tmp_path):
    a = new_store(tmp_path, "a", remote)
    base = random_bytes(6 << 20, "ckpt")
    a.commit(_model(tmp_path, "s1", base), "checkpoints/m/v/comp/1#step_1")
    first = ops.push_refs(a, "origin", ["checkpoints/m/v/comp/1#step_1"])[0]
    step2 = base[:4_000_000] + random_bytes(100_000, "delta") + base[4_100_000:]
    result = a.commit(_model(tmp_path, "s2", step2), "checkpoints/m/v/comp/2#step_2",
                      parents=["checkpoints/m/v/comp/1#step_1"])
    be = remote.backend()
    setup_requests = be.traffic.requests  # connecting, schema checks
    [second] = push(a, be, ["checkpoints/m/v/comp/2#step_2"])
    # exactly the new objects cross: the new chunks plus one manifest per changed file, trees, commit
    assert second.objects_sent <= result.new_chunks + 4
    assert second.bytes_sent <= 1.1 * result.new_stored_bytes + 4096
    assert second.bytes_sent < first.bytes_sent / 5
    assert second.bytes_sent <= be.traffic.bytes_sent <= 1.1 * result.new_stored_bytes + 4096  # on the wire
    # ~90 chunks are already on the remote; the push asks about none of them one by one
    assert be.traffic.requests - setup_requests <= 8, be.traffic
    be.close()


def test_non_fast_forward_is_refused_without_force(remote, tmp_path):
    a, b = new_store(tmp_path, "a", remote), new_store(tmp_path, "b", remote)
    a.commit(_model(tmp_path, "x", b"x" * 1000), "models/m/v")
    b.commit(_model(tmp_path, "y", b"y" * 1000), "models/m/v")
    ops.push_refs(a, "origin", ["models/m/v"])
    with pytest.raises(CasregError, match="non-fast-forward"):
        ops.push_refs(b, "origin", ["models/m/v"])
    ops.push_refs(b, "origin", ["models/m/v"], force=True)
    assert ops.ls_remote(a, "origin")["models/m/v"] == b.resolve("models/m/v")


def test_racing_ref_updates_exactly_one_wins(remote, tmp_path):
    a = new_store(tmp_path, "a", remote)
    ids = [a.commit(_model(tmp_path, f"r{i}", bytes([i]) * 100), f"models/race/{i}").id for i in range(6)]
    for i in range(6):
        ops.push_refs(a, "origin", [f"models/race/{i}"])
    wins = []
    barrier = threading.Barrier(len(ids))

    shared = remote.backend() if remote.kind == "file" else None  # LMDB: one handle per process

    def contender(target):
        be = shared or remote.backend()
        barrier.wait()
        if be.set_ref_if_equals("models/race/winner", None, target):
            wins.append(target)
        if be is not shared:
            be.close()
    threads = [threading.Thread(target=contender, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if shared:
        shared.close()
    assert len(wins) == 1
    assert ops.ls_remote(a, "origin")["models/race/winner"] == wins[0]


def _pushed_chunk(remote, tmp_path, seed: str) -> tuple[Repository, bytes]:
    """A store that pushed one version to ``remote``, and one of the chunks it sent."""
    a = new_store(tmp_path, "a", remote)
    a.commit(_model(tmp_path, "v", random_bytes(1 << 20, seed)), "models/m/v")
    ops.push_refs(a, "origin", ["models/m/v"])
    return a, next(oid for oid, kind in _objects(a) if kind == CHUNK)


def test_corrupt_remote_object_is_refused_on_fetch(remote, tmp_path):
    a, victim = _pushed_chunk(remote, tmp_path, "c")
    remote.corrupt(victim)
    problems = ops.verify(a, "origin", full=True)
    assert [p["id"] for p in problems] == [victim.hex()]
    b = new_store(tmp_path, "b", remote)
    with pytest.raises(CasregError, match="does not match its hash|refusing"):
        ops.fetch_refs(b, "origin")
    assert b.list_refs() == []
    with b.db.read() as txn:
        assert not b.objects.has(txn, victim)
    assert b.verify(full=True) == []


def test_missing_remote_object_is_reported(remote, tmp_path):
    a, victim = _pushed_chunk(remote, tmp_path, "m")
    remote.delete(victim)
    assert {"id": victim.hex(), "kind": "chunk", "problem": "missing"} in ops.verify(a, "origin")


@pytest.mark.parametrize("remote", ["redis", "mysql", "cos", "s3"], indirect=True)  # file://: test_crash.py
def test_interrupted_push_then_rerun_moves_only_what_is_missing(remote, tmp_path, monkeypatch):
    """A push cut off after its first upload batch (the connection dropped) leaves objects
    without a ref; the rerun sends only what is still missing. (The same with kill -9 at random
    moments, on every backend: benchmarks/stress.py --campaign kill9.)"""
    from casreg.errors import RemoteUnreachable
    a = new_store(tmp_path, "a", remote)
    big = _model(tmp_path, "big", random_bytes(24 << 20, "interrupted"))
    a.commit(big, "models/m/big")
    be = remote.backend()
    be.batch_bytes = 4 << 20  # several batches
    real_put, calls = be.put_many, []

    def put_then_drop(items):
        calls.append(len(items))
        if len(calls) > 1:
            raise RemoteUnreachable("the connection dropped (test)")
        real_put(items)
    monkeypatch.setattr(be, "put_many", put_then_drop)
    with pytest.raises(RemoteUnreachable):
        push(a, be, ["models/m/big"])
    be.close()
    assert "models/m/big" not in ops.ls_remote(a, "origin"), "no ref to a partial push"
    landed = calls[0]
    be = remote.backend()
    total = len(_objects(a))
    [rerun] = push(a, be, ["models/m/big"])
    be.close()
    assert 0 < rerun.objects_sent <= total - landed
    assert ops.verify(a, "origin", full=True) == []
    b = ops.clone(remote.url, str(tmp_path / "b"))
    b.checkout("models/m/big", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(big)


@pytest.mark.parametrize("remote", ["file", "redis"], indirect=True)
def test_a_push_of_many_small_objects_goes_in_batches_of_at_most_batch_objects(remote, tmp_path):
    """8 MiB of manifests is ~80,000 objects in one put_many; a backend's ``batch_objects`` caps
    it (one file:// transaction of them dirtied most of the remote's B-tree), and everything
    still lands: the version fetches whole."""
    a = new_store(tmp_path, "a", remote)
    src = tmp_path / "src" / "many"
    for i in range(60):
        write_file(src / f"f{i:02d}.txt", b"file %d" % i)
    a.commit(str(src), "models/m/v1")
    be = remote.backend()
    be.batch_objects = 16
    sizes: list[int] = []
    real = be.put_many

    def put_many(items):
        sizes.append(len(items))
        return real(items)
    be.put_many = put_many
    [pushed] = push(a, be, ["models/m/v1"])
    assert pushed.objects_sent == len(_objects(a)) > 100
    assert max(sizes) <= 16 and sum(sizes) == pushed.objects_sent
    be.close()
    b = new_store(tmp_path, "b", remote)
    ops.fetch_refs(b, "origin")
    b.checkout("remotes/origin/models/m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(src)


@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_a_fetch_reads_chunks_in_pack_order_not_whole_packs_per_batch(remote, tmp_path):
    """Chunks are asked for in batches; in id order each batch's ranges coalesced across most
    of every pack (a clone of 3x10^5 small chunks read 16x its size, at 4 MB/s). In the
    backend's read order a batch is a range of one pack: the bytes read are about those pushed."""
    from casreg.remotes.sync import fetch
    a = new_store(tmp_path, "a", remote)
    src = tmp_path / "src" / "many"
    for i in range(800):
        write_file(src / f"f{i:03d}.bin", random_bytes(6000, f"small {i}"))
    a.commit(str(src), "models/m/v1")
    [pushed] = push(a, remote.backend(), ["models/m/v1"])
    b = new_store(tmp_path, "b", remote)
    be = remote.backend()
    inner = be.unwrapped()
    real, read = inner._get_range, []

    def get_range(pack, start, end):
        read.append(end - start)
        return real(pack, start, end)
    inner._get_range = get_range
    fetch(b, "origin", be)
    assert sum(read) <= 1.2 * pushed.bytes_sent, (sum(read), pushed.bytes_sent, len(read))
    b.checkout("remotes/origin/models/m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(src)


@pytest.mark.parametrize("remote", ["file"], indirect=True)
def test_a_fetch_lands_manifests_in_batches_before_the_ref(remote, tmp_path, monkeypatch):
    """Fetched manifests land LAND_BATCH a transaction once every chunk has (one transaction of
    all of them held the whole B-tree's dirty pages), trees and commits with the ref: the
    fetched version is whole and verifies, and a cut between batches leaves only complete objects."""
    from casreg.remotes import sync
    a = new_store(tmp_path, "a", remote)
    src = tmp_path / "src" / "many"
    for i in range(100):
        write_file(src / f"d{i % 3}" / f"f{i:03d}.txt", b"file %d" % i)
    a.commit(str(src), "models/m/v1")
    push(a, remote.backend(), ["models/m/v1"])
    monkeypatch.setattr(sync, "LAND_BATCH", 16)
    b = new_store(tmp_path, "b", remote)
    batches: list[list] = []
    real = b.objects.put_values

    def put_values(txn, items):
        items = list(items)
        batches.append([value[0] for _, value in items])
        return real(txn, items)
    monkeypatch.setattr(b.objects, "put_values", put_values)
    ops.fetch_refs(b, "origin")
    manifest_batches = [kinds for kinds in batches if set(kinds) == {encoding.MANIFEST}]
    assert len(manifest_batches) == 7 and max(map(len, manifest_batches)) == 16
    assert set(batches[-1]) == {encoding.TREE, encoding.COMMIT}  # with the ref, trees first
    assert batches[-1].index(encoding.COMMIT) == len(batches[-1]) - 1
    assert b.verify() == []
    b.checkout("remotes/origin/models/m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(src)


@pytest.mark.parametrize("cut_after", ["tree", "commit"])
@pytest.mark.parametrize("remote", ["file", "redis"], indirect=True)
def test_a_push_cut_between_batches_is_completed_by_its_rerun(remote, tmp_path, cut_after):
    """The negotiation finds a tree before its subtrees and a commit before its parents; sent
    in that order, a push cut between batches left a tree (or the tip) on the remote without
    what it names, and the rerun, trusting it, moved the ref onto an incomplete version. Trees
    and commits go children first, so what landed is always whole."""
    from casreg.errors import RemoteUnreachable
    a = new_store(tmp_path, "a", remote)
    src = tmp_path / "src" / "nested"
    if cut_after == "tree":  # one version of new nested directories: expanded a level at a time
        write_file(src / "d1" / "d2" / "d3" / "deep.txt", b"deep")
        write_file(src / "d1" / "mid.txt", b"mid")
        a.commit(str(src), "models/m/v1")
    else:
        for step in range(3):
            write_file(src / "w.txt", b"step %d" % step)
            a.commit(str(src), "models/m/v1", message=f"step {step}")
    kind = encoding.TREE if cut_after == "tree" else encoding.COMMIT
    be = remote.backend()
    be.batch_objects = 2
    real = be.put_many

    def put_many(items):
        real(items)
        if any(value[0] == kind for _, value in items):
            raise RemoteUnreachable("the connection dropped")  # after the first batch holding one
    be.put_many = put_many
    with pytest.raises(CasregError):
        push(a, be, ["models/m/v1"])
    be.close()
    ops.push_refs(a, "origin", ["models/m/v1"])  # the rerun trusts what landed
    assert ops.verify(a, "origin", full=True) == []
    b = new_store(tmp_path, "b", remote)
    ops.fetch_refs(b, "origin")
    b.checkout("remotes/origin/models/m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(src)


def _objects(repo):
    with repo.db.read() as txn:
        return [(oid, kind) for oid, kind, _, _ in repo.objects.iter_stored(txn)]


# -- what a user sees when a remote is wrong ------------------------------------------------------
def test_cli_push_fetch_and_errors(remote, tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    write_file(tmp_path / "m" / "w.bin", random_bytes(200_000, "cli-remote"))
    run_cli("commit", "m", "--ref", "models/m/v1", cwd=tmp_path, check=0)
    run_cli("remote", "add", "origin", remote.url, cwd=tmp_path, check=0)
    out = run_cli("push", "origin", "--all", cwd=tmp_path, check=0).stdout.decode()
    assert "models/m/v1" in out
    assert "models/m/v1" in run_cli("ls-remote", "origin", cwd=tmp_path, check=0).stdout.decode()
    run_cli("verify", "--remote", "origin", "--full", cwd=tmp_path, check=0)
    assert "no remote named" in one_line_error(run_cli("push", "nowhere", "models/m/v1", cwd=tmp_path))
    assert "unknown ref" in one_line_error(run_cli("push", "origin", "models/none", cwd=tmp_path))


BAD_URLS = {
    "redis": [("redis://127.0.0.1:1/0", "cannot reach"),
              ("redis://127.0.0.1:6379/99", "DB index")],
    "mysql": [("mysql://root@127.0.0.1:1/test", "cannot reach"),
              ("mysql://root@127.0.0.1:3306/casreg_no_such_db", "database does not exist"),
              ("mysql://nobody_casreg@127.0.0.1:3306/test", "access denied")],
    "cos": [("cos://nope-1250000000?region=ap-guangzhou&scheme=http&ip=127.0.0.1&port=1", "cannot reach"),
            ("cos://no-such-bucket-1250000000?region=ap-guangzhou&scheme=http&ip=127.0.0.1&port={port}",
             "does not exist")],
    "s3": [("s3://nope/x?endpoint=http://127.0.0.1:1&timeout=2", "cannot reach"),
           ("s3://no-such-bucket/x?endpoint=http://127.0.0.1:{port}", "does not exist")],
    "file": [("file:///nonexistent/store", "not a casreg store")],
}


def test_unreachable_or_wrong_remote_is_one_clear_line(remote, tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    for i, (url, message) in enumerate(BAD_URLS[remote.kind]):
        if "{port}" in url:
            url = url.format(port=remote.seaweed.port)
        run_cli("remote", "add", f"bad{i}", url, cwd=tmp_path, check=0)
        line = one_line_error(run_cli("ls-remote", f"bad{i}", cwd=tmp_path))
        assert message.lower() in line.lower(), line


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of our own, with a password and a tiny memory limit (the shared one has neither)."""
    import shutil

    from tests.servers import free_port
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("redis-server is not installed (Debian package redis-server)", pytrace=False)
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret",
                             "--maxmemory", "4mb", "--maxmemory-policy", "noeviction", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from tests.servers import require_tcp
    for _ in range(100):
        try:
            require_tcp("127.0.0.1", port, "private redis")
            break
        except BaseException:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def test_redis_password_and_full_server(private_redis, tmp_path):
    url = f"redis://127.0.0.1:{private_redis}/0"
    run_cli("init", cwd=tmp_path, check=0)
    write_file(tmp_path / "m" / "w.bin", random_bytes(8 << 20, "too-big"))
    run_cli("commit", "m", "--ref", "models/m/v1", cwd=tmp_path, check=0)
    run_cli("remote", "add", "r", url, cwd=tmp_path, check=0)
    assert "authentication failed" in one_line_error(run_cli("ls-remote", "r", cwd=tmp_path))
    wrong = {"CASREG_REMOTE_R_PASSWORD": "wrong"}
    assert "authentication failed" in one_line_error(run_cli("ls-remote", "r", cwd=tmp_path, env=wrong))
    right = {"CASREG_REMOTE_R_PASSWORD": "s3cret"}
    run_cli("ls-remote", "r", cwd=tmp_path, env=right, check=0)
    assert "s3cret" not in run_cli("remote", "show", "r", cwd=tmp_path, env=right, check=0).stdout.decode()
    assert "full" in one_line_error(run_cli("push", "r", "models/m/v1", cwd=tmp_path, env=right))
    assert run_cli("ls-remote", "r", cwd=tmp_path, env=right, check=0).stdout == b""  # no ref to a partial push


def test_password_in_url_is_refused(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    line = one_line_error(run_cli("remote", "add", "r", "redis://:hunter2@127.0.0.1:6379/0", cwd=tmp_path))
    assert "CASREG_REMOTE_R_PASSWORD" in line and "hunter2" not in line


def test_fate_model_store_address_becomes_a_remote(tmp_path):
    conf = tmp_path / "service_conf.yaml"
    conf.write_text("enable_model_store: true\nmodel_store_address:\n  storage: mysql\n  database: test\n"
                    "  user: root\n  password: pw\n  host: 127.0.0.1\n  port: 3306\n"
                    "  max_connections: 10\n  stale_timeout: 10\n")
    run_cli("init", cwd=tmp_path, check=0)
    refused = run_cli("remote", "add", "fate", "--fate-config", conf, cwd=tmp_path)
    assert refused.returncode == 2 and "fate import --fate-config" in one_line_error(refused)
    run_cli("remote", "add", "fate", "--fate-config", conf, "--casreg-format", cwd=tmp_path, check=0)
    shown = run_cli("remote", "show", "fate", cwd=tmp_path, check=0).stdout.decode()
    assert "mysql://root@127.0.0.1:3306/test" in shown and "pw" not in shown.replace("password", "")
    store_conf = tmp_path / ".casreg" / "remotes.json"
    assert oct(store_conf.stat().st_mode & 0o777) == "0o600"


def test_auto_sync_fetches_on_checkout_and_pushes_on_commit(tmp_path):
    """FATE's enable_model_store: load pulls a model the local cache lacks, store pushes new ones."""
    shared = tmp_path / "shared-store"
    run_cli("--store", shared, "init", check=0)
    for site in ("a", "b"):
        (tmp_path / site).mkdir()
        run_cli("init", cwd=tmp_path / site, check=0)
        run_cli("remote", "add", "hub", f"file://{shared}", cwd=tmp_path / site, check=0)
        run_cli("remote", "default", "hub", "--auto-sync", cwd=tmp_path / site, check=0)
    write_file(tmp_path / "a" / "model" / "w.bin", random_bytes(300_000, "auto"))
    out = run_cli("commit", "model", "--ref", "models/m/v1", cwd=tmp_path / "a", check=0).stdout.decode()
    assert "pushed models/m/v1" in out
    run_cli("checkout", "models/m/v1", "restored", cwd=tmp_path / "b", check=0)
    assert (tmp_path / "b" / "restored" / "w.bin").read_bytes() == (tmp_path / "a" / "model" / "w.bin").read_bytes()


def test_interrupted_fetch_leaves_the_local_store_consistent(tmp_path):
    """A fetch killed mid-way: the local store verifies, has no tracking ref, and a rerun completes."""
    remote = RedisRemote()
    try:
        a = new_store(tmp_path, "a", remote)
        big = _model(tmp_path, "big", random_bytes(96 << 20, "fetch-kill"))
        a.commit(big, "models/m/big")
        ops.push_refs(a, "origin", ["models/m/big"])
        b = new_store(tmp_path, "b", remote)
        b_path = b.path
        b.close()
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen([sys.executable, "-m", "casreg.cli", "--store", b_path, "fetch", "origin"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data_file = os.path.join(b_path, "data.mdb")
        start_size = os.path.getsize(data_file)
        while proc.poll() is None and os.path.getsize(data_file) == start_size:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Repository(b_path) as b:
            assert b.verify(full=True) == []
            if b.list_refs():
                pytest.fail("the fetch finished before the kill; the test proves nothing")
            result = ops.fetch_refs(b, "origin")
            assert result.refs == {"models/m/big": a.resolve("models/m/big")}
            b.checkout("remotes/origin/models/m/big", str(tmp_path / "out"))
        assert tree_files(tmp_path / "out") == tree_files(big)
    finally:
        remote.cleanup()


def test_read_only_mysql_user_is_one_clear_line(tmp_path):
    remote = MySQLRemote()
    user = f"casreg_ro_{remote.prefix[1:7]}"
    try:
        remote.backend().close()  # create the tables as root
        with remote.conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'ro'")
            cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'ro'")
            for host in ("%", "localhost"):
                cur.execute(f"GRANT SELECT ON test.* TO '{user}'@'{host}'")
        run_cli("init", cwd=tmp_path, check=0)
        write_file(tmp_path / "m" / "w.bin", random_bytes(100_000, "ro"))
        run_cli("commit", "m", "--ref", "models/m/v1", cwd=tmp_path, check=0)
        url = remote.url.replace("root@", f"{user}@")
        run_cli("remote", "add", "ro", url, cwd=tmp_path, check=0)
        line = one_line_error(run_cli("push", "ro", "models/m/v1", cwd=tmp_path,
                                      env={"CASREG_REMOTE_RO_PASSWORD": "ro"}))
        assert "denied" in line.lower() or "may not write" in line
        assert remote.backend().refs() == {}
    finally:
        with remote.conn.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        remote.cleanup()


def test_metadata_changes_keep_the_id_and_travel_with_push_and_pull(remote, tmp_path):
    """Annotations (notes/<id>) go with the version they describe, on every backend."""
    a = new_store(tmp_path, "a", remote)
    v1 = a.commit(_model(tmp_path, "v1", random_bytes(1 << 20, "meta")), "models/m/v1").id
    ops.push_refs(a, "origin", ["models/m/v1"])
    b = ops.clone(remote.url, str(tmp_path / "b"))
    assert a.set_meta("models/m/v1", {"accuracy": 0.93, "stage": "prod"}) == v1
    [version, note] = ops.push_refs(a, "origin", ["models/m/v1"])
    assert version.up_to_date and note.ref == f"notes/{v1.hex()}" and note.objects_sent == 2  # commit, tree
    old, new = ops.pull_ref(b, "origin", "models/m/v1")
    assert old == new == v1
    assert b.metadata("models/m/v1")["accuracy"] == 0.93
    c = ops.clone(remote.url, str(tmp_path / "c"))
    assert c.metadata("models/m/v1") == a.metadata("models/m/v1")
    assert c.verify(full=True) == []


@pytest.mark.parametrize("remote", ["file", "redis", "mysql"], indirect=True)
def test_push_delete_and_push_all_leaves_scratch_refs_home(remote, tmp_path):
    a = new_store(tmp_path, "a", remote)
    a.commit(_model(tmp_path, "v1", random_bytes(100_000, "del")), "models/m/v1")
    a.commit(_model(tmp_path, "s", random_bytes(100_000, "scratch")), "scratch/try")
    a.update_ref("tags/golden", "models/m/v1")
    pushed = [r.ref for r in ops.push_refs(a, "origin", [], all_refs=True)]
    assert sorted(pushed) == ["models/m/v1", "tags/golden"], "scratch/try stays local"
    ops.fetch_refs(a, "origin")
    with pytest.raises(CasregError, match="expected"):
        ops.delete_remote_ref(a, "origin", "tags/golden", expect_old=bytes(32))
    ops.delete_remote_ref(a, "origin", "tags/golden")
    assert sorted(ops.ls_remote(a, "origin")) == ["models/m/v1"]
    assert "remotes/origin/tags/golden" not in dict(a.list_refs())
    with pytest.raises(CasregError, match="has no ref"):
        ops.delete_remote_ref(a, "origin", "tags/golden")


@pytest.mark.parametrize("remote", ["file"], indirect=True)
def test_push_of_several_refs_counts_each_object_for_the_first_ref_that_needs_it(remote, tmp_path):
    """One push of two refs that share a file: the shared objects are sent once and counted for
    the first ref only; the bytes each ref reports add up to what was sent."""
    a = new_store(tmp_path, "a", remote)
    shared = random_bytes(1 << 20, "shared")
    a.commit(_model(tmp_path, "one", shared), "models/m/one")
    a.commit(_model(tmp_path, "two", shared + random_bytes(300_000, "more")), "models/m/two")
    be = remote.backend()
    first, second = push(a, be, ["models/m/one", "models/m/two"])
    assert first.bytes_sent + second.bytes_sent == be.traffic.bytes_sent
    assert first.objects_sent + second.objects_sent == len(_objects(a))
    assert 0 < second.bytes_sent < first.bytes_sent  # the shared chunks went with the first ref
    be.close()
