"""Commit, restore and verify the checkpoint corpus; compare with borg and restic in the same run.

    python benchmarks/ingest.py [--no-peers] [--big-gib 2] [--work DIR]

Prints MB/s for: commit of new data, commit of already-stored data, checkout, verify --full;
stored bytes vs logical; peak RSS of a commit and a checkout of one large file (CLI subprocess);
`casreg --help` start-up time. Where `borg` (1.2, zstd,3) and `restic` are installed it runs them on
the same corpus and prints the ratios against the targets of issue #2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks import corpus  # noqa: E402

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
    shutil.rmtree(store)
    return {
        "rows": rows, "logical": logical, "stored": stats["stored_bytes"],
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


# -- report --------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_rows(title: str, c: dict) -> None:
    print(f"\n{title}, per version:  logical MB  commit s  commit MB/s  new stored MB  checkout MB/s")
    for name, logical, seconds, new, co_seconds in c["rows"]:
        print(f"  {name:18} {logical / MB:10.1f} {seconds:9.3f} {logical / MB / seconds:12.0f} {new / MB:14.1f}"
              f" {logical / MB / co_seconds:14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="casreg ingest benchmark")
    parser.add_argument("--work", default=os.path.join(HERE, ".work"))
    parser.add_argument("--no-peers", action="store_true", help="skip borg and restic")
    parser.add_argument("--big-gib", type=float, default=2.0, help="size of the large-file RSS case (0: skip)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    dirs = corpus.build()
    print(f"corpus: {len(dirs)} versions of all-MiniLM-L6-v2 ({sum(map(dir_size, dirs)) / MB:.0f} MB), "
          f"{os.cpu_count()} cores")

    new_mbps = new_data_rates(dirs, args.work, ("zstd", "grouped", "delta"))
    c = bench_casreg(dirs, args.work)
    c["new_mbps"] = new_mbps["zstd"]
    print_rows("casreg", c)
    print(f"\ncommit, new data:          {c['new_mbps']:7.0f} MB/s   (median of 5 fresh stores, codecs in turn)")
    print(f"commit, already stored:    {c['again_mbps']:7.0f} MB/s   (target >= 1500)  {verdict(c['again_mbps'] >= 1500)}")
    print(f"checkout:                  {c['checkout_mbps']:7.0f} MB/s   (target >= 1000)  {verdict(c['checkout_mbps'] >= 1000)}")
    print(f"verify --full:             {c['verify_mbps']:7.0f} MB/s")
    print(f"stored / logical:          {c['stored'] / MB:.1f} / {c['logical'] / MB:.1f} MB = {c['stored'] / c['logical']:.3f} "
          f"(dedup {c['stats']['dedup_ratio']}x, compression {c['stats']['compression_ratio']}x)")

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

    if not args.no_peers:
        borg = bench_borg(dirs, args.work)
        restic = bench_restic(dirs, args.work)
        if borg:
            print(f"\nborg 1.2 (zstd,3): commit new data {borg['new_mbps']:.0f} MB/s, stored {borg['stored'] / MB:.1f} MB, "
                  f"extract {borg['checkout_mbps']:.0f} MB/s")
            ratio = c["new_mbps"] / borg["new_mbps"]
            print(f"  casreg / borg commit of new data: {ratio:.2f}x  (target >= 3)  {verdict(ratio >= 3)}")
            sratio = c["stored"] / borg["stored"]
            print(f"  casreg / borg stored size:        {sratio:.3f}  (target <= 1)  {verdict(sratio <= 1)}")
            print(f"  casreg grouped / borg stored:     {g['stored'] / borg['stored']:.3f}")
            dratio = d["stored"] / borg["stored"]
            print(f"  casreg delta / borg stored:       {dratio:.3f}  (target <= 0.65)  {verdict(dratio <= 0.65)}")
        else:
            print("\nborg not installed (apt-get install borgbackup): no comparison")
        if restic:
            print(f"restic (compression auto): commit new data {restic['new_mbps']:.0f} MB/s, "
                  f"stored {restic['stored'] / MB:.1f} MB"
                  f"  -> casreg/restic throughput {c['new_mbps'] / restic['new_mbps']:.2f}x, "
                  f"stored {c['stored'] / restic['stored']:.3f}")
        else:
            print("restic not installed (apt-get install restic): no comparison")


if __name__ == "__main__":
    main()
