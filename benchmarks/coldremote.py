"""What a store that never read the remote pays (issue 15): COS requests of a cold push and a cold
fetch of one version after N pushes, and Redis bytes a push of one ref receives with R remote refs.

COS (SeaweedFS, started here): N pushes, each of one small version under its own name
(``models/m/v<i>``, as a registry does; all by one backend, which lists the bucket once, so 10^4
of them take minutes: each writes what a push of its own writes), then, with the local cache of
the bucket removed, one more push, a fresh store's fetch of one name, and two reads of every ref
by backends without a cache (``ls-remote`` at a new site); requests counted by the backend
(``traffic``), the push's and the fetch's also by kind (LIST pages, GET, PUT; the bucket's HEAD
on opening is the rest).
Redis: R refs on the server, then one push of one new ref; bytes from ``INFO stats``
(``total_net_output_bytes``, less what an INFO alone costs).

    python benchmarks/coldremote.py [--pushes 100,400] [--refs 10000]   (about 4 minutes)
    python benchmarks/coldremote.py --pushes 1000,10000 --refs ""     (about 13 minutes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid

sys.path.insert(0, os.environ.get("CASREG_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from casreg.remotes import ops, sync  # noqa: E402
from casreg.repo import Repository  # noqa: E402


def _version(repo: Repository, work: str, i: int, ref: str) -> None:
    model = os.path.join(work, "model")
    os.makedirs(model, exist_ok=True)
    with open(os.path.join(model, "weights.bin"), "wb") as f:
        f.write(os.urandom(2048) + i.to_bytes(8, "little"))
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write(f'{{"step": {i}}}')
    repo.commit(model, ref, message=f"step {i}")


KINDS = {"list_info": "LIST", "get": "GET", "head": "HEAD", "put": "PUT", "put_if_absent": "PUT",
         "delete": "DELETE"}


def _split(be) -> dict[str, int]:
    """Count the requests of ``be``'s blob store by kind (a listing of more than 1,000 keys is
    several LIST requests); the HEAD of the bucket when the backend opens is not among them."""
    while not hasattr(be, "blobs"):
        be = be.inner
    counts: dict[str, int] = {}
    blobs = be.blobs
    for method, kind in KINDS.items():
        def counted(*args, _f=getattr(blobs, method), _k=kind, **kwargs):
            before = blobs.traffic.requests  # a listing's pages (listings are not made in parallel)
            try:
                return _f(*args, **kwargs)
            finally:
                counts[_k] = counts.get(_k, 0) + (blobs.traffic.requests - before if _k == "LIST" else 1)
        setattr(blobs, method, counted)
    return counts


def _push(repo: Repository, ref: str, be=None) -> int:
    """Requests of a push of ``ref`` by a backend of its own (as ``casreg push`` opens one), or by
    ``be`` (the building pushes: one backend for all, so none lists the bucket again)."""
    own = be is None
    be = ops.backend(repo, "origin") if own else be
    split = _split(be) if own else {}
    before = 0 if own else be.traffic.requests  # its own: the HEAD of the bucket counts too
    try:
        sync.push(repo, be, [ref])
        if own:
            print(f"  push: {split}", flush=True)
        return be.traffic.requests - before
    finally:
        if own:
            be.close()


def _cold_refs(url: str) -> int:
    """Requests of every ref read by a backend with no cache (``ls-remote`` of a new site)."""
    from casreg.remotes import open_backend
    be = open_backend(url)
    try:
        before = be.traffic.requests
        be.refs()
        return be.traffic.requests - before
    finally:
        be.close()


def cos_cold(seaweed, work: str, n: int) -> tuple[int, int, int, int]:
    """Requests of a cold push, of a cold fetch of one version, and of two cold reads of every
    ref one after the other, after ``n`` pushes."""
    url = seaweed.url(seaweed.bucket, prefix=f"cold{uuid.uuid4().hex[:8]}")
    repo = Repository.init(os.path.join(work, "store"))
    ops.config(repo).add("origin", url)
    builder = ops.backend(repo, "origin")  # the same bucket as n separate pushes give, far faster
    try:
        for i in range(n):
            if i and i % 1000 == 0:
                print(f"  built {i} pushes", flush=True)
            _version(repo, work, i, f"models/m/v{i}")
            _push(repo, f"models/m/v{i}", builder)
    finally:
        builder.close()
    shutil.rmtree(os.path.join(repo.path, "cache", "origin"), ignore_errors=True)  # never read the bucket
    _version(repo, work, n, f"models/m/v{n}")
    push_requests = _push(repo, f"models/m/v{n}")
    other = Repository.init(os.path.join(work, "other"))
    ops.config(other).add("origin", url)
    be = ops.backend(other, "origin")
    split = _split(be)
    try:
        sync.fetch(other, "origin", be, [f"models/m/v{n // 2}"])
        fetch_requests = be.traffic.requests
        print(f"  fetch: {split}", flush=True)
    finally:
        be.close()
    return push_requests, fetch_requests, _cold_refs(url), _cold_refs(url)


def redis_push_bytes(work: str, refs: int) -> int:
    """Bytes Redis sent for one push of one new ref, with ``refs`` refs on the server."""
    import redis

    from tests.servers import REDIS_URL
    prefix = f"coldbench-{uuid.uuid4().hex[:8]}:"
    r = redis.Redis.from_url(REDIS_URL)
    try:
        r.hset(f"{prefix}refs", mapping={f"models/x/v{i}": os.urandom(32) for i in range(refs)})
        repo = Repository.init(os.path.join(work, "rstore"))
        ops.config(repo).add("origin", f"{REDIS_URL}?prefix={prefix}")
        _version(repo, work, 0, "models/new/v0")

        def sent() -> int:
            return int(r.info("stats")["total_net_output_bytes"])
        a = sent()
        b = sent()
        _push(repo, "models/new/v0")
        c = sent()
        return (c - b) - (b - a)
    finally:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i:i + 1000])
        r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", default="100,400")
    parser.add_argument("--refs", default="10000")
    args = parser.parse_args()
    from tests.servers import SeaweedFS
    os.environ.setdefault("COS_SECRET_ID", "test")  # SeaweedFS takes any
    os.environ.setdefault("COS_SECRET_KEY", "test")
    with tempfile.TemporaryDirectory(prefix="casreg-cold-") as tmp:
        for refs in [int(x) for x in args.refs.split(",") if x]:
            work = tempfile.mkdtemp(dir=tmp)
            print(f"redis: push of one ref with {refs} remote refs: {redis_push_bytes(work, refs)} bytes received",
                  flush=True)
        seaweed = SeaweedFS(os.path.join(tmp, "weed"))
        try:
            for n in [int(x) for x in args.pushes.split(",") if x]:
                push, fetch, refs, refs_again = cos_cold(seaweed, tempfile.mkdtemp(dir=tmp), n)
                print(f"cos: after {n} pushes: cold push {push} requests, cold fetch of one version "
                      f"{fetch} requests, cold read of all refs {refs} then {refs_again} requests", flush=True)
        finally:
            seaweed.stop()


if __name__ == "__main__":
    main()
