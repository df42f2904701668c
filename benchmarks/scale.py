"""Does a push cost what is new, or what is old? (issue 15)

Builds a history of N versions of one model (each version: the same 8 MiB weights file, edited in
one place, plus a small config), pushes it to a file:// remote, commits one more version and
times the push of it, for each N; then the same with git (one more commit on top of N, pushed to
a bare repository) as the baseline measured in the same run. Also times `push --all` of R refs.
Prints one line per size and the growth ratios (largest N / smallest N).

    python benchmarks/scale.py [--sizes 50,500] [--refs 100,1000]   (about 3 minutes)

With ``--history 1000,10000,100000`` it measures the read commands instead: a model of N named
versions (``models/m/v<i>``, each the child of the one before, each a small file and a config),
built through the plumbing API (objects and refs put directly, 2,000 versions a transaction),
then the time (best of 3) and peak RSS (the child's VmHWM) of ``casreg stats``, ``casreg log -n 10``, ``casreg
log`` and ``casreg versions m``, with ``git count-objects -v`` and ``git log -n 10`` on a git
repository of the same shape (built by ``git fast-import``) as the baseline.

With ``--full-push 300000`` (and ``--remotes``, default all four): the time and peak RSS of a
full push of a store of that many distinct 4 KiB chunks (one version, 300 directories of 1,000
files) to a fresh remote of each kind, then of verify --full, gc --dry-run and a clone of it
(about 2.6 GB; ~15 minutes).
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

from benchmarks import installed_bytecode  # noqa: E402
from casreg.objects import encoding  # noqa: E402
from casreg.remotes import open_backend, ops  # noqa: E402
from casreg.remotes.negotiate import Negotiation  # noqa: E402
from casreg.repo import Repository  # noqa: E402

CHUNK, MANIFEST, TREE, COMMIT, FILE = encoding.CHUNK, encoding.MANIFEST, encoding.TREE, encoding.COMMIT, encoding.FILE
Commit, Manifest, Tree, TreeEntry = encoding.Commit, encoding.Manifest, encoding.Tree, encoding.TreeEntry


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


HISTORY_BATCH = 2000


def build_history(store: str, n: int) -> None:
    """N named versions of model ``m``, each the child of the one before: one 1 KiB file that
    changes every version and a config that changes never, put as objects and refs directly."""
    repo = Repository.init(store)
    staged: dict[bytes, bytes] = {}
    config_entry = _file_entry(repo, staged, "config.json", b'{"layers": 4}')  # lands with the first batch
    parent: bytes | None = None
    for start in range(0, n, HISTORY_BATCH):
        moves = []
        for i in range(start, min(n, start + HISTORY_BATCH)):
            weights = _file_entry(repo, staged, "w.bin", (b"%08d" % i) * 128)
            tree = _put(repo, staged, TREE, Tree([config_entry, weights]).encode())
            commit = Commit(tree, [parent] if parent else [], "bench@scale", 1_700_000_000 + i, f"step {i}", {})
            parent = _put(repo, staged, COMMIT, commit.encode())
            moves.append((f"models/m/v{i:06d}", parent))

        def land(txn, staged=staged, moves=moves):
            repo.objects.put_values(txn, staged.items())
            for ref, cid in moves:
                repo.refs.set_if_equals(txn, ref, None, cid, who="bench@scale", message="commit")
        repo.db.write(land)
        staged = {}
    repo.close()


def _put(repo: Repository, staged: dict, kind: int, data: bytes) -> bytes:
    oid, value = repo.objects.encode(kind, data)
    staged[oid] = value
    return oid


def _file_entry(repo: Repository, staged: dict, name: str, data: bytes) -> TreeEntry:
    chunk = _put(repo, staged, CHUNK, data)
    manifest = Manifest(len(data), encoding.object_id(data), [(chunk, len(data))])
    return TreeEntry(name, FILE, 0o644, len(data), id=_put(repo, staged, MANIFEST, manifest.encode()))


def build_git_history(path: str, n: int) -> None:
    """The same shape in git: N commits of w.bin (changing) and config.json, a tag per commit."""
    subprocess.run(["git", "init", "-q", "--bare", path], check=True)
    lines = []
    for i in range(n):
        weights = (b"%08d" % i) * 128
        lines.append(b"commit refs/heads/main\nmark :%d\ncommitter b <b@x> %d +0000\ndata %d\nstep %d\n"
                     % (i + 1, 1_700_000_000 + i, len(b"step %d" % i), i))
        if i == 0:
            lines.append(b'M 644 inline config.json\ndata 13\n{"layers": 4}\n')
        lines.append(b"M 644 inline w.bin\ndata %d\n%s\n" % (len(weights), weights))
        lines.append(b"reset refs/tags/v%06d\nfrom :%d\n\n" % (i, i + 1))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(lines), check=True)


def timed_child(args: list[str], **options) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of a command. The peak comes from GNU time (``%M``: the
    child's ru_maxrss, its VmHWM): a child forked from this process would count this process's
    own high-water mark in it, so the command is started by the small ``time`` instead."""
    with tempfile.NamedTemporaryFile(prefix="casreg-scale-rss-") as out:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, **options)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.decode()}")
        return took, int(open(out.name).read().split()[-1]) * 1024


