"""``casreg serve`` against real clients: Kubeflow's official ``model-registry`` client and the
request FATE-Serving sends, each to a live ``casreg serve`` subprocess on a free port."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from casreg.registry import Registry
from casreg.repo import Repository
from tests.helpers import ROOT, one_line_error, random_bytes, run_cli, write_file

pytestmark = pytest.mark.slow  # servers of their own (a casreg serve subprocess per test)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
FATE_ZIP = os.path.join(FIXTURES, "fate", "guest#9999#guest-9999#host-10000#model_2020061215063879320146.zip")
TRANSFER = os.path.join(FIXTURES, "fate-serving", "fate_transfer_response.json")
PARTY, VERSION = "guest#9999#guest-9999#host-10000#model", "2020061215063879320146"
TOKEN = "casreg-test-token-0123456789"
KF = "/api/model_registry/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``casreg --store STORE serve --port P ARGS`` until stopped; ready once it answers."""

    def __init__(self, store: str, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen([sys.executable, "-m", "casreg.cli", "--store", store, "serve",
                                      "--port", str(self.port), *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"casreg serve exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(f"{self.url}/openapi.json", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("casreg serve did not answer within 30 s")
            time.sleep(0.1)

    def request(self, method: str, path: str, body=None, *, token: str | None = None, raw: bytes | None = None,
                headers: dict | None = None) -> tuple[int, object]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, payload = r.status, r.read()
                kind = r.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            status, payload, kind = exc.code, exc.read(), exc.headers.get("content-type", "")
        assert b"Traceback" not in payload
        return status, json.loads(payload) if kind.startswith("application/json") else payload

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read().decode() if self.proc.stderr else ""


@pytest.fixture
def store(tmp_path):
    path = str(tmp_path / "store")
    Repository.init(path).close()
    return path


@pytest.fixture
def token_file(tmp_path):
    return write_file(tmp_path / "token", TOKEN.encode() + b"\n")


@pytest.fixture
def served(store, token_file):
    server = Server(store, "--token-file", token_file)
    yield server
    assert "Traceback" not in server.stop()  # every error was answered, none escaped


def client(server: Server):
    from model_registry import ModelRegistry
    return ModelRegistry(server_address="http://127.0.0.1", port=server.port, author="t", is_secure=False,
                         user_token=TOKEN)


def test_kubeflow_client_registers_reads_lists_and_updates(served, store):
    from model_registry.types import ModelVersionState
    mr = client(served)
    rm = mr.register_model("mnist", "s3://bucket/mnist/v1", model_format_name="onnx", model_format_version="1",
                           version="v1", version_description="first",
                           metadata={"accuracy": 0.87, "epochs": 10, "ok": True, "framework": "torch"})
    assert rm.name == "mnist" and rm.id and rm.owner == "t"
    mr.register_model("mnist", "s3://bucket/mnist/v2", model_format_name="onnx", model_format_version="1",
                      version="v2")

    assert mr.get_registered_model("mnist").id == rm.id
    assert mr.get_registered_model("nope") is None
    mv = mr.get_model_version("mnist", "v1")
    assert (mv.name, mv.author, mv.description, mv.registered_model_id) == ("v1", "t", "first", rm.id)
    assert mv.state == ModelVersionState.LIVE
    assert mv.custom_properties == {"accuracy": 0.87, "epochs": 10, "ok": True, "framework": "torch"}
    assert int(mv.create_time_since_epoch) > 1_600_000_000_000  # epoch ms
    art = mr.get_model_artifact("mnist", "v1")
    assert (art.uri, art.model_format_name, art.model_format_version, art.name) == \
        ("s3://bucket/mnist/v1", "onnx", "1", "mnist")
    assert art.id == mv.id  # one artifact per version, numbered as it

    assert [m.name for m in mr.get_registered_models()] == ["mnist"]
    assert [v.name for v in mr.get_model_versions("mnist")] == ["v1", "v2"]
    assert [v.name for v in mr.get_model_versions("mnist").page_size(1)] == ["v1", "v2"]  # paging
    assert [v.name for v in mr.get_model_versions("mnist").descending()] == ["v2", "v1"]

    mv.state = ModelVersionState.ARCHIVED
    mv.custom_properties = {"accuracy": 0.9, "epochs": 10, "ok": True, "framework": "torch", "note": "tuned"}
    updated = mr.update(mv)
    assert updated.state == ModelVersionState.ARCHIVED and updated.custom_properties["accuracy"] == 0.9
    rm = mr.get_registered_model("mnist")
    rm.description = "digits"
    rm.custom_properties = {"team": "vision"}
    assert mr.update(rm).description == "digits"
    art.model_format_version = "2"
    assert mr.update(art).model_format_version == "2"

    # what the client wrote is casreg metadata and state, through the Python API
    with Registry(store, readonly=True) as repo:
        meta = repo.metadata("models/mnist/v1")
        assert meta["state"] == "ARCHIVED" and meta["accuracy"] == 0.9 and meta["note"] == "tuned"
        assert meta["epochs"] == 10 and meta["ok"] is True and meta["description"] == "first"
        assert meta["model_artifact"]["uri"] == "s3://bucket/mnist/v1"
        assert meta["model_artifact"]["modelFormatVersion"] == "2"
        assert {r["version"]: r["state"] for r in repo.versions("mnist")} == {"v1": "ARCHIVED", "v2": "LIVE"}
        assert repo.model_meta("mnist") == {"owner": "t", "description": "digits", "team": "vision", "state": "LIVE"}
        assert repo.read_commit(repo.resolve("models/mnist/v1")).author == "t"


def test_ids_stay_across_restarts_and_casreg_versions_have_download_urls(store, token_file):
    data = random_bytes(300_000, "weights")
    src = write_file(os.path.join(os.path.dirname(store), "src", "model.bin"), data)
    with Registry(store) as repo:
        repo.commit(os.path.dirname(src), "models/lr/v1", meta={"auc": 0.8, "tags": ["a", "b"]})
    server = Server(store, "--token-file", token_file)
    try:
        mr = client(server)
        rm, mv = mr.get_registered_model("lr"), mr.get_model_version("lr", "v1")
        # the list is a struct value: base64 of its JSON, which the client shows as that string
        assert mv.custom_properties["auc"] == 0.8
        assert json.loads(base64.b64decode(mv.custom_properties["tags"])) == ["a", "b"]
        status, raw = server.request("GET", f"{KF}/model_versions/{mv.id}")
        assert status == 200 and raw["customProperties"]["tags"]["metadataType"] == "MetadataStructValue"
        art = mr.get_model_artifact("lr", "v1")
        assert art.uri == "casreg://lr/v1" and art.state.value == "LIVE"
        listing = art.custom_properties["casreg_download_url"]
        status, files = server.request("GET", listing[len(server.url):])
        assert status == 200 and [f["path"] for f in files["files"]] == ["model.bin"]
        status, body = server.request("GET", files["files"][0]["url"][len(server.url):])
        assert status == 200 and body == data
        # a client update sends the list back as that string: casreg keeps the list
        mv.custom_properties = {**mv.custom_properties, "auc": 0.81}
        mr.update(mv)
    finally:
        server.stop()
    server = Server(store, "--token-file", token_file)
    try:
        mr = client(server)
        assert (mr.get_registered_model("lr").id, mr.get_model_version("lr", "v1").id) == (rm.id, mv.id)
    finally:
        server.stop()
    with Registry(store, readonly=True) as repo:
        meta = repo.metadata("models/lr/v1")  # (the client also sends back author and state)
        assert (meta["auc"], meta["tags"], meta["state"]) == (0.81, ["a", "b"], "LIVE")


def test_fate_serving_transfer_equals_fate_flow(store, tmp_path):
    run_cli("--store", store, "fate", "import", FATE_ZIP, check=0)
    server = Server(store, "--read-only")  # a read: FATE-Serving sends no token, and read-only serves it
    try:
        status, body = server.request("POST", "/v1/model/transfer", {"name": VERSION, "namespace": PARTY})
        with open(TRANSFER, encoding="utf-8") as f:
            expected = json.load(f)
        assert status == 200 and body == expected
        assert list(body["data"]) == list(expected["data"])  # FATE-Flow's order too
        status, body = server.request("POST", "/v1/model/transfer", {"name": "1", "namespace": PARTY})
        assert status == 404 and body["retcode"] == 404 and "unknown" in body["retmsg"]
        status, body = server.request("POST", "/v1/model/transfer", {"name": VERSION})
        assert status == 400 and body["retcode"] == 400
    finally:
        server.stop()


def test_writes_need_the_token(served):
    body = {"name": "m"}
    status, err = served.request("POST", f"{KF}/registered_models", body)
    assert status == 401 and err["code"] == "401"
    status, _ = served.request("POST", f"{KF}/registered_models", body, token="wrong-token-0123456789")
    assert status == 403
    assert served.request("POST", f"{KF}/registered_models", body, token=TOKEN)[0] == 201
    assert served.request("GET", f"{KF}/registered_models")[0] == 200  # reads are open
    assert served.request("PATCH", f"{KF}/registered_models/1", {"description": "x"})[0] == 401


def test_read_only_refuses_every_write(store):
    with Registry(store) as repo:
        from casreg import catalog
        catalog.create_model(repo, "m")
    server = Server(store, "--read-only")
    try:
        assert server.request("GET", f"{KF}/registered_models/1")[0] == 200
        for method, path, body in (("POST", f"{KF}/registered_models", {"name": "n"}),
                                   ("PATCH", f"{KF}/registered_models/1", {"description": "x"}),
                                   ("POST", f"{KF}/model_versions", {"name": "v", "registeredModelId": "1"}),
                                   ("POST", "/api/model_registry/v1alpha3/registered_models", {"name": "n"})):
            status, err = server.request(method, path, body)
            assert status == 403 and "read-only" in err["message"], (method, path)
    finally:
        server.stop()


def test_errors_are_json_by_type_never_500(served):
    for path in ("registered_models/424242", "model_versions/424242", "model_artifacts/424242",
                 "registered_models/abc", "registered_model?name=nope", "model_version?name=v&parentResourceId=9"):
        status, err = served.request("GET", f"{KF}/{path}")
        assert status == 404 and err["code"] == "404" and err["message"], path
    assert served.request("GET", "/no/such/route")[0] == 404
    assert served.request("POST", f"{KF}/registered_models", {"name": "m"}, token=TOKEN)[0] == 201
    assert served.request("POST", f"{KF}/registered_models", {"name": "m"}, token=TOKEN)[0] == 409
    status, _ = served.request("GET", f"{KF}/registered_models/1/versions")
    assert status == 200
    bad = [({"name": "has space"}, "registered_models"), ({"name": "m2", "state": "GONE"}, "registered_models"),
           ({"name": "x", "customProperties": {"k": {"metadataType": "MetadataIntValue", "int_value": "x"}}},
            "registered_models"),
           ({"name": "v/1", "registeredModelId": "1"}, "model_versions"),
           ({"name": "v1"}, "model_versions")]
    for body, path in bad:
        status, err = served.request("POST", f"{KF}/{path}", body, token=TOKEN)
        assert status == 400 and err["code"] == "400", (body, err)
    status, err = served.request("POST", f"{KF}/registered_models", raw=b"{not json", token=TOKEN)
    assert status == 400
    assert declared_too_long(served, 2 << 20) == 413
    assert served.request("GET", f"{KF}/registered_models?pageSize=abc")[0] == 400
    assert served.request("POST", f"{KF}/model_versions", {"name": "v1", "registeredModelId": "1"}, token=TOKEN)[0] == 201
    assert served.request("POST", f"{KF}/model_versions", {"name": "v1", "registeredModelId": "1"}, token=TOKEN)[0] == 409
    status, _ = served.request("GET", f"{KF}/model_artifacts/2")  # a version with no files, no artifact
    assert status == 404


def declared_too_long(server: Server, length: int) -> int:
    """Announce a body of ``length`` bytes and send none: the server must answer at once."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", f"{KF}/registered_models")
        for key, value in (("Content-Type", "application/json"), ("Content-Length", str(length)),
                           ("Authorization", f"Bearer {TOKEN}")):
            conn.putheader(key, value)
        conn.endheaders()
        response = conn.getresponse()
        assert json.loads(response.read())["code"] == str(response.status)
        return response.status
    finally:
        conn.close()


def test_a_streamed_body_past_the_limit_is_refused(store, token_file):
    server = Server(store, "--token-file", token_file, "--max-body", "1000")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = iter([b'{"name": "m", "description": "', b"x" * 600, b"x" * 600, b'"}'])
        conn.request("POST", f"{KF}/registered_models", body=body, encode_chunked=True,
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        assert response.status == 413 and "1000 bytes" in json.loads(response.read())["message"]
        conn.close()
        assert declared_too_long(server, 1001) == 413
        assert server.request("GET", f"{KF}/registered_models")[1]["size"] == 0  # nothing was created
    finally:
        assert "Traceback" not in server.stop()


def test_openapi_document_lists_both_api_versions_and_the_transfer(served):
    status, doc = served.request("GET", "/openapi.json")
    assert status == 200
    paths = doc["paths"]
    for prefix in ("/api/model_registry/v1", "/api/model_registry/v1alpha3"):
        assert {"get", "post"} <= set(paths[f"{prefix}/registered_models"])
        assert "patch" in paths[f"{prefix}/model_versions/{{vid}}"]
    assert "post" in paths["/v1/model/transfer"]


def test_a_reachable_host_needs_a_token(store, token_file):
    err = one_line_error(run_cli("--store", store, "serve", "--host", "0.0.0.0", "--port", "0"))
    assert "--token-file" in err
    weak = write_file(os.path.join(os.path.dirname(store), "weak"), b"short")
    assert "16+" in one_line_error(run_cli("--store", store, "serve", "--token-file", weak))
