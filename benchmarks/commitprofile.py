"""Where a commit's time goes, and the bound of this machine's cores for it (issue 17).

Each stage of ``casreg commit`` is timed on its own over the same tree, in CPU seconds of the
thread doing it (``time.thread_time``: what other processes on a shared VM do barely moves it):
start-up (importing the CLI, a child process), reading the files, cutting them (FastCDC),
hashing (each chunk, and each whole file), compressing the chunks the store lacks (the store's
codec) and writing them to LMDB. The bound is the larger of the main thread's own work (start-up,
reading, cutting: one thread, in order) and the whole CPU total shared by the cores. Then the
real commit runs a few times as a child (wall, user+sys), in a fresh store each time.

    python benchmarks/commitprofile.py [--tree DIR] [--codec delta] [--runs 3]

Without ``--tree`` it uses ingest.py's 5-checkpoint tree (built from the corpus, cached).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import blake3  # noqa: E402

from benchmarks import installed_bytecode  # noqa: E402
from casreg.objects import codec  # noqa: E402
from casreg.objects.chunker import Chunker, ChunkerParams  # noqa: E402
from casreg.objects.encoding import CHUNK  # noqa: E402
from casreg.objects.grouping import chunk_layout  # noqa: E402
from casreg.objects.store import stored_value  # noqa: E402
from casreg.objects.tensorheaders import tensor_layout  # noqa: E402
from casreg.repo import Repository  # noqa: E402

MB = 1e6


def files_of(tree: str) -> list[str]:
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(tree) for f in fs)


def cpu(fn) -> tuple[float, object]:
    start = time.thread_time()
    out = fn()
    return time.thread_time() - start, out


def stages(tree: str, codec_name: str) -> dict[str, float]:
    paths = files_of(tree)
    out: dict[str, float] = {}
    child = [sys.executable, "-c", "import casreg.cli"]
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(3):
        subprocess.run(child, check=True, env=dict(os.environ, PYTHONPATH=ROOT))
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["start-up (import casreg.cli)"] = (end.ru_utime + end.ru_stime - start.ru_utime - start.ru_stime) / 3

    def read_all():
        """Every file read through one reused 4 MiB buffer, as the ingest pipeline reads."""
        buf = bytearray(4 << 20)
        for p in paths:
            with open(p, "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass
    out["read (4 MiB blocks)"], _ = cpu(read_all)
    blobs = []
    for p in paths:
        with open(p, "rb") as f:
            blobs.append(f.read())
    chunker = Chunker(ChunkerParams())
    out["cut (FastCDC)"], cuts = cpu(lambda: [chunker.cut(memoryview(b)) for b in blobs])
    out["hash files (BLAKE3)"], _ = cpu(lambda: [blake3.blake3(b).digest() for b in blobs])

    def hash_chunks():
        ids = []
        for b, cs in zip(blobs, cuts):
            view = memoryview(b)
            ids.append([blake3.blake3(view[o:o + n]).digest() for o, n in cs])
        return ids
    out["hash chunks (BLAKE3)"], ids = cpu(hash_chunks)
    grouping = codec.POLICIES[codec_name][0]

    def compress_new():
        seen: set[bytes] = set()
        values = []
        for b, cs, cids in zip(blobs, cuts, ids):
            view = memoryview(b)
            layout = tensor_layout(view[:1 << 16]) if grouping else None
            for (o, n), cid in zip(cs, cids):
                if cid in seen:
                    continue
                seen.add(cid)
                tag, payload = codec.encode(view[o:o + n], chunk_layout(layout, o), grouping=grouping)
                values.append((cid, stored_value(CHUNK, tag, payload)))
        return values
    out[f"compress new chunks ({codec_name})"], values = cpu(compress_new)
    work = tempfile.mkdtemp(prefix="casreg-profile-")
    try:
        repo = Repository.init(os.path.join(work, "store"), codec_name=codec_name)

        def write():
            for i in range(0, len(values), 256):
                batch = values[i:i + 256]
                repo.db.write(lambda txn, batch=batch: repo.objects.put_values(txn, batch))
        out["write to LMDB"], _ = cpu(write)
        repo.close()
    finally:
        shutil.rmtree(work)
    out["_new"] = sum(len(v) for _, v in values)
    out["_logical"] = sum(len(b) for b in blobs)
    return out


def commits(tree: str, codec_name: str, runs: int) -> list[tuple[float, float]]:
    out = []
    for _ in range(runs):
        work = tempfile.mkdtemp(prefix="casreg-profile-")
        try:
            store = os.path.join(work, "store")
            cli = [sys.executable, "-m", "casreg.cli", "--store", store]
            env = dict(os.environ, PYTHONPATH=ROOT)
            subprocess.run(cli + ["init", "--codec", codec_name], check=True, env=env, capture_output=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(cli + ["commit", tree, "--ref", "t"], check=True, env=env, capture_output=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            out.append((wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
        finally:
            shutil.rmtree(work)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="directory to commit (default: ingest.py's 5-checkpoint tree)")
    parser.add_argument("--codec", default="delta")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(ROOT, ".work"))
    args = parser.parse_args()
    installed_bytecode()
    tree = args.tree
    if tree is None:
        import corpus
        import ingest
        tree = ingest.build_tree(corpus.build(os.path.join(args.work, "corpus")), args.work)
    s = stages(tree, args.codec)
    logical, new = s.pop("_logical"), s.pop("_new")
    print(f"tree {tree}: {logical / MB:.0f} MB, {new / MB:.0f} MB stored new ({args.codec})")
    print("  stage                              CPU s    MB/s")
    for name, seconds in s.items():
        size = new if name.startswith("write") else logical
        rate = f"{size / MB / seconds:7.0f}" if seconds > 0 and not name.startswith("start") else "      -"
        print(f"  {name:34} {seconds:6.3f} {rate}")
    total = sum(s.values())
    main_thread = sum(v for k, v in s.items() if k.startswith(("start", "read", "cut")))
    cores = os.cpu_count() or 1
    bound = max(main_thread, total / cores)
    print(f"  CPU total {total:.3f} s; main thread (start-up, read, cut) {main_thread:.3f} s; "
          f"bound on {cores} cores {bound:.3f} s")
    runs = commits(tree, args.codec, args.runs)
    walls = sorted(w for w, _ in runs)
    print(f"  casreg commit: wall {walls[len(walls) // 2]:.3f} s median ({walls[0]:.3f}-{walls[-1]:.3f}), "
          f"CPU {sorted(c for _, c in runs)[len(runs) // 2]:.3f} s; wall / bound {walls[len(walls) // 2] / bound:.2f}")


if __name__ == "__main__":
    main()
