"""Disk full and read-only stores, on real (tmpfs) filesystems mounted for the test."""

import os
import subprocess

import pytest

from tests.helpers import one_line_error, random_bytes, run_cli, write_file


def _mount_tmpfs(path, size):
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    if proc.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount tmpfs in CI: {proc.stderr.decode().strip()}")
        pytest.skip("needs permission to mount tmpfs (runs as root in CI)")


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "mnt"
    _mount_tmpfs(mnt, "8m")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_disk_full_is_one_line_and_leaves_a_store_that_verifies(small_fs, tmp_path):
    store = small_fs / "store"
    run_cli("--store", store, "init", check=0)
    small = write_file(tmp_path / "small.bin", random_bytes(100_000, "small"))
    run_cli("--store", store, "commit", small, "--ref", "m/small", check=0)
    big = write_file(tmp_path / "big.bin", random_bytes(32 << 20, "big"))
    line = one_line_error(run_cli("--store", store, "commit", big, "--ref", "m/big"))
    assert "disk full" in line
    run_cli("--store", store, "verify", "--full", check=0)
    refs = run_cli("--store", store, "refs", check=0).stdout.decode()
    assert "m/small" in refs and "m/big" not in refs


@pytest.mark.slow
def test_read_only_store_reads_but_refuses_writes(small_fs, tmp_path):
    store = small_fs / "store"
    run_cli("--store", store, "init", check=0)
    src = write_file(tmp_path / "w.bin", random_bytes(200_000, "ro"))
    run_cli("--store", store, "commit", src, "--ref", "m/v1", check=0)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    run_cli("--store", store, "checkout", "m/v1", tmp_path / "out", check=0)
    assert (tmp_path / "out" / "w.bin").read_bytes() == open(src, "rb").read()
    run_cli("--store", store, "verify", "--full", check=0)
    line = one_line_error(run_cli("--store", store, "commit", src, "--ref", "m/v2"))
    assert "read-only" in line


def test_unreadable_file_is_one_clear_line(tmp_path):
    """Run as an unprivileged user (root reads everything), against a store it may write."""
    import shutil
    import sys
    import tempfile
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        if os.environ.get("CI"):
            pytest.fail("needs root and setpriv to drop privileges for this test")
        pytest.skip("needs root and setpriv (util-linux) to run a command as another user")
    work = tempfile.mkdtemp(prefix="casreg-unreadable-")
    try:
        os.chmod(work, 0o777)
        model = os.path.join(work, "model")
        write_file(os.path.join(model, "ok.bin"), random_bytes(50_000, "ok"))
        secret = write_file(os.path.join(model, "secret.bin"), random_bytes(50_000, "secret"))
        os.chmod(secret, 0o600)
        for dirpath, dirs, files in os.walk(work):
            for name in dirs + files:
                if os.path.join(dirpath, name) != secret:
                    os.chmod(os.path.join(dirpath, name), 0o777)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "casreg.cli",
                     "--store", os.path.join(work, "store")]
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), HOME=work)
        init = subprocess.run(as_nobody + ["init"], capture_output=True, env=env, cwd=work)
        assert init.returncode == 0, init.stderr
        proc = subprocess.run(as_nobody + ["commit", model, "--ref", "m/v1"], capture_output=True, env=env, cwd=work)
        line = one_line_error(proc)
        assert "secret.bin" in line and "ermission denied" in line
        refs = subprocess.run(as_nobody + ["refs", "--json"], capture_output=True, env=env, cwd=work)
        assert refs.stdout.strip() == b"{}"
        assert subprocess.run(as_nobody + ["verify", "--full"], capture_output=True, env=env, cwd=work).returncode == 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_read_only_delta_store_restores_deltas(small_fs, tmp_path):
    """Deltas and the keyframe cache on a store that has become read-only (a mounted archive)."""
    from tests.test_deltas import Series, _version
    store = small_fs / "store"
    run_cli("--store", store, "init", "--codec", "delta", check=0)
    from casreg.objects.keyframecache import FILL_AFTER, KeyframeCache
    s = Series()
    cache_on = {"CASREG_KEYFRAME_CACHE": str(1 << 30)}
    run_cli("--store", store, "commit", _version(tmp_path, "v0", s.file()), "--ref", "m/v0", check=0, env=cache_on)
    for i in range(FILL_AFTER + 1):  # enough deltas for the keyframe to be copied into the cache
        s.step()
        v1 = _version(tmp_path, f"v1.{i}", s.file())
        run_cli("--store", store, "commit", v1, "--ref", "m/v1", check=0, env=cache_on)
    assert os.listdir(KeyframeCache(str(store)).dir)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    run_cli("--store", store, "checkout", "m/v1", tmp_path / "out", check=0)
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == open(f"{v1}/model.safetensors", "rb").read()
    run_cli("--store", store, "verify", "--full", check=0)
