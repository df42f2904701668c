"""kill -9 in the middle of a commit leaves a store that verifies, and a rerun completes."""

import os
import signal
import subprocess
import sys
import time

import blake3
import pytest

from casreg.repo import Repository
from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow  # kill -9 campaigns: not in the fast lane


def _big_file(path, size):
    xof = blake3.blake3(b"crash")
    with open(path, "wb") as f:
        step = 32 << 20
        for off in range(0, size, step):
            f.write(xof.digest(length=min(step, size - off), seek=off))


def test_kill_9_during_commit_then_verify_and_rerun(tmp_path):
    store = tmp_path / "store"
    run_cli("--store", store, "init", check=0)
    big = tmp_path / "big.bin"
    _big_file(big, 600 << 20)
    data_file = store / "data.mdb"
    killed_mid_commit = 0
    for delay in (0.4, 0.8, 1.2):
        start_size = data_file.stat().st_size
        proc = subprocess.Popen([sys.executable, "-m", "casreg.cli", "--store", str(store), "commit", str(big),
                                 "--ref", "m/crash"], env=dict(os.environ, PYTHONPATH=ROOT),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while data_file.stat().st_size == start_size and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until chunks are landing
        time.sleep(delay / 4)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        verify = run_cli("--store", store, "verify", "--full")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        with Repository(str(store), readonly=True) as repo, repo.db.read() as txn:  # landed with the objects
            assert repo.objects.counters(txn) == repo.objects.count_stored(txn)
        if run_cli("--store", store, "refs", "--json").stdout.strip() == b"{}":
            killed_mid_commit += 1
        else:
            break
    assert killed_mid_commit >= 1, "the commit always finished before the kill; test proves nothing"
    run_cli("--store", store, "commit", big, "--ref", "m/crash", "--force", check=0)
    run_cli("--store", store, "verify", "--full", check=0)
    run_cli("--store", store, "checkout", "m/crash", tmp_path / "out", check=0)
    with open(big, "rb") as a, open(tmp_path / "out" / "big.bin", "rb") as b:
        assert blake3.blake3(a.read()).digest() == blake3.blake3(b.read()).digest()


def test_gc_during_a_commit_waits_and_keeps_the_new_version(tmp_path):
    """gc takes the store's gc lock exclusively; a commit in progress holds it shared."""
    store = tmp_path / "store"
    run_cli("--store", store, "init", check=0)
    big = tmp_path / "big.bin"
    _big_file(big, 300 << 20)
    env = dict(os.environ, PYTHONPATH=ROOT)
    commit = subprocess.Popen([sys.executable, "-m", "casreg.cli", "--store", str(store), "commit", str(big),
                               "--ref", "m/big"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    data_file = store / "data.mdb"
    start_size = data_file.stat().st_size
    while data_file.stat().st_size == start_size and commit.poll() is None:
        time.sleep(0.01)  # chunks are landing, no ref points at them yet
    gc = run_cli("--store", store, "gc")
    assert commit.wait(timeout=120) == 0, commit.stderr.read()
    assert gc.returncode == 0, gc.stderr
    assert commit.poll() is not None
    run_cli("--store", store, "verify", "--full", check=0)
    run_cli("--store", store, "checkout", "m/big", tmp_path / "out", check=0)
    with open(big, "rb") as a, open(tmp_path / "out" / "big.bin", "rb") as b:
        assert blake3.blake3(a.read()).digest() == blake3.blake3(b.read()).digest()


def test_kill_9_during_compaction_leaves_a_whole_store(tmp_path):
    """gc --compact swaps in a compacted copy of the data file: a kill at any moment leaves the
    old file or the new one, each whole (issue 16)."""
    store = tmp_path / "store"
    run_cli("--store", store, "init", check=0)
    keep, drop = tmp_path / "keep.bin", tmp_path / "drop.bin"
    _big_file(keep, 8 << 20)
    _big_file(drop, 160 << 20)
    run_cli("--store", store, "commit", keep, "--ref", "m/keep", check=0)
    outcomes = set()
    for delay in (0.05, 0.2, 0.5, 1.0):
        run_cli("--store", store, "commit", drop, "--ref", "m/drop", "--force", check=0)
        run_cli("--store", store, "delete-ref", "m/drop", check=0)
        proc = subprocess.Popen([sys.executable, "-m", "casreg.cli", "--store", str(store), "gc", "--prune=now",
                                 "--compact"], env=dict(os.environ, PYTHONPATH=ROOT),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        outcomes.add(proc.wait())
        verify = run_cli("--store", store, "verify", "--full")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        with Repository(str(store), readonly=True) as repo, repo.db.read() as txn:  # landed with the objects
            assert repo.objects.counters(txn) == repo.objects.count_stored(txn)
        run_cli("--store", store, "checkout", "m/keep", tmp_path / f"out{delay}", check=0)
        assert (tmp_path / f"out{delay}" / "keep.bin").read_bytes() == keep.read_bytes()
    assert -signal.SIGKILL in outcomes, "every gc finished before its kill; the test proves nothing"
    run_cli("--store", store, "gc", "--prune=now", "--compact", check=0)
    assert (store / "data.mdb").stat().st_size < 16 << 20