REPEAT = 3


def best_of(args: list[str], **options) -> tuple[float, int]:
    """The fastest of REPEAT runs (the machine is shared: the others measure the neighbours) and
    the largest peak RSS."""
    runs = [timed_child(args, **options) for _ in range(REPEAT)]
    return min(t for t, _ in runs), max(r for _, r in runs)


CLI = [sys.executable, "-m", "casreg.cli"]


def history_costs(n: int) -> None:
    casreg = CLI
    env = dict(os.environ, PYTHONPATH=ROOT)
    with tempfile.TemporaryDirectory(prefix="casreg-scale-history-") as work:
        store = os.path.join(work, "store")
        start = time.perf_counter()
        build_history(store, n)
        built = time.perf_counter() - start
        startup = best_of([*casreg, "--help"], env=env)
        print(f"{n} versions: built in {built:.1f} s; CLI start-up (casreg --help) "
              f"{startup[0] * 1000:.0f} ms, {startup[1] >> 20} MB")
        tip = f"models/m/v{n - 1:06d}"
        for label, args in (("stats", ["stats"]), ("log -n 10", ["log", "-n", "10", tip]),
                            ("log", ["log", "--oneline", tip]), ("versions m", ["versions", "m"])):
            took, rss = best_of([*casreg, "--store", store, *args], env=env)
            print(f"  casreg {label:<12} {took * 1000:7.0f} ms  {rss >> 20:5d} MB")
        if shutil.which("git") is None:
            return
        git_dir = os.path.join(work, "g.git")
        build_git_history(git_dir, n)
        for label, args in (("count-objects -v", ["count-objects", "-v"]), ("log -n 10", ["log", "-n", "10", "main"]),
                            ("log", ["log", "--oneline", "main"])):
            took, rss = best_of(["git", "--git-dir", git_dir, *args])
            print(f"  git {label:<15} {took * 1000:7.0f} ms  {rss >> 20:5d} MB")


def add_version_on(store: str, tip: str, ref: str, i: int) -> None:
    """One more version on top of ``tip`` (its shape as ``build_history``'s), at ``ref``."""
    repo = Repository.open(store)
    staged: dict[bytes, bytes] = {}
    parent = repo.resolve(tip)
    config_entry = _file_entry(repo, staged, "config.json", b'{"layers": 4}')
    weights = _file_entry(repo, staged, "w.bin", (b"%08d" % i) * 128)
    tree = _put(repo, staged, TREE, Tree([config_entry, weights]).encode())
    commit = _put(repo, staged, COMMIT, Commit(tree, [parent], "bench@scale", 1_700_000_000 + i, "new", {}).encode())

    def land(txn):
        repo.objects.put_values(txn, staged.items())
        repo.refs.set_if_equals(txn, ref, None, commit, who="bench@scale", message="commit")
    repo.db.write(land)
    repo.close()


