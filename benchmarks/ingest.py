"""Commit, restore and verify the checkpoint corpus; compare with borg, restic and hf-xet in the same run.

    python benchmarks/ingest.py [--no-peers] [--big-gib 2] [--work DIR] [--sections casreg,peers,tree,series]

Prints MB/s for: commit of new data, commit of already-stored data, checkout, verify --full;
stored bytes vs logical; peak RSS of a commit and a checkout of one large file (CLI subprocess);
`casreg --help` start-up time. Where `borg` (1.2, zstd,3) and `restic` are installed it runs them on
the same corpus and prints the ratios against the targets of issue #2; hf-xet (the Hugging Face
Hub's client, PyPI ``hf-xet``) runs beside them offline against a ``local://`` endpoint.
Sections ``tree`` and ``series`` (issue #17) put casreg, borg and hf-xet side by side, as whole
processes, on one 5-checkpoint tree committed by one invocation and on a 12-version series
committed one version at a time; every "stored" figure is the whole directory on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks import corpus, installed_bytecode  # noqa: E402

MB = 1e6
NEW_DATA_VERSIONS = ("v00-base", "v04-full", "v05-full", "v06-full")  # versions with no chunk in common
DELTA_VERSIONS = ("v04-full", "v05-full", "v06-full")  # stored as deltas with --codec delta


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs
               if not os.path.islink(os.path.join(r, f)))


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_child(cmd: list[str], env=None, cwd=None) -> tuple[float, int]:
    """(seconds, peak RSS bytes) of a child process; raises if it fails.

    Peak RSS is the child's own high-water mark (VmHWM, polled every 20 ms): getrusage's
    ru_maxrss would also count the RSS this (large) benchmark process had when it forked.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _vm_hwm(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-500:]}")
    return elapsed, peak


