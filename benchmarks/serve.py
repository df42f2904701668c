"""A bounded load test of ``casreg serve`` on loopback: many readers while versions land.

    python benchmarks/serve.py [--clients 50] [--seconds 20] [--size-mib 4] [--seed S]

Starts ``casreg serve`` (a subprocess, 127.0.0.1, a free port, a token) over a new store with
one FATE-named model. For ``--seconds``, ``--clients`` threads (one keep-alive connection each)
loop over the REST API: the models page, a page of versions, one version, its file list, and a
byte range (1 in 4 a whole file) of a version's weights, checked byte for byte against what that
version was committed with; a writer commits a new version every ~0.5 s (the Python API, in this
process, on the same store) and PATCHes metadata through the API with the token. A torn read is
a listed version whose files or bytes do not match what it was committed with, or a page whose
total goes down. Prints requests, errors, torn reads, p50/p90/p99/max latency per kind of
request; exits 1 on any error or torn read.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

import blake3  # noqa: E402

from casreg.registry import Registry  # noqa: E402
from casreg.repo import Repository  # noqa: E402

API = "/api/casreg/v1"
MODEL = "guest#9999#guest-9999#host-10000#model"
TOKEN = "casreg-bench-token-0123456789"


def weights(version: str, size: int) -> bytes:
    """A version's weights: one base shared by all, 64 KiB of its own every MiB (dedup applies)."""
    data = bytearray(blake3.blake3(b"base").digest(length=size))
    own = blake3.blake3(version.encode()).digest(length=size // 16)
    for i, at in enumerate(range(0, size, 1 << 20)):
        data[at:at + (64 << 10)] = own[i * (64 << 10):(i + 1) * (64 << 10)]
    return bytes(data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.torn: list[str] = []

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency.setdefault(kind, []).append(seconds)

    def error(self, text: str, torn: bool = False) -> None:
        with self.lock:
            (self.torn if torn else self.errors).append(text)


class Client:
    def __init__(self, port: int, stats: Stats):
        self.port, self.stats = port, stats
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, kind: str, method: str, path: str, body=None, headers=None) -> tuple[int, dict, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = dict(headers or {}, **({"Content-Type": "application/json"} if data else {}))
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            r = self.conn.getresponse()
            payload = r.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.stats.error(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, {}, b""
        self.stats.add(kind, time.perf_counter() - start)
        if r.status >= 400 or (r.status >= 300 and r.status != 304):
            self.stats.error(f"{kind} {path}: HTTP {r.status} {payload[:200]!r}")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, payload


def reader(port: int, mid: int, size: int, stop: float, stats: Stats, rng: random.Random) -> None:
    c = Client(port, stats)
    seen_total = 0
    while time.monotonic() < stop:
        c.call("models", "GET", f"{API}/models?limit=50")
        status, _, body = c.call("versions", "GET", f"{API}/models/{mid}/versions?limit=20")
        if status != 200:
            continue
        page = json.loads(body)
        if page["total"] < seen_total:
            stats.error(f"versions total went down: {seen_total} -> {page['total']}", torn=True)
        seen_total = page["total"]
        row = rng.choice(page["items"])
        status, _, body = c.call("version", "GET", f"{API}/versions/{row['id']}")
        logical = size + len(json.dumps({"version": row["version"]}))  # model.bin + conf.json
        if status == 200 and json.loads(body)["size"] != logical:
            stats.error(f"{row['version']}: size {json.loads(body)['size']} != {logical}", torn=True)
        status, _, body = c.call("files", "GET", f"{API}/versions/{row['id']}/files")
        if status != 200:
            continue
        paths = sorted(f["path"] for f in json.loads(body)["files"])
        if paths != ["conf.json", "model.bin"]:
            stats.error(f"{row['version']}: files {paths}", torn=True)
            continue
        expected = weights(row["version"], size)
        if rng.random() < 0.25:
            lo, hi, headers, kind = 0, size, {}, "file"
        else:
            lo = rng.randrange(size)
            hi = min(size, lo + rng.randrange(1, 1 << 20))
            headers, kind = {"Range": f"bytes={lo}-{hi - 1}"}, "range"
        status, _, body = c.call(kind, "GET", f"{API}/versions/{row['id']}/files/model.bin", headers=headers)
        if status in (200, 206) and body != expected[lo:hi]:
            stats.error(f"{row['version']}: bytes {lo}-{hi} differ from what was committed", torn=True)


def writer(store: str, port: int, mid: int, size: int, stop: float, stats: Stats, first: int) -> int:
    """Commit a version every ~0.5 s (Python API) and PATCH metadata (HTTP); returns how many landed."""
    c = Client(port, stats)
    src = tempfile.mkdtemp(prefix="casreg-bench-src-")
    landed = 0
    try:
        with Registry(store) as repo:
            i = first
            while time.monotonic() < stop:
                version = f"v{i:05d}"
                with open(os.path.join(src, "model.bin"), "wb") as f:
                    f.write(weights(version, size))
                with open(os.path.join(src, "conf.json"), "w") as f:
                    json.dump({"version": version}, f)
                start = time.perf_counter()
                repo.commit(src, f"models/{MODEL}/{version}", message=version)
                stats.add("commit (python)", time.perf_counter() - start)
                landed += 1
                status, _, body = c.call("versions", "GET", f"{API}/models/{mid}/versions?limit=1")
                if status == 200:
                    newest = json.loads(body)["items"][0]["id"]
                    c.call("patch metadata", "PATCH", f"{API}/versions/{newest}/metadata",
                           {"set": {"landed": landed}}, {"Authorization": f"Bearer {TOKEN}"})
                i += 1
                time.sleep(0.5)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return landed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size-mib", type=int, default=4, help="size of each version's weights")
    parser.add_argument("--versions", type=int, default=20, help="versions committed before the load starts")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 1 <= args.seconds <= 300 and 1 <= args.size_mib <= 64):
        parser.error("bounded: --clients 1-200, --seconds 1-300, --size-mib 1-64")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    size = args.size_mib << 20
    work = tempfile.mkdtemp(prefix="casreg-bench-serve-")
    server = None
    try:
        store = os.path.join(work, "store")
        Repository.init(store).close()
        src = os.path.join(work, "src")
        os.mkdir(src)
        with Registry(store) as repo:
            for i in range(args.versions):
                version = f"v{i:05d}"
                with open(os.path.join(src, "model.bin"), "wb") as f:
                    f.write(weights(version, size))
                with open(os.path.join(src, "conf.json"), "w") as f:
                    json.dump({"version": version}, f)
                repo.commit(src, f"models/{MODEL}/{version}", message=version)
        token_file = os.path.join(work, "token")
        with open(token_file, "w") as f:
            f.write(TOKEN)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "casreg.cli", "--store", store, "serve", "--port", str(port),
                                   "--token-file", token_file], env=dict(os.environ, PYTHONPATH=ROOT),
                                  stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", f"{API}/model?name={quote(MODEL)}")
                mid = json.loads(conn.getresponse().read())["id"]
                break
            except (OSError, http.client.HTTPException, KeyError, ValueError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("casreg serve did not start")
                time.sleep(0.2)
        stats = Stats()
        stop = time.monotonic() + args.seconds
        threads = [threading.Thread(target=reader, args=(port, mid, size, stop, stats, random.Random(seed + n)))
                   for n in range(args.clients)]
        landed: list[int] = []
        threads.append(threading.Thread(target=lambda: landed.append(
            writer(store, port, mid, size, stop, stats, args.versions))))
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=15)
        log = server.stderr.read().decode() if server is not None and server.stderr else ""
        shutil.rmtree(work, ignore_errors=True)
    total = sum(len(v) for v in stats.latency.values())
    print(f"casreg serve under load: {args.clients} clients, {elapsed:.1f} s, {args.size_mib} MiB weights, "
          f"seed {seed}; {landed[0] if landed else 0} versions landed during the run")
    print(f"{'request':<16}{'count':>8}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for kind, values in sorted(stats.latency.items()):
        print(f"{kind:<16}{len(values):>8}{percentile(values, .5) * 1e3:>10.1f}{percentile(values, .9) * 1e3:>10.1f}"
              f"{percentile(values, .99) * 1e3:>10.1f}{max(values) * 1e3:>10.1f}")
    every = [v for k, values in stats.latency.items() if k != "commit (python)" for v in values]
    print(f"all requests: {len(every)} ({len(every) / elapsed:.0f}/s), p50 {statistics.median(every) * 1e3:.1f} ms, "
          f"p99 {percentile(every, .99) * 1e3:.1f} ms; errors {len(stats.errors)}, torn reads {len(stats.torn)}")
    for text in (stats.errors + stats.torn)[:10]:
        print("  ", text)
    if "Traceback" in log:
        print("the server logged a traceback:\n" + log[-3000:])
        return 1
    return 1 if stats.errors or stats.torn or not total else 0


if __name__ == "__main__":
    raise SystemExit(main())