def remote_push_costs(sizes: list[int], kinds: list[str]) -> None:
    """Per remote: the push of one new version on top of N versions the remote holds already
    (seconds, requests, bytes sent), for each N; git pushing one commit on the same shape."""
    from transfer import remote_urls

    from casreg.remotes.sync import push
    with tempfile.TemporaryDirectory(prefix="casreg-scale-remotes-") as work:
        stores = {}
        for n in sizes:
            stores[n] = os.path.join(work, f"store-{n}")
            build_history(stores[n], n)
            for k in range(REPEAT):  # REPEAT different new versions on the tip: the fastest push counts
                add_version_on(stores[n], f"models/m/v{n - 1:06d}", f"models/m/new{k}", n + k)
        results: dict[str, list[tuple[int, float, int, int]]] = {}
        for n in sizes:
            for kind, url, cleanup in remote_urls(kinds, work):  # a fresh remote of each kind per size
                try:
                    repo = Repository.open(stores[n])
                    backend = open_backend(url, create=True)
                    push(repo, backend, [f"models/m/v{n - 1:06d}"])  # the remote holds the history
                    runs = []
                    for k in range(REPEAT):
                        before, sent_before = backend.traffic.requests, backend.traffic.bytes_sent
                        start = time.perf_counter()
                        [result] = push(repo, backend, [f"models/m/new{k}"])
                        runs.append((time.perf_counter() - start, backend.traffic.requests - before,
                                     backend.traffic.bytes_sent - sent_before))
                    took, requests, sent = min(runs)
                    row = (n, took, requests, sent)
                    results.setdefault(kind, []).append(row)
                    backend.close()
                    repo.close()
                    print(f"  push of 1 version on {n:6d} to {kind:5}: {took * 1000:7.1f} ms, {row[2]:3d} requests, "
                          f"{row[3]:6d} bytes sent, {result.objects_sent} objects", flush=True)
                finally:
                    cleanup()
        for n in sizes:
            took = git_push_on_history(work, n)
            if took is not None:
                results.setdefault("git", []).append((n, took, 0, 0))
                print(f"  git push of 1 commit on {n:6d}: {took * 1000:7.1f} ms")
        for kind, rows in results.items():
            if len(rows) > 1:
                (n0, t0, r0, _), (n1, t1, r1, _) = rows[0], rows[-1]
                req = f", requests {r0} -> {r1}" if kind != "git" else ""
                print(f"  {kind}: {n0} -> {n1} versions: time {t1 / t0:.2f}x{req}")


WIDE_FILES = 1000  # files per directory of build_wide's tree


def build_wide(store: str, chunks: int) -> None:
    """One version of ``chunks`` distinct incompressible 4 KiB files (one chunk each), in
    directories of WIDE_FILES, at ``models/m/main``: the store a full push must stream."""
    import blake3
    repo = Repository.init(store)
    dirs = []
    for d in range(0, chunks, WIDE_FILES):
        staged: dict[bytes, bytes] = {}
        block = blake3.blake3(b"wide %d" % d).digest(length=4096 * WIDE_FILES)
        entries = [_file_entry(repo, staged, f"f{i:04d}", block[i * 4096:(i + 1) * 4096])
                   for i in range(min(WIDE_FILES, chunks - d))]
        tree = _put(repo, staged, TREE, Tree(entries).encode())
        dirs.append(TreeEntry(f"d{d // WIDE_FILES:04d}", encoding.DIR, 0o755, 4096 * len(entries), id=tree))
        repo.db.write(lambda txn, staged=staged: repo.objects.put_values(txn, staged.items()))
    staged = {}
    root = _put(repo, staged, TREE, Tree(dirs).encode())
    commit = _put(repo, staged, COMMIT, Commit(root, [], "bench@scale", 1_700_000_000, "wide", {}).encode())

    def land(txn):
        repo.objects.put_values(txn, staged.items())
        repo.refs.set_if_equals(txn, "models/m/main", None, commit, who="bench@scale", message="commit")
    repo.db.write(land)
    repo.close()