# -- casreg --------------------------------------------------------------------------------------
def new_data_rates(dirs: list[str], work: str, codecs: tuple[str, ...], runs: int = 5) -> dict[str, float]:
    """MB/s of committing the versions that share no chunk into a fresh store, per codec: the
    median over ``runs`` rounds, the codecs taking turns within each round, so that a slower
    spell of this shared VM costs every codec alike."""
    from casreg.repo import Repository
    new = [d for d in dirs if os.path.basename(d) in NEW_DATA_VERSIONS]
    rates: dict[str, list[float]] = {c: [] for c in codecs}
    for _ in range(runs):
        for codec_name in codecs:
            store = os.path.join(work, f"casreg-new-{codec_name}")
            shutil.rmtree(store, ignore_errors=True)
            with Repository.init(store, codec_name=codec_name) as repo:
                seconds, _ = timed(lambda: [repo.commit(d, f"n/{os.path.basename(d)}") for d in new])
                rates[codec_name].append(sum(map(dir_size, new)) / seconds / MB)
            shutil.rmtree(store)
    return {c: sorted(r)[len(r) // 2] for c, r in rates.items()}


def delta_checkout_rates(dirs: list[str], work: str, runs: int = 3) -> dict[str, float]:
    """MB/s of checking out the versions that the delta codec stores as deltas, from a plain zstd
    store and from a delta store in turn (median over ``runs`` rounds)."""
    from casreg.repo import Repository
    repos = {}
    for codec_name in ("zstd", "delta"):
        store = os.path.join(work, f"casreg-checkout-{codec_name}")
        shutil.rmtree(store, ignore_errors=True)
        repos[codec_name] = repo = Repository.init(store, codec_name=codec_name)
        for d in dirs:
            repo.commit(d, f"bench/{os.path.basename(d)}")
    rates: dict[str, list[float]] = {c: [] for c in repos}
    versions = [d for d in dirs if os.path.basename(d) in DELTA_VERSIONS]
    for _ in range(runs):
        for codec_name, repo in repos.items():
            seconds = 0.0
            for d in versions:
                dest = os.path.join(work, "restore-pair", os.path.basename(d))
                shutil.rmtree(dest, ignore_errors=True)
                os.sync()
                seconds += timed(repo.checkout, f"bench/{os.path.basename(d)}", dest)[0]
            rates[codec_name].append(sum(map(dir_size, versions)) / seconds / MB)
    for codec_name, repo in repos.items():
        repo.close()
        shutil.rmtree(os.path.join(work, f"casreg-checkout-{codec_name}"))
    shutil.rmtree(os.path.join(work, "restore-pair"), ignore_errors=True)
    return {c: sorted(r)[len(r) // 2] for c, r in rates.items()}


def bench_casreg(dirs: list[str], work: str, codec_name: str = "zstd") -> dict:
    from casreg.repo import Repository
    store = os.path.join(work, f"casreg-store-{codec_name}")
    shutil.rmtree(store, ignore_errors=True)
    repo = Repository.init(store, codec_name=codec_name)
    rows = []
    for d in dirs:
        name = os.path.basename(d)
        seconds, result = timed(repo.commit, d, f"bench/{name}", message=name)
        rows.append((name, result.logical_bytes, seconds, result.new_stored_bytes))
    logical = sum(r[1] for r in rows)
    again_time = 0.0
    for d in dirs:
        seconds, _ = timed(repo.commit, d, f"again/{os.path.basename(d)}")
        again_time += seconds
    checkout_times = []
    for d in dirs:
        dest = os.path.join(work, "restore", os.path.basename(d))
        shutil.rmtree(dest, ignore_errors=True)
        os.sync()  # start each timed restore with no earlier writeback pending (same for borg)
        seconds, _ = timed(repo.checkout, f"bench/{os.path.basename(d)}", dest)
        checkout_times.append(seconds)
        assert subprocess.run(["diff", "-r", "-q", d, dest]).returncode == 0, f"restore of {d} differs"
    shutil.rmtree(os.path.join(work, "restore"), ignore_errors=True)
    checkout_time = sum(checkout_times)
    rows = [row + (t,) for row, t in zip(rows, checkout_times)]
    verify_time, problems = timed(repo.verify, full=True)
    assert not problems, problems
    stats = repo.stats()
    repo.close()
    disk = dir_size(store)  # the whole store directory, caches included (borg's, hf-xet's likewise)
    shutil.rmtree(store)
    return {
        "rows": rows, "logical": logical, "stored": stats["stored_bytes"], "disk": disk,
        "again_mbps": logical / again_time / MB,
        "checkout_mbps": logical / checkout_time / MB,
        "verify_mbps": stats["unique_chunk_bytes"] / verify_time / MB, "stats": stats,
    }


def bench_big_file(work: str, gib: float) -> dict:
    """Peak RSS of CLI commit and checkout of one large file (streaming: must not grow with size)."""
    import blake3
    size = int(gib * (1 << 30))
    src = os.path.join(work, "big", "big.bin")
    os.makedirs(os.path.dirname(src), exist_ok=True)
    if not os.path.exists(src) or os.path.getsize(src) != size:
        xof = blake3.blake3(b"big")
        with open(src, "wb") as f:
            for off in range(0, size, 64 << 20):
                f.write(xof.digest(length=min(64 << 20, size - off), seek=off))
    store = os.path.join(work, "big-store")
    shutil.rmtree(store, ignore_errors=True)
    cli = [sys.executable, "-m", "casreg.cli", "--store", store]
    env = dict(os.environ, PYTHONPATH=ROOT)
    run_child(cli + ["init"], env)
    commit_s, commit_rss = run_child(cli + ["commit", src, "--ref", "big/v1"], env)
    dest = os.path.join(work, "big-out")
    shutil.rmtree(dest, ignore_errors=True)
    checkout_s, checkout_rss = run_child(cli + ["checkout", "big/v1", dest], env)
    shutil.rmtree(dest)
    shutil.rmtree(store)
    return {"size": size, "commit_s": commit_s, "commit_rss": commit_rss,
            "checkout_s": checkout_s, "checkout_rss": checkout_rss}


def bench_help() -> float:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return min(run_child([sys.executable, "-m", "casreg.cli", "--help"], env)[0] for _ in range(5))


# -- peers ---------------------------------------------------------------------------------------
def bench_borg(dirs: list[str], work: str) -> dict | None:
    if not shutil.which("borg"):
        return None
    repo = os.path.join(work, "borg-repo")
    shutil.rmtree(repo, ignore_errors=True)
    env = dict(os.environ, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
               BORG_BASE_DIR=os.path.join(work, "borg-base"))
    rates = []
    for run in range(3):  # median of three fresh repositories, as for casreg
        shutil.rmtree(repo, ignore_errors=True)
        run_child(["borg", "init", "--encryption=none", repo], env)
        new_time = new_bytes = 0.0
        for d in dirs if run == 0 else [d for d in dirs if os.path.basename(d) in NEW_DATA_VERSIONS]:
            seconds, _ = run_child(["borg", "create", "--compression", "zstd,3",
                                    f"{repo}::{os.path.basename(d)}", "."], env, cwd=d)
            if os.path.basename(d) in NEW_DATA_VERSIONS:
                new_time += seconds
                new_bytes += dir_size(d)
        rates.append(new_bytes / new_time / MB)
        if run == 0:
            stored = dir_size(repo)
    dest = os.path.join(work, "borg-out")
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    os.sync()
    last = [d for d in dirs if os.path.basename(d) in NEW_DATA_VERSIONS][-1]
    checkout_s, _ = run_child(["borg", "extract", f"{repo}::{os.path.basename(last)}"], env, cwd=dest)
    shutil.rmtree(dest)
    return {"new_mbps": sorted(rates)[1], "stored": stored, "checkout_mbps": dir_size(last) / checkout_s / MB}


def bench_restic(dirs: list[str], work: str) -> dict | None:
    if not shutil.which("restic"):
        return None
    repo = os.path.join(work, "restic-repo")
    shutil.rmtree(repo, ignore_errors=True)
    env = dict(os.environ, RESTIC_PASSWORD="bench", RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"))
    run_child(["restic", "-r", repo, "init", "--repository-version", "2"], env)
    new_time = new_bytes = 0.0
    for d in dirs:
        seconds, _ = run_child(["restic", "-r", repo, "backup", "--compression", "auto", "."], env, cwd=d)
        if os.path.basename(d) in NEW_DATA_VERSIONS:
            new_time += seconds
            new_bytes += dir_size(d)
    return {"new_mbps": new_bytes / new_time / MB, "stored": dir_size(repo)}


# hf-xet: the Hub's client, in a child process per upload or download (as borg), offline against
# a local:// endpoint: the CAS (xorbs, shards, dedup index) is a directory, counted whole with the
# client's own cache dir (HF_HOME) and the per-version manifest (what a Hub commit would point at).
XET_CHILD = r"""
import json, os, sys
import hf_xet
op, endpoint, manifest, tree = sys.argv[1:5]
if op == "upload":
    paths = sorted(os.path.join(r, f) for r, _, fs in os.walk(tree) for f in fs)
    infos = hf_xet.upload_files(paths, endpoint, None, None, None, "model")
    with open(manifest, "w") as out:
        json.dump({os.path.relpath(p, tree): [i.hash, i.file_size] for p, i in zip(paths, infos)}, out)
else:
    with open(manifest) as f:
        files = json.load(f)
    for rel in files:
        os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
    hf_xet.download_files([hf_xet.PyXetDownloadInfo(os.path.join(tree, rel), h, n) for rel, (h, n) in files.items()],
                          endpoint, None, None, None)
"""


class HfXet:
    """One hf-xet "repository": a local:// CAS directory, a client home, a manifest per version."""

    def __init__(self, root: str):
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(os.path.join(root, "cas"))
        os.makedirs(os.path.join(root, "home"))
        os.makedirs(os.path.join(root, "manifests"))
        self.root = root
        self.endpoint = "local://" + os.path.join(root, "cas")
        self.env = dict(os.environ, HF_HOME=os.path.join(root, "home"), HF_HUB_OFFLINE="1")

    def _run(self, op: str, name: str, tree: str) -> float:
        manifest = os.path.join(self.root, "manifests", name + ".json")
        return run_child([sys.executable, "-c", XET_CHILD, op, self.endpoint, manifest, tree], self.env)[0]

    def upload(self, name: str, tree: str) -> float:
        return self._run("upload", name, tree)

    def download(self, name: str, dest: str) -> float:
        return self._run("download", name, dest)

    def size(self) -> int:
        return dir_size(self.root)


def have_hfxet() -> bool:
    try:
        import hf_xet  # noqa: F401
    except ImportError:
        return False
    return True


def bench_hfxet(dirs: list[str], work: str) -> dict | None:
    """As ``bench_borg``: upload of the versions sharing no chunk (median of 3 fresh endpoints, the
    first holding every version, for the size), download of the last of them."""
    if not have_hfxet():
        return None
    new = [d for d in dirs if os.path.basename(d) in NEW_DATA_VERSIONS]
    rates = []
    for run in range(3):
        xet = HfXet(os.path.join(work, "hfxet"))
        new_time = 0.0
        for d in dirs if run == 0 else new:
            seconds = xet.upload(os.path.basename(d), d)
            if d in new:
                new_time += seconds
        rates.append(sum(map(dir_size, new)) / new_time / MB)
        if run == 0:
            stored = xet.size()
    dest = os.path.join(work, "hfxet-out")
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    seconds = xet.download(os.path.basename(new[-1]), dest)
    assert subprocess.run(["diff", "-r", "-q", new[-1], dest]).returncode == 0, "hf-xet download differs"
    shutil.rmtree(dest)
    shutil.rmtree(xet.root)
    return {"new_mbps": sorted(rates)[1], "stored": stored, "checkout_mbps": dir_size(new[-1]) / seconds / MB}


# -- tree and series: casreg, borg, hf-xet as whole processes, side by side (issue #17) --------------
TREE_VERSIONS = ("v00-base", "v01-frozen", "v02-frozen", "v04-full")


def build_tree(dirs: list[str], work: str) -> str:
    """One directory holding 5 checkpoints as subdirectories: the base, two frozen-backbone steps,
    a full fine-tune step (hard links to the corpus) and that step shifted (152 bytes added to its
    safetensors header, so every tensor moves: CDC finds it again, fixed-size blocks would not)."""
    tree = os.path.join(work, "tree-src")
    shutil.rmtree(tree, ignore_errors=True)
    for d in dirs:
        if os.path.basename(d) in TREE_VERSIONS:
            shutil.copytree(d, os.path.join(tree, os.path.basename(d)), copy_function=os.link)
    full = os.path.join(tree, TREE_VERSIONS[-1])
    tensors = corpus._load(os.path.join(full, "model.safetensors"))
    corpus._save(os.path.join(tree, "v04-shifted"), full, tensors, metadata={"note": "x" * 152})
    return tree


def build_series(out: str) -> list[str]:
    """12 versions in the corpus's way (corpus.py): the base, 3 frozen-backbone steps, 7 full
    fine-tune steps, the last with 152 bytes added to its header; cached in ``out``."""
    import numpy as np
    names = ["v00-base"] + [f"v{i:02}-frozen" for i in range(1, 4)] + [f"v{i:02}-full" for i in range(4, 11)] + [
        "v11-inserted"]
    dirs = [os.path.join(out, n) for n in names]
    if all(os.path.isdir(d) for d in dirs):
        return dirs
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = corpus.model_dir()
    shutil.copytree(src, dirs[0])
    tensors = corpus._load(os.path.join(src, "model.safetensors"))
    rng = np.random.default_rng(20261123)
    for d in dirs[1:4]:
        tensors = corpus._step(tensors, rng, 1e-3, only=corpus.FROZEN_PREFIXES)
        corpus._save(d, src, tensors)
    for d in dirs[4:11]:
        tensors = corpus._step(tensors, rng, 1e-4)
        corpus._save(d, src, tensors)
    corpus._save(dirs[11], src, tensors, metadata={"note": "x" * 152})
    return dirs


class Peer:
    """A tool that stores versions of a directory in a store directory (whole processes)."""
    name = ""

    def __init__(self, root: str):
        self.root = root

    def commit(self, name: str, tree: str) -> float:
        raise NotImplementedError

    def checkout(self, name: str, dest: str) -> float:
        raise NotImplementedError

    def size(self) -> int:
        return dir_size(self.root)


class CasregPeer(Peer):
    def __init__(self, root: str, codec: str | None = None):
        super().__init__(root)
        self.name = f"casreg{' --codec ' + codec if codec else ''}"
        shutil.rmtree(root, ignore_errors=True)
        self.cli = [sys.executable, "-m", "casreg.cli", "--store", os.path.join(root, ".casreg")]
        self.env = dict(os.environ, PYTHONPATH=ROOT)
        run_child(self.cli + ["init"] + (["--codec", codec] if codec else []), self.env)

    def commit(self, name, tree):  # one ref: each commit's parent is the one before
        return run_child(self.cli + ["commit", tree, "--ref", "series", "-m", name], self.env)[0]

    def checkout(self, name, dest):
        if not hasattr(self, "versions"):  # message -> version id (not timed)
            log = subprocess.run(self.cli + ["log", "series", "--json"], env=self.env, check=True,
                                 capture_output=True, text=True).stdout
            self.versions = {v["message"]: v["id"] for v in json.loads(log)}
        return run_child(self.cli + ["checkout", self.versions[name], dest], self.env)[0]


class BorgPeer(Peer):
    name = "borg (zstd,3)"

    def __init__(self, root: str):
        super().__init__(root)
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root)
        self.repo = os.path.join(root, "repo")
        self.env = dict(os.environ, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                        BORG_RELOCATED_REPO_ACCESS_IS_OK="yes", BORG_BASE_DIR=os.path.join(root, "base"))
        run_child(["borg", "init", "--encryption=none", self.repo], self.env)

    def commit(self, name, tree):
        return run_child(["borg", "create", "--compression", "zstd,3", f"{self.repo}::{name}", "."], self.env,
                         cwd=tree)[0]

    def checkout(self, name, dest):
        os.makedirs(dest)
        return run_child(["borg", "extract", f"{self.repo}::{name}"], self.env, cwd=dest)[0]


class XetPeer(Peer):
    name = "hf-xet"

    def __init__(self, root: str):
        super().__init__(root)
        self.xet = HfXet(root)

    def commit(self, name, tree):
        return self.xet.upload(name, tree)

    def checkout(self, name, dest):
        return self.xet.download(name, dest)


def peers(work: str, tag: str, codecs=(None,)) -> list:
    out: list[Peer] = [CasregPeer(os.path.join(work, f"{tag}-casreg-{c or 'default'}"), c) for c in codecs]
    if shutil.which("borg"):
        out.append(BorgPeer(os.path.join(work, f"{tag}-borg")))
    if have_hfxet():
        out.append(XetPeer(os.path.join(work, f"{tag}-hfxet")))
    return out


def timed_checkout(peer: Peer, name: str, src: str, work: str) -> float:
    dest = os.path.join(work, "peer-out")
    shutil.rmtree(dest, ignore_errors=True)
    os.sync()
    seconds = peer.checkout(name, dest)
    assert subprocess.run(["diff", "-r", "-q", src, dest]).returncode == 0, f"{peer.name}: {name} differs"
    shutil.rmtree(dest)
    return seconds


def bench_tree(dirs: list[str], work: str, rounds: int = 3) -> None:
    """The 5-checkpoint tree by one invocation each, ``rounds`` fresh stores per tool, the tools
    taking turns within a round; medians (the spread printed beside them)."""
    tree = build_tree(dirs, work)
    size = dir_size(tree)
    results: dict[str, dict[str, list]] = {}
    for _ in range(rounds):
        for peer in peers(work, "tree"):
            r = results.setdefault(peer.name, {"commit": [], "checkout": [], "stored": []})
            r["commit"].append(peer.commit("tree", tree))
            r["stored"].append(peer.size())
            r["checkout"].append(timed_checkout(peer, "tree", tree, work))
            shutil.rmtree(peer.root)
    shutil.rmtree(tree)
    print(f"\ntree: {len(TREE_VERSIONS) + 1} checkpoints in one directory, {size / MB:.0f} MB, one invocation each, "
          f"{rounds} rounds (median, min-max)")
    print("  tool                commit s          MB/s   checkout s        MB/s   stored MB")
    med = {n: {k: sorted(v)[len(v) // 2] for k, v in r.items()} for n, r in results.items()}
    for name, r in results.items():
        m = med[name]
        print(f"  {name:18} {m['commit']:6.2f} ({min(r['commit']):.2f}-{max(r['commit']):.2f}) {size / MB / m['commit']:5.0f}"
              f"   {m['checkout']:6.2f} ({min(r['checkout']):.2f}-{max(r['checkout']):.2f}) {size / MB / m['checkout']:5.0f}"
              f"   {m['stored'] / MB:9.1f}")
    _ratios(med, "commit", "checkout")


def _ratios(med: dict, *keys: str) -> None:
    mine = med.get("casreg") or med[next(iter(med))]
    for name, m in med.items():
        if name.startswith("casreg"):
            continue
        print(f"  casreg / {name}: " + ", ".join(f"{k} {m[k] / mine[k]:.2f}x as fast" for k in keys)
              + f", stored {mine['stored'] / m['stored']:.3f}x")


def bench_series(work: str) -> None:
    """12 versions committed one at a time (each on top of the one before), by each tool into its
    own store; the whole store directory after each; checkout of every version."""
    dirs = build_series(os.path.join(work, "series12"))
    logical = sum(map(dir_size, dirs))
    tools = peers(work, "series", codecs=(None, "zstd"))  # the default is delta
    print(f"\nseries: {len(dirs)} versions committed one at a time, {logical / MB:.0f} MB in all")
    print("  tool                commit s   MB/s   checkout s   MB/s   stored MB  stored/logical")
    med = {}
    for peer in tools:
        commit_s = sum(peer.commit(os.path.basename(d), d) for d in dirs)
        stored = peer.size()
        checkout_s = sum(timed_checkout(peer, os.path.basename(d), d, work) for d in dirs)
        med[peer.name] = {"commit": commit_s, "checkout": checkout_s, "stored": stored}
        print(f"  {peer.name:18} {commit_s:9.2f} {logical / MB / commit_s:6.0f} {checkout_s:11.2f} "
              f"{logical / MB / checkout_s:6.0f} {stored / MB:11.1f} {stored / logical:15.3f}")
        shutil.rmtree(peer.root)
    _ratios(med, "commit", "checkout")
    bound = series_bound(dirs)
    print(f"  a bound: {bound / MB:.1f} MB (v00's weights byte-grouped, then each version's order-0 entropy of "
          "its weights' ulp differences from the version before)")
    if "borg (zstd,3)" in med:
        borg = med["borg (zstd,3)"]["stored"]
        for name in [n for n in med if n.startswith("casreg")]:
            r = med[name]["stored"] / borg
            print(f"  {name} / borg stored: {r:.3f}  (target <= 0.5)  {verdict(r <= 0.5)}")
        print(f"  bound / borg stored: {bound / borg:.3f}")


def series_bound(dirs: list[str]) -> float:
    """About the least any codec that stores each weight given its previous value can take for
    the series' weights (the other files are a few hundred KB): the first version's weights in
    byte planes (casreg's grouped codec), then for each later version the order-0 entropy of
    every float tensor's zigzagged integer differences from the version before (the noise of a
    training step carries that much; tensors that did not move cost nothing)."""
    import numpy as np

    from casreg.objects import codec
    from casreg.objects.delta import ulp_forward
    first = open(os.path.join(dirs[0], "model.safetensors"), "rb").read()
    total = sum(len(codec.encode(first[i:i + (64 << 10)], grouping=True)[1]) for i in range(0, len(first), 64 << 10))
    before = corpus._load(os.path.join(dirs[0], "model.safetensors"))
    for d in dirs[1:]:
        now = corpus._load(os.path.join(d, "model.safetensors"))
        for name, t in now.items():
            if t.dtype != np.float32 or np.array_equal(t, before[name]):
                continue
            diff = np.ascontiguousarray(t).view(np.uint8).copy()
            ulp_forward(diff, np.ascontiguousarray(before[name]).view(np.uint8), 4, 0)
            _, counts = np.unique(diff.view(np.uint32), return_counts=True)
            p = counts / counts.sum()
            total += float(-(p * np.log2(p)).sum()) * t.size / 8
        before = now
    return total


# -- report --------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_rows(title: str, c: dict) -> None:
    print(f"\n{title}, per version:  logical MB  commit s  commit MB/s  new stored MB  checkout MB/s")
    for name, logical, seconds, new, co_seconds in c["rows"]:
        print(f"  {name:18} {logical / MB:10.1f} {seconds:9.3f} {logical / MB / seconds:12.0f} {new / MB:14.1f}"
              f" {logical / MB / co_seconds:14.0f}")


def report_casreg(dirs: list[str], args) -> tuple[dict, dict, dict]:
    """casreg alone: its three codecs on the corpus, the large file, start-up."""
    new_mbps = new_data_rates(dirs, args.work, ("zstd", "grouped", "delta"))
    c = bench_casreg(dirs, args.work)
    c["new_mbps"] = new_mbps["zstd"]
    print_rows("casreg", c)
    print(f"\ncommit, new data:          {c['new_mbps']:7.0f} MB/s   (median of 5 fresh stores, codecs in turn)")
    print(f"commit, already stored:    {c['again_mbps']:7.0f} MB/s   (target >= 1500)  {verdict(c['again_mbps'] >= 1500)}")
    print(f"checkout:                  {c['checkout_mbps']:7.0f} MB/s   (target >= 1000)  {verdict(c['checkout_mbps'] >= 1000)}")
    print(f"verify --full:             {c['verify_mbps']:7.0f} MB/s")
    print(f"stored / logical:          {c['stored'] / MB:.1f} / {c['logical'] / MB:.1f} MB = {c['stored'] / c['logical']:.3f} "
          f"(dedup {c['stats']['dedup_ratio']}x, compression {c['stats']['compression_ratio']}x); "
          f"directory on disk {c['disk'] / MB:.1f} MB")

    g = bench_casreg(dirs, args.work, "grouped")
    g["new_mbps"] = new_mbps["grouped"]
    print(f"\nwith --codec grouped (byte-grouped floats): stored {g['stored'] / MB:.1f} MB = "
          f"{g['stored'] / c['stored']:.3f}x of plain zstd; commit new "
          f"{g['new_mbps']:.0f} MB/s ({g['new_mbps'] / c['new_mbps']:.2f}x), checkout {g['checkout_mbps']:.0f} MB/s "
          f"({g['checkout_mbps'] / c['checkout_mbps']:.2f}x), already stored {g['again_mbps']:.0f} MB/s")
    d = bench_casreg(dirs, args.work, "delta")
    d["new_mbps"] = new_mbps["delta"]
    print_rows("with --codec delta (grouped + checkpoint deltas)", d)
    paired = delta_checkout_rates(dirs, args.work)
    delta_checkout = paired["delta"]
    print(f"  stored {d['stored'] / MB:.1f} MB = {d['stored'] / c['stored']:.3f}x of plain zstd (target <= 0.8)  "
          f"{verdict(d['stored'] <= 0.8 * c['stored'])}")
    print(f"  commit new data {d['new_mbps']:.0f} MB/s = {d['new_mbps'] / c['new_mbps']:.2f}x of plain zstd "
          f"(target >= 1)  {verdict(d['new_mbps'] >= c['new_mbps'])}")
    print(f"  checkout of the delta versions {delta_checkout:.0f} MB/s (target >= 1000)  {verdict(delta_checkout >= 1000)}; "
          f"{delta_checkout / paired['zstd']:.2f}x of the same versions from plain zstd (taking turns, "
          f"{paired['zstd']:.0f} MB/s); all versions {d['checkout_mbps']:.0f} MB/s "
          f"({d['checkout_mbps'] / c['checkout_mbps']:.2f}x of plain zstd)")

    if args.big_gib:
        b = bench_big_file(args.work, args.big_gib)
        print(f"\nlarge file {b['size'] / (1 << 30):.1f} GiB via CLI: commit {b['size'] / MB / b['commit_s']:.0f} MB/s, "
              f"peak RSS {b['commit_rss'] / MB:.0f} MB; checkout {b['size'] / MB / b['checkout_s']:.0f} MB/s, "
              f"peak RSS {b['checkout_rss'] / MB:.0f} MB   (target < 300 MB)  "
              f"{verdict(max(b['commit_rss'], b['checkout_rss']) < 300 * MB)}")
    print(f"casreg --help:             {bench_help() * 1000:7.0f} ms     (target < 200)  ")
    return c, g, d


def main() -> None:
    parser = argparse.ArgumentParser(description="casreg ingest benchmark")
    parser.add_argument("--work", default=os.path.join(HERE, ".work"))
    parser.add_argument("--no-peers", action="store_true", help="skip borg, restic and hf-xet on the corpus")
    parser.add_argument("--big-gib", type=float, default=2.0, help="size of the large-file RSS case (0: skip)")
    parser.add_argument("--sections", default="casreg,peers,tree,series",
                        help="which parts to run: casreg (its codecs, the large file), peers (borg, restic, "
                             "hf-xet on the corpus), tree, series (casreg, borg, hf-xet side by side)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    os.makedirs(args.work, exist_ok=True)
    installed_bytecode()
    dirs = corpus.build()
    print(f"corpus: {len(dirs)} versions of all-MiniLM-L6-v2 ({sum(map(dir_size, dirs)) / MB:.0f} MB), "
          f"{os.cpu_count()} cores")

    c: dict = {}
    if "casreg" in sections:
        c, g, d = report_casreg(dirs, args)

    if "peers" in sections and not args.no_peers:
        borg = bench_borg(dirs, args.work)
        restic = bench_restic(dirs, args.work)
        xet = bench_hfxet(dirs, args.work)
        if borg:
            print(f"\nborg 1.2 (zstd,3): commit new data {borg['new_mbps']:.0f} MB/s, stored {borg['stored'] / MB:.1f} MB, "
                  f"extract {borg['checkout_mbps']:.0f} MB/s")
        if borg and c:
            ratio = c["new_mbps"] / borg["new_mbps"]
            print(f"  casreg / borg commit of new data: {ratio:.2f}x  (target >= 3)  {verdict(ratio >= 3)}")
            sratio = c["disk"] / borg["stored"]  # both: the whole directory on disk
            print(f"  casreg / borg on disk:            {sratio:.3f}  (target <= 1)  {verdict(sratio <= 1)}")
            print(f"  casreg grouped / borg on disk:    {g['disk'] / borg['stored']:.3f}")
            dratio = d["disk"] / borg["stored"]
            print(f"  casreg delta / borg on disk:      {dratio:.3f}  (target <= 0.65)  {verdict(dratio <= 0.65)}")
        if not borg:
            print("\nborg not installed (apt-get install borgbackup): no comparison")
        if restic:
            print(f"restic (compression auto): commit new data {restic['new_mbps']:.0f} MB/s, "
                  f"stored {restic['stored'] / MB:.1f} MB"
                  + (f"  -> casreg/restic throughput {c['new_mbps'] / restic['new_mbps']:.2f}x, "
                     f"on disk {c['disk'] / restic['stored']:.3f}" if c else ""))
        else:
            print("restic not installed (apt-get install restic): no comparison")

        if xet:
            print(f"hf-xet (local:// endpoint): commit new data {xet['new_mbps']:.0f} MB/s, stored {xet['stored'] / MB:.1f} MB, "
                  f"download {xet['checkout_mbps']:.0f} MB/s"
                  + (f"  -> casreg/hf-xet throughput {c['new_mbps'] / xet['new_mbps']:.2f}x, "
                     f"on disk {c['disk'] / xet['stored']:.3f}" if c else ""))
        else:
            print("hf-xet not installed (pip install hf-xet): no comparison")
    if "tree" in sections:
        bench_tree(dirs, args.work)
    if "series" in sections:
        bench_series(args.work)


if __name__ == "__main__":
    main()
