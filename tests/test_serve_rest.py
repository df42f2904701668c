"""casreg's own REST API (``/api/casreg/v1``) over a live ``casreg serve`` on a free port: paged
models and versions of a FATE-named model (``#`` in its name), a file by byte range, writes with
and without the token, and schemathesis against ``/openapi.json``."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys

import pytest

from casreg.objects.encoding import MANIFEST
from casreg.registry import Registry
from casreg.repo import Repository
from tests.helpers import random_bytes, write_file
from tests.test_serve import TOKEN, Server

pytestmark = pytest.mark.slow  # a casreg serve subprocess per module

API = "/api/casreg/v1"
MODEL = "guest#9999#guest-9999#host-10000#model"
SIZE = 3 << 20


def weights(i: int) -> bytes:
    """Version i's weights: the same 3 MiB with its own 200 KiB in the middle (most chunks shared)."""
    data = bytearray(random_bytes(SIZE, "weights"))
    data[1 << 20:(1 << 20) + 200_000] = random_bytes(200_000, f"step {i}")
    return bytes(data)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest")
    path = str(root / "store")
    Repository.init(path).close()
    with Registry(path) as repo:
        for i in range(3):
            src = root / f"v{i}"
            src.mkdir()
            write_file(src / "model.bin", weights(i))
            write_file(src / "conf" / "cfg.json", json.dumps({"step": i}).encode())
            repo.commit(str(src), f"models/{MODEL}/v{i}", message=f"step {i}", meta={"acc": 0.5 + i / 10})
        repo.commit(str(root / "v0"), "models/mlp/v1")
        repo.set_alias(MODEL, "production", "v1")
        repo.tag("best", f"models/{MODEL}/v2", description="the best one")
    return path


@pytest.fixture(scope="module")
def served(store, tmp_path_factory):
    server = Server(store, "--token-file", write_file(tmp_path_factory.mktemp("tok") / "token", TOKEN.encode()))
    yield server
    assert "Traceback" not in server.stop()


