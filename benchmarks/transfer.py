"""Push the checkpoint series, version by version, to every remote kind; print what crossed.

    python benchmarks/transfer.py [--kinds file,redis,mysql,cos] [--codec zstd|grouped|delta]

Per push: objects and bytes sent, requests, seconds, next to what FATE-Flow's model store moves
(the whole version as a zip archive). Checks the targets of issue #4: wire bytes at most 1.1x the
stored (compressed) size of the objects the remote lacked (for MySQL also the server's own
Bytes_received counter, escaping and protocol included; issue #17); requests per push independent of how
many chunks the remote already holds; a no-op push of an up-to-date ref (CLI, end to end) < 1 s.
Redis and MariaDB are the machine's (127.0.0.1); COS is SeaweedFS started here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks import corpus  # noqa: E402

MB = 1e6


def zip_size(version_dir: str, work: str) -> int:
    """Bytes of FATE's archive of a version (a deflated zip of the directory)."""
    path = os.path.join(work, os.path.basename(version_dir) + ".zip")
    if not os.path.exists(path):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for r, _, files in os.walk(version_dir):
                for f in sorted(files):
                    full = os.path.join(r, f)
                    z.write(full, os.path.relpath(full, version_dir))
    return os.path.getsize(path)


def remote_urls(kinds: list[str], work: str):
    """(kind, url, cleanup) for each kind; COS is a SeaweedFS server started for this run."""
    tag = uuid.uuid4().hex[:8]
    for kind in kinds:
        if kind == "file":
            yield kind, f"file://{work}/remote-{tag}", lambda: None
        elif kind == "redis":
            import redis
            prefix = f"casreg-bench-{tag}:"

            def drop(prefix=prefix):
                r = redis.Redis()
                keys = list(r.scan_iter(match=prefix + "*", count=1000))
                for i in range(0, len(keys), 1000):
                    r.delete(*keys[i:i + 1000])
            yield kind, f"redis://127.0.0.1:6379/0?prefix={prefix}", drop
        elif kind == "mysql":
            import pymysql
            prefix = f"b{tag}_"

            def drop(prefix=prefix):
                conn = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
                with conn.cursor() as cur:
                    for t in ("objects", "refs", "meta"):
                        cur.execute(f"DROP TABLE IF EXISTS {prefix}{t}")
                conn.close()
            yield kind, f"mysql://root@127.0.0.1:3306/test?prefix={prefix}", drop
        elif kind == "cos":
            from tests.servers import SeaweedFS
            os.environ.setdefault("COS_SECRET_ID", "bench")
            os.environ.setdefault("COS_SECRET_KEY", "bench")
            server = SeaweedFS(tempfile.mkdtemp(prefix="casreg-seaweed-"))
            try:
                yield kind, server.url(server.bucket, prefix=f"b{tag}"), lambda: None
            finally:
                server.stop()
                shutil.rmtree(server.workdir, ignore_errors=True)


def server_bytes_received(kind: str, backend) -> int | None:
    """MySQL's own count of the bytes it received on the backend's connection (this session):
    the wire, escaping and protocol included; None for the other kinds."""
    if kind != "mysql":
        return None
    with backend.unwrapped().conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Bytes_received'")
        return int(cur.fetchone()[1])


def bench_kind(kind: str, url: str, dirs: list[str], work: str, codec_name: str = "zstd") -> None:
    from casreg.remotes import open_backend
    from casreg.remotes.sync import push
    from casreg.repo import Repository
    store = os.path.join(work, f"src-{kind}")
    shutil.rmtree(store, ignore_errors=True)
    repo = Repository.init(os.path.join(store, ".casreg"), codec_name=codec_name)
    print(f"\n== {kind}: {url.split('?')[0]} (store codec {codec_name})")
    print("  version          objects   sent MB  wire MB  wire/sent  requests  seconds   MB/s  FATE zip MB  saved")
    total_wire = total_zip = 0
    ratios = []
    requests = []
    server_ratios = []
    ref = "checkpoints/guest#9999#guest-9999#host-10000#model/202611231200/bert_0/{i}#step_{i}"
    previous = None
    for i, d in enumerate(dirs):
        name = ref.format(i=i)
        repo.commit(d, name, parents=[previous] if previous else [])
        previous = name
        cache = os.path.join(store, ".casreg", "cache", "bench")  # as `casreg push` does
        backend = open_backend(url, create=True) if kind == "file" else open_backend(url, cache_dir=cache)
        before = backend.traffic.requests, backend.traffic.bytes_sent
        server_before = server_bytes_received(kind, backend)
        start = time.perf_counter()
        [result] = push(repo, backend, [name])
        seconds = time.perf_counter() - start
        if server_before is not None and result.bytes_sent:
            server_ratios.append((server_bytes_received(kind, backend) - server_before) / result.bytes_sent)
        reqs = backend.traffic.requests - before[0]
        wire = backend.traffic.bytes_sent - before[1]
        backend.close()
        z = zip_size(d, work)
        total_wire += wire
        total_zip += z
        ratio = wire / result.bytes_sent if result.bytes_sent else 1.0
        ratios.append(ratio)
        requests.append(reqs)
        print(f"  {os.path.basename(d):15} {result.objects_sent:8} {result.bytes_sent / MB:9.1f} {wire / MB:8.1f}"
              f" {ratio:10.3f} {reqs:9} {seconds:8.2f} {result.bytes_sent / MB / seconds:6.0f}"
              f" {z / MB:12.1f} {1 - wire / z:6.0%}")
    repo.close()
    cli = [sys.executable, "-m", "casreg.cli", "--store", os.path.join(store, ".casreg")]
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run(cli + ["remote", "add", "bench", url], env=env, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(cli + ["push", "bench", previous], env=env, check=True, capture_output=True)
    noop = time.perf_counter() - start
    print(f"  series: {total_wire / MB:.1f} MB on the wire vs {total_zip / MB:.1f} MB of FATE archives "
          f"({total_wire / total_zip:.3f}x)")
    print(f"  wire bytes / stored bytes of missing objects: max {max(ratios):.3f} (target <= 1.1) "
          f"{'PASS' if max(ratios) <= 1.1 else 'MISS'}")
    if server_ratios:
        print(f"  server's Bytes_received / stored bytes pushed: max {max(server_ratios):.3f}, "
              f"min {min(server_ratios):.3f} (target <= 1.1) {'PASS' if max(server_ratios) <= 1.1 else 'MISS'}")
    print(f"  requests per push: {requests} (the last pushes find ~{len(dirs) - 1}x more chunks already "
          f"on the remote than the second)")
    print(f"  no-op push of an up-to-date ref (CLI, end to end): {noop:.2f} s (target < 1) "
          f"{'PASS' if noop < 1 else 'MISS'}")


def main() -> None:
    parser = argparse.ArgumentParser(description="casreg transfer benchmark")
    parser.add_argument("--kinds", default="file,redis,mysql,cos")
    parser.add_argument("--work", default=os.path.join(HERE, ".work", "transfer"))
    parser.add_argument("--codec", default="zstd", help="the pushing store's codec (delta: checkpoint deltas)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    dirs = corpus.build()
    for kind, url, cleanup in remote_urls(args.kinds.split(","), args.work):
        try:
            bench_kind(kind, url, dirs, args.work, args.codec)
        finally:
            cleanup()


if __name__ == "__main__":
    main()
