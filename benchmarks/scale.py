"""Does a push cost what is new, or what is old? (issue 15)

Builds a history of N versions of one model (each version: the same 8 MiB weights file, edited in
one place, plus a small config), pushes it to a file:// remote, commits one more version and
times the push of it, for each N; then the same with git (one more commit on top of N, pushed to
a bare repository) as the baseline measured in the same run. Also times `push --all` of R refs.
Prints one line per size and the growth ratios (largest N / smallest N).

    python benchmarks/scale.py [--sizes 50,500] [--refs 100,1000]   (about 3 minutes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from casreg.remotes import open_backend, ops  # noqa: E402
from casreg.remotes.negotiate import Negotiation  # noqa: E402
from casreg.repo import Repository  # noqa: E402


def _weights(seed: int) -> bytes:
    import blake3
    base = blake3.blake3(b"scale").digest(length=8 << 20)
    edit = blake3.blake3(str(seed).encode()).digest(length=4096)
    at = (seed * 40960) % (len(base) - 4096)
    return base[:at] + edit + base[at + 4096:]


def _write(model: str, i: int) -> None:
    with open(os.path.join(model, "weights.bin"), "wb") as f:
        f.write(_weights(i))
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write(f'{{"step": {i}}}')


def _new_store(work: str) -> tuple[Repository, str]:
    store, remote, model = (os.path.join(work, x) for x in ("store", "remote", "model"))
    os.makedirs(model)
    open_backend(f"file://{remote}", create=True).close()
    return Repository.init(store), model


def casreg_push_cost(work: str, n: int) -> tuple[float, int, int]:
    """(seconds, has_many round trips, objects sent) of pushing version n+1 after n pushed."""
    repo, model = _new_store(work)
    remote = os.path.join(work, "remote")
    ops.config(repo).add("origin", f"file://{remote}")
    for i in range(n):
        _write(model, i)
        repo.commit(model, "models/m/main", message=f"step {i}")
    ops.push_refs(repo, "origin", ["models/m/main"])
    _write(model, n)
    repo.commit(model, "models/m/main", message="the new one")
    asked = []
    real = Negotiation.missing_for

    def counting(self, tip):
        found = real(self, tip)
        asked.append(self.asked)
        return found
    Negotiation.missing_for = counting  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        [result] = ops.push_refs(repo, "origin", ["models/m/main"])
        took = time.perf_counter() - start
    finally:
        Negotiation.missing_for = real  # type: ignore[method-assign]
    repo.close()
    return took, asked[-1], result.objects_sent


def git_push_cost(work: str, n: int) -> float | None:
    if shutil.which("git") is None:
        return None
    model, bare = os.path.join(work, "g"), os.path.join(work, "g.git")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@x")

    def git(*args, cwd=model):
        subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)
    os.makedirs(model)
    git("init", "-q", "-b", "main")
    subprocess.run(["git", "init", "-q", "--bare", bare], check=True, capture_output=True)
    for i in range(n):
        _write(model, i)
        git("add", "-A")
        git("commit", "-q", "-m", f"step {i}")
    git("push", "-q", bare, "main")
    _write(model, n)
    git("add", "-A")
    git("commit", "-q", "-m", "the new one")
    start = time.perf_counter()
    git("push", "-q", bare, "main")
    return time.perf_counter() - start


def push_all_cost(work: str, refs: int) -> float:
    repo, model = _new_store(work)
    remote = os.path.join(work, "remote")
    ops.config(repo).add("origin", f"file://{remote}")
    _write(model, 0)
    first = repo.commit(model, "models/m/v0").id
    for i in range(1, refs):
        repo.update_ref(f"models/m/v{i}", first.hex())
    start = time.perf_counter()
    ops.push_refs(repo, "origin", [], all_refs=True)
    took = time.perf_counter() - start
    repo.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500", help="history lengths (comma separated)")
    parser.add_argument("--refs", default="100,1000", help="ref counts for push --all (comma separated)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="casreg-scale-") as work:
            took, asked, sent = casreg_push_cost(work, n)
        with tempfile.TemporaryDirectory(prefix="casreg-scale-git-") as work:
            git_took = git_push_cost(work, n)
        rows.append((n, took, git_took))
        git_part = f"git {git_took * 1000:.0f} ms" if git_took is not None else "git not installed"
        print(f"push of 1 new version on {n} versions: casreg {took * 1000:.0f} ms "
              f"({asked} has_many round trips, {sent} objects sent); {git_part}")
    if len(rows) > 1:
        (n0, c0, g0), (n1, c1, g1) = rows[0], rows[-1]
        growth = f"casreg {c1 / c0:.2f}x"
        if g0 and g1:
            growth += f", git {g1 / g0:.2f}x"
        print(f"growth from {n0} to {n1} versions: {growth} (flat is 1.0x)")
    for r in [int(x) for x in args.refs.split(",")]:
        with tempfile.TemporaryDirectory(prefix="casreg-scale-all-") as work:
            print(f"push --all of {r} refs: {push_all_cost(work, r) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
