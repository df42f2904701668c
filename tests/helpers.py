"""Shared test helpers: deterministic data and running the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import blake3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_bytes(size: int, seed: str = "casreg") -> bytes:
    """Deterministic incompressible bytes (BLAKE3 in XOF mode)."""
    return blake3.blake3(seed.encode()).digest(length=size) if size else b""


def write_file(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def run_cli(*args, cwd=None, env=None, check=None, timeout=120) -> subprocess.CompletedProcess:
    """Run ``casreg ARGS`` as a user would; ``check`` = expected exit code (0/1...) if given."""
    full_env = dict(os.environ, PYTHONPATH=ROOT)
    full_env.pop("CASREG_STORE", None)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "casreg.cli", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, timeout=timeout)
    if check is not None and proc.returncode != check:
        raise AssertionError(f"casreg {' '.join(map(str, args))} exited {proc.returncode}, expected {check}\n"
                             f"stdout: {proc.stdout.decode(errors='replace')}\n"
                             f"stderr: {proc.stderr.decode(errors='replace')}")
    return proc


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command (and proof there was no traceback)."""
    err = proc.stderr.decode()
    assert proc.returncode != 0, "expected failure"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("casreg: error: "), err
    return lines[0]


def tree_files(root) -> dict:
    """Relative path -> (bytes or link target, mode) of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                out[rel] = ("link", os.readlink(full))
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    out[rel] = ("file", blake3.blake3(f.read()).hexdigest(), os.stat(full).st_mode & 0o777)
            else:
                out[rel] = ("dir",)
    return out


def new_store(tmp_path, name: str, remote=None):
    """A new store at ``tmp_path/name/.casreg``, with ``remote`` (a tests.remote_kinds handle) as
    its remote ``origin`` when given."""
    from casreg.remotes import ops
    from casreg.repo import Repository
    repo = Repository.init(str(tmp_path / name / ".casreg"))
    if remote is not None:
        ops.config(repo).add("origin", remote.url)
    return repo


def damage(repo, oid: bytes, edit=None) -> None:
    """Damage one stored object of ``repo`` as a failing disk or a hostile peer would: ``edit``
    changes its stored value (kind, codec, payload) in place, a bytearray; without ``edit`` the
    object is gone."""
    table = repo.objects.table  # behind the store's back: its counters must not see this

    def write(txn):
        value = repo.objects.value(txn, oid)
        assert value is not None, f"no object {oid.hex()} to damage"
        value = bytearray(value)
        if edit is None:
            txn.delete(oid, db=table)
        else:
            edit(value)
            txn.put(oid, bytes(value), db=table)
    repo.db.write(write)


def flip_last_byte(value: bytearray) -> None:
    """An ``edit`` for ``damage``: the last byte inverted."""
    value[-1] ^= 0xFF