def full_push_costs(chunks: int, kinds: list[str]) -> None:
    """Time and peak RSS of ``casreg push`` (a whole process) of a build_wide store of ``chunks``
    chunks to a fresh remote of each kind, then of ``verify --remote --full``, ``gc --remote
    --dry-run`` and ``casreg clone`` of it: memory must not follow the store's size."""
    from transfer import remote_urls
    casreg = CLI
    with tempfile.TemporaryDirectory(prefix="casreg-scale-full-") as work:
        store = os.path.join(work, "store")
        start = time.perf_counter()
        build_wide(store, chunks)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(store) for f in fs)
        print(f"full push of {chunks} chunks ({size / 1e6:.0f} MB store, built in "
              f"{time.perf_counter() - start:.0f} s):", flush=True)
        for kind, url, cleanup in remote_urls(kinds, work):
            env = dict(os.environ, PYTHONPATH=ROOT)  # with what remote_urls set (COS's keys)
            try:
                repo = Repository.open(store)
                ops.config(repo).add(kind, url)
                repo.close()
                open_backend(url, create=True).close()
                took, rss = timed_child([*casreg, "--store", store, "push", kind, "models/m/main"], env=env)
                print(f"  push to {kind:5}: {took:6.1f} s, {size / took / 1e6:5.0f} MB/s, peak RSS {rss >> 20:4d} MB",
                      flush=True)
                for label, args in (("verify --full", ["verify", "--remote", kind, "--full"]),
                                    ("gc --dry-run", ["gc", "--remote", kind, "--dry-run"])):
                    took, rss = timed_child([*casreg, "--store", store, *args], env=env)
                    print(f"  {label} of {kind:5}: {took:6.1f} s, peak RSS {rss >> 20:4d} MB", flush=True)
                clone = os.path.join(work, f"clone-{kind}")
                took, rss = timed_child([*casreg, "clone", url, clone], env=env)
                print(f"  clone of {kind:5}: {took:6.1f} s, {size / took / 1e6:5.0f} MB/s, peak RSS {rss >> 20:4d} MB",
                      flush=True)
                shutil.rmtree(clone)
            finally:
                cleanup()


def git_push_on_history(work: str, n: int) -> float | None:
    """git pushing one new commit on top of n it pushed before (build_git_history's shape)."""
    if shutil.which("git") is None:
        return None
    src, dst = os.path.join(work, f"g{n}.git"), os.path.join(work, f"g{n}-remote.git")
    build_git_history(src, n)
    subprocess.run(["git", "init", "-q", "--bare", dst], check=True)
    subprocess.run(["git", "--git-dir", src, "push", "-q", dst, "main"], check=True, capture_output=True)
    weights = (b"%08d" % n) * 128
    stream = (b"commit refs/heads/main\ncommitter b <b@x> %d +0000\ndata 3\nnew\nfrom refs/heads/main^0\n"
              b"M 644 inline w.bin\ndata %d\n%s\n\n" % (1_700_000_000 + n, len(weights), weights))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=src, input=stream, check=True)
    start = time.perf_counter()
    subprocess.run(["git", "--git-dir", src, "push", "-q", dst, "main"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500", help="history lengths (comma separated)")
    parser.add_argument("--refs", default="100,1000", help="ref counts for push --all (comma separated)")
    parser.add_argument("--history", default="", help="version counts for the read commands (comma separated)")
    parser.add_argument("--remotes", default="", help="remote kinds (file,redis,mysql,cos) for the push of one "
                                                      "version on --remote-sizes versions")
    parser.add_argument("--remote-sizes", default="100,10000")
    parser.add_argument("--full-push", type=int, default=0, metavar="CHUNKS",
                        help="time and peak RSS of a full push of a store of CHUNKS chunks to each --remotes kind")
    args = parser.parse_args()
    installed_bytecode()
    if args.full_push:
        full_push_costs(args.full_push, (args.remotes or "file,redis,mysql,cos").split(","))
        return
    if args.remotes:
        remote_push_costs([int(x) for x in args.remote_sizes.split(",")], args.remotes.split(","))
        return
    if args.history:
        for n in [int(x) for x in args.history.split(",")]:
            history_costs(n)
        return
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