def get(server: Server, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of a GET, nothing decoded."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def ok(server: Server, path: str):
    status, body = server.request("GET", path)
    assert status == 200, body
    return body


def model_id(server: Server, name: str) -> int:
    from urllib.parse import quote
    return ok(server, f"{API}/model?name={quote(name)}")["id"]


def test_models_and_versions_are_paged_newest_first_with_sizes(served):
    page = ok(served, f"{API}/models?limit=1")
    assert page["total"] == 2 and [m["model"] for m in page["items"]] == [MODEL]
    assert ok(served, f"{API}/models?offset=1&limit=1")["items"][0]["model"] == "mlp"
    assert [m["model"] for m in ok(served, f"{API}/models?q=GUEST")["items"]] == [MODEL]
    mid = model_id(served, MODEL)
    model = ok(served, f"{API}/models/{mid}")
    assert model["versions"] == 3 and model["aliases"] == {"production": "v1"}

    first = ok(served, f"{API}/models/{mid}/versions?limit=2")
    second = ok(served, f"{API}/models/{mid}/versions?offset=2&limit=2")
    assert first["total"] == 3 and [v["version"] for v in first["items"] + second["items"]] == ["v2", "v1", "v0"]
    v2, v1 = first["items"]
    v0 = second["items"][0]
    logical = SIZE + len(json.dumps({"step": 2}))
    assert v2["size"] == v2["logical_bytes"] == logical
    assert v2["tags"] == ["best"] and v1["aliases"] == ["production"] and v2["metadata"] == {"acc": 0.7}
    assert v2["previous"] == "v1" and v0["previous"] is None
    # most chunks are shared with the version before: what v2 adds is a fraction of what it holds
    assert 0 < v2["new_stored_bytes"] < v2["stored_bytes"] / 3
    assert v0["new_stored_bytes"] == v0["stored_bytes"] > 0
    assert v2["state"] == "LIVE" and v2["dedup_ratio"] >= 1.0

    status, body = served.request("GET", f"{API}/models/{mid}/versions?limit=0")
    assert status == 400 and "limit" in body["message"]


def test_version_show_history_diff_stats(served):
    mid = model_id(served, MODEL)
    v2, v1 = ok(served, f"{API}/models/{mid}/versions?limit=2")["items"]
    shown = ok(served, f"{API}/versions/{v2['id']}")
    assert shown["model"] == MODEL and shown["files"] == 2 and shown["ref"] == f"models/{MODEL}/v2"
    from urllib.parse import quote
    assert ok(served, f"{API}/version?model={quote(MODEL)}&version=v2")["id"] == v2["id"]
    history = ok(served, f"{API}/versions/{v2['id']}/history")
    assert history["moves"][0]["message"] == "commit: step 2"
    diff = ok(served, f"{API}/diff?old={v1['id']}&new={v2['id']}")
    assert {c["path"] for c in diff["changes"]} == {"model.bin", "conf/cfg.json"}
    assert 0 < diff["new_bytes"] < SIZE
    stats = ok(served, f"{API}/stats")
    assert stats["versions"] >= 4 and stats["dedup_ratio"] > 1  # 4 versions (+ the catalog's id chain)
    for missing in (f"{API}/versions/99999", f"{API}/models/99999/versions", f"{API}/model?name=nobody"):
        status, body = served.request("GET", missing)
        assert status == 404 and body["code"] == "404", missing


def test_file_download_honours_range(served):
    mid = model_id(served, MODEL)
    v1 = ok(served, f"{API}/models/{mid}/versions?offset=1&limit=1")["items"][0]
    listing = ok(served, f"{API}/versions/{v1['id']}/files")
    url = next(f["url"] for f in listing["files"] if f["path"] == "model.bin")
    path = url[url.index(API):]
    data = weights(1)

    status, headers, body = get(served, path)
    assert status == 200 and body == data
    assert headers["accept-ranges"] == "bytes" and headers["content-length"] == str(SIZE)
    etag = headers["etag"]
    assert len(etag.strip('"')) == 64  # the file's content id

    for asked, (lo, hi) in {"bytes=0-0": (0, 1), "bytes=1000-70000": (1000, 70001),
                            f"bytes={SIZE - 10}-": (SIZE - 10, SIZE), "bytes=-300000": (SIZE - 300000, SIZE),
                            f"bytes=5-{SIZE * 2}": (5, SIZE)}.items():
        status, headers, body = get(served, path, {"Range": asked})
        assert status == 206, asked
        assert body == data[lo:hi], asked
        assert headers["content-range"] == f"bytes {lo}-{hi - 1}/{SIZE}"
        assert headers["content-length"] == str(hi - lo) and headers["etag"] == etag

    status, headers, body = get(served, path, {"Range": f"bytes={SIZE}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{SIZE}" and b"Traceback" not in body
    status, _, body = get(served, path, {"Range": "bytes=0-1,5-9"})  # several ranges: the whole file
    assert status == 200 and body == data
    status, _, body = get(served, path, {"Range": "bytes=0-9", "If-Range": '"another"'})
    assert status == 200 and len(body) == SIZE
    status, _, body = get(served, path, {"If-None-Match": etag})
    assert status == 304 and body == b""
    status, _, body = get(served, f"{API}/versions/{v1['id']}/files/no/such/file")
    assert status == 404


def test_a_range_reads_only_the_chunks_it_overlaps(store):
    with Registry(store) as repo:
        info = repo.file_info(f"models/{MODEL}/v1", "model.bin")
        with repo.db.read() as txn:
            chunks = {cid for cid, _ in repo.objects.load(txn, info.content_id, MANIFEST).chunks}
        looked_up: list[bytes] = []
        stored = repo.objects.stored
        repo.objects.stored = lambda txn, oid: (looked_up.append(oid), stored(txn, oid))[1]  # type: ignore[method-assign]
        part = b"".join(repo.read_range(info.content_id, 2_000_000, 2_000_100))
        assert part == weights(1)[2_000_000:2_000_100]
        assert len(chunks) > 20
        assert 1 <= len(chunks.intersection(looked_up)) <= 2  # the chunk(s) holding those 100 bytes
        looked_up.clear()
        assert b"".join(repo.read_range(info.content_id, piece=1 << 20)) == weights(1)
        assert chunks.issubset(looked_up)


def test_writes_need_the_token_and_change_the_store(served):
    mid = model_id(served, MODEL)
    v0 = ok(served, f"{API}/models/{mid}/versions?offset=2&limit=1")["items"][0]
    vid = v0["id"]
    patch = {"set": {"owner": "ana", "lr": 0.01}, "remove": ["acc"]}
    status, _ = served.request("PATCH", f"{API}/versions/{vid}/metadata", patch)
    assert status == 401
    status, _ = served.request("PATCH", f"{API}/versions/{vid}/metadata", patch, token="wrong-token-0123456789")
    assert status == 403
    status, body = served.request("PATCH", f"{API}/versions/{vid}/metadata", patch, token=TOKEN)
    assert status == 200 and body["metadata"] == {"owner": "ana", "lr": 0.01}
    assert ok(served, f"{API}/versions/{vid}/metadata")["metadata"] == {"owner": "ana", "lr": 0.01}

    status, body = served.request("PUT", f"{API}/versions/{vid}/state", {"state": "archived"}, token=TOKEN)
    assert status == 200 and body == {"state": "ARCHIVED"}
    assert ok(served, f"{API}/versions/{vid}")["state"] == "ARCHIVED"
    status, body = served.request("PUT", f"{API}/versions/{vid}/state", {"state": "GONE"}, token=TOKEN)
    assert status == 400

    status, body = served.request("PATCH", f"{API}/models/{mid}/metadata", {"set": {"description": "ranker"}}, token=TOKEN)
    assert status == 200 and body["metadata"]["description"] == "ranker"
    status, body = served.request("PUT", f"{API}/models/{mid}/state", {"state": "ARCHIVED"}, token=TOKEN)
    assert status == 200 and ok(served, f"{API}/models/{mid}")["state"] == "ARCHIVED"

    status, body = served.request("PUT", f"{API}/models/{mid}/aliases/staging", {"version_id": vid}, token=TOKEN)
    assert status == 200 and body["aliases"] == {"production": "v1", "staging": "v0"}
    status, body = served.request("PUT", f"{API}/models/{mid}/aliases/production", {"version": "v2"}, token=TOKEN)
    assert status == 409  # it exists: moving it needs expect_old or force
    status, body = served.request("PUT", f"{API}/models/{mid}/aliases/production",
                                  {"version": "v2", "expect_old": f"models/{MODEL}/v1"}, token=TOKEN)
    assert status == 200 and body["aliases"]["production"] == "v2"
    status, body = served.request("DELETE", f"{API}/models/{mid}/aliases/staging", token=TOKEN)
    assert status == 200 and "staging" not in body["aliases"]

    status, body = served.request("PUT", f"{API}/tags/release/2024", {"version_id": vid, "description": "r"}, token=TOKEN)
    assert status == 200 and body == {"name": "release/2024", "target": v0["commit"], "description": "r"}
    status, body = served.request("PUT", f"{API}/tags/release/2024", {"version_id": vid}, token=TOKEN)
    assert status == 409
    assert ok(served, f"{API}/versions/{vid}")["tags"] == ["release/2024"]
    status, body = served.request("DELETE", f"{API}/tags/release/2024", token=TOKEN)
    assert status == 200 and [t["name"] for t in body] == ["best"]
    status, body = served.request("PUT", f"{API}/tags/x", {"target": ""}, token=TOKEN)
    assert status == 400


def test_a_read_only_server_refuses_writes(store):
    server = Server(store, "--read-only")
    try:
        assert ok(server, f"{API}/models")["total"] == 2
        status, body = server.request("PUT", f"{API}/tags/nope", {"target": f"models/{MODEL}/v0"})
        assert status == 403 and "read-only" in body["message"]
    finally:
        assert "Traceback" not in server.stop()


def test_schemathesis_finds_no_server_error_and_no_response_off_schema(served, tmp_path):
    st = shutil.which("st", path=os.path.dirname(sys.executable)) or shutil.which("st")
    assert st, "schemathesis is not installed: pip install -e '.[test]'"
    proc = subprocess.run([st, "run", f"{served.url}/openapi.json", "--checks",
                           "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
                           "--max-examples", "10", "--seed", "1", "--phases", "examples,coverage,fuzzing,stateful",
                           "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "10",
                           "--report-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
