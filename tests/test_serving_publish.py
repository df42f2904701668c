"""casreg serving bind/list/unbind/publish: service ids bound by compare-and-swap, and publishLoad /
publishBind sent to a real gRPC server made from FATE-Serving's own model_service.proto, started
in this process on a free port, which records what it receives."""

from __future__ import annotations

import os
import shutil
import time
from concurrent import futures

import pytest

from casreg.errors import InvalidInput, NotFound, RefConflict, RemoteRefused, RemoteUnreachable
from casreg.fate import publish
from casreg.registry import Registry
from tests.helpers import new_store, one_line_error, run_cli

grpc = pytest.importorskip("grpc")
from casreg.fate.proto import model_service_pb2 as pb  # noqa: E402
from casreg.fate.proto import model_service_pb2_grpc as pb_grpc  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "fate",
                       "guest#9999#guest-9999#host-10000#model_2020061215063879320146.zip")
MODEL = "guest#9999#guest-9999#host-10000#model"
VERSION = "2020061215063879320146"
TRANSFER = "http://127.0.0.1:8080/v1/model/transfer"


class RecordingServing(pb_grpc.ModelServiceServicer):
    """A serving-server that records every publishLoad / publishBind and answers ``status``."""

    def __init__(self, status: int = 0, message: str = "success", error: str = ""):
        self.calls: list[tuple[str, pb.PublishRequest]] = []
        self.status, self.message, self.error = status, message, error
        self.delay = 0.0

    def _answer(self, name, request):
        self.calls.append((name, request))
        time.sleep(self.delay)
        return pb.PublishResponse(statusCode=self.status, message=self.message, error=self.error, data=b"{}")

    def publishLoad(self, request, context):
        return self._answer("publishLoad", request)

    def publishBind(self, request, context):
        return self._answer("publishBind", request)


@pytest.fixture
def serving():
    servicer = RecordingServing()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_ModelServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.address = f"127.0.0.1:{port}"
    yield servicer
    server.stop(None)


@pytest.fixture
def store(tmp_path):
    new_store(tmp_path, "site").close()
    repo = Registry(str(tmp_path / "site" / ".casreg"))
    repo.fate_import(FIXTURE)
    yield repo
    repo.close()


def second_version(repo, tmp_path, version: str) -> None:
    """Another version of MODEL (the same files, another name and commit)."""
    dest = str(tmp_path / f"files-{version}")
    repo.checkout(f"models/{MODEL}/{VERSION}", dest)
    repo.commit(dest, f"models/{MODEL}/{version}", message="another version")
    shutil.rmtree(dest)


# -- what FATE-Flow 1.11.2 sends, transcribed from its source ---------------------------------------
def fate_flow_requests(runtime_conf: dict, local: dict, service_id: str, file_path: str):
    """The PublishRequests FATE-Flow v1.11.2 builds: apps/model_app.py (``/model/load`` with a job
    id takes role and job_parameters from the job's runtime conf, party ids as strings; each party
    gets ``local``) and pipelined_model/publish_model.py (generate_publish_model_info, load_model
    with USE_REGISTRY off and use_transfer_url_on_serving on, bind_model_service)."""
    config = {"role": {r: [str(p) for p in ids] for r, ids in runtime_conf["role"].items()},
              "job_parameters": dict(runtime_conf["job_parameters"]), "local": local,
              "initiator": {"role": runtime_conf["initiator"]["role"],
                            "party_id": str(runtime_conf["initiator"]["party_id"])}, "service_id": service_id}
    config["job_parameters"]["file_path"] = file_path
    model_id, model_version = config["job_parameters"]["model_id"], config["job_parameters"]["model_version"]
    config["model"] = {role: {party: {"model_id": "#".join([role, str(party), model_id]), "model_version": model_version}
                              for party in parties} for role, parties in config["role"].items()}
    load = pb.PublishRequest()
    for role_name, role_partys in config.get("role", {}).items():
        for _party_id in role_partys:
            load.role[role_name].partyId.append(str(_party_id))
    for role_name, role_model_config in config.get("model", {}).items():
        for _party_id, role_party_model_config in role_model_config.items():
            load.model[role_name].roleModelInfo[str(_party_id)].tableName = role_party_model_config["model_version"]
            load.model[role_name].roleModelInfo[str(_party_id)].namespace = role_party_model_config["model_id"]
    load.local.role = config.get("local", {}).get("role", "")
    load.local.partyId = str(config.get("local", {}).get("party_id", ""))
    load.loadType = config["job_parameters"].get("load_type", "FATEFLOW")
    load.filePath = config["job_parameters"].get("file_path", "")

    bind = pb.PublishRequest()
    bind.serviceId = str(config.get("service_id", ""))
    initiator_role, initiator_party_id = config["initiator"]["role"], str(config["initiator"]["party_id"])
    for role_name, role_party in config.get("role").items():
        bind.role[role_name].partyId.extend([str(party_id) for party_id in role_party])
    party_model_id = "#".join([initiator_role, initiator_party_id, model_id])
    bind.model[initiator_role].roleModelInfo[initiator_party_id].tableName = model_version
    bind.model[initiator_role].roleModelInfo[initiator_party_id].namespace = party_model_id
    bind.local.role = initiator_role
    bind.local.partyId = initiator_party_id
    return load, bind


def fixture_runtime_conf(repo) -> dict:
    import io
    import json

    from casreg.fate.pipeline import decode_pipeline
    out = io.BytesIO()
    repo.cat(f"models/{MODEL}/{VERSION}:pipeline.pb", out)
    return json.loads(decode_pipeline(out.getvalue())["train_runtime_conf"])


def test_publish_sends_exactly_what_fate_flow_sends_load_then_bind(store, serving):
    store.serving_bind("lr-test", MODEL, VERSION)
    report = store.serving_publish("lr-test", [serving.address], transfer_url="http://127.0.0.1:8080")
    conf = fixture_runtime_conf(store)
    load, bind = fate_flow_requests(conf, {"role": "guest", "party_id": "9999"}, "lr-test", TRANSFER)
    assert [name for name, _ in serving.calls] == ["publishLoad", "publishBind"]
    assert serving.calls[0][1] == load and serving.calls[1][1] == bind
    # and spelled out, so a change in the transcription above cannot hide one here
    sent = serving.calls[0][1]
    assert (sent.local.role, sent.local.partyId, sent.loadType, sent.filePath, sent.serviceId) == \
        ("guest", "9999", "FATEFLOW", TRANSFER, "")
    assert {r: list(p.partyId) for r, p in sent.role.items()} == {"guest": ["9999"], "host": ["10000"]}
    assert {(r, p, i.namespace, i.tableName) for r, m in sent.model.items() for p, i in m.roleModelInfo.items()} == {
        ("guest", "9999", MODEL, VERSION), ("host", "10000", "host#10000#guest-9999#host-10000#model", VERSION)}
    assert serving.calls[1][1].serviceId == "lr-test" and list(serving.calls[1][1].model) == ["guest"]
    assert [(r["call"], r["status"]) for r in report.replies] == [("publishLoad", 0), ("publishBind", 0)]


def test_every_serving_loads_before_any_binds_and_no_url_means_the_servings_own(store, serving, tmp_path):
    other = RecordingServing()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    pb_grpc.add_ModelServiceServicer_to_server(other, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        store.serving_bind("lr-test", MODEL, VERSION)
        store.serving_publish("lr-test", [serving.address, f"127.0.0.1:{port}"])
    finally:
        server.stop(None)
    assert [n for n, _ in serving.calls] == [n for n, _ in other.calls] == ["publishLoad", "publishBind"]
    assert serving.calls[0][1].filePath == ""  # FATE-Serving then uses its model.transfer.url


def test_bind_and_unbind_are_compare_and_swap_with_history(store, tmp_path):
    second_version(store, tmp_path, "v2")
    assert store.serving_bind("lr-test", MODEL, VERSION, expect_old="none")
    with pytest.raises(RefConflict, match="serves .*2020061215063879320146, not none"):
        store.serving_bind("lr-test", MODEL, "v2", expect_old="none")
    with pytest.raises(RefConflict):
        store.serving_bind("lr-test", MODEL, "v2", expect_old="v2")
    store.serving_bind("lr-test", MODEL, "v2", expect_old=VERSION)
    store.serving_bind("other", MODEL, VERSION)
    assert [(r["service_id"], r["model"], r["version"]) for r in store.serving_list()] == [
        ("lr-test", MODEL, "v2"), ("other", MODEL, VERSION)]
    assert [(h["old"], h["new"]) for h in store.serving_history("lr-test")] == [
        (f"{MODEL}/{VERSION}", f"{MODEL}/v2"), (None, f"{MODEL}/{VERSION}")]
    with pytest.raises(RefConflict):
        store.serving_unbind("lr-test", expect_old=VERSION)
    store.serving_unbind("lr-test", expect_old="v2")
    with pytest.raises(NotFound):
        store.serving_unbind("lr-test")
    assert [r["service_id"] for r in store.serving_list()] == ["other"]
    with pytest.raises(NotFound, match="fate import"):
        store.serving_bind("x", MODEL, "no-such-version")
    with pytest.raises(InvalidInput):
        store.serving_bind("a/b", MODEL, VERSION)
    with pytest.raises(InvalidInput):
        store.serving_bind("x", "not-a-party-model-id", VERSION)


def test_refused_and_unreachable_replies_are_their_errors(store, serving):
    store.serving_bind("lr-test", MODEL, VERSION)
    serving.status, serving.message, serving.error = 102, "load model\nerror", "model not found"
    with pytest.raises(RemoteRefused, match="refused publishLoad .*statusCode 102: load model error model not found"):
        store.serving_publish("lr-test", [serving.address], transfer_url=TRANSFER)
    assert [n for n, _ in serving.calls] == ["publishLoad"]  # no bind after a failed load
    serving.status = 0
    dead = serving.address.rsplit(":", 1)[0] + ":1"
    with pytest.raises(RemoteUnreachable, match="did not answer publishLoad"):
        store.serving_publish("lr-test", [dead], timeout=5)
    serving.delay = 1.0  # answers, but too late
    with pytest.raises(RemoteUnreachable, match="did not answer publishLoad .deadline_exceeded"):
        store.serving_publish("lr-test", [serving.address], timeout=0.2)
    serving.delay = 0.0
    with pytest.raises(NotFound, match="not bound"):
        store.serving_publish("nobody", [serving.address])
    for bad in ("localhost", "host:0", "a b:1", ""):
        with pytest.raises(InvalidInput):
            store.serving_publish("lr-test", [bad])


def test_file_path_is_what_fate_serving_url_decodes_back():
    assert publish.file_path("http://casreg:8080") == "http://casreg:8080/v1/model/transfer"
    assert publish.file_path("https://casreg/x/transfer") == "https://casreg/x/transfer"
    assert publish.file_path("http://h:1/a+b%41") == "http://h:1/a%2Bb%2541"  # URLDecoder: + is a space
    assert publish.file_path(None) == ""
    for bad in ("ftp://h/x", "http://user:pw@h/x", "http:///x", "http://h:99999/x"):
        with pytest.raises(InvalidInput):
            publish.file_path(bad)


def test_a_version_whose_pipeline_lists_other_parties_is_refused(store, tmp_path):
    from casreg.errors import Corrupt
    dest = tmp_path / "host-files"
    store.checkout(f"models/{MODEL}/{VERSION}", str(dest))
    host = "host#10001#guest-9999#host-10000#model"  # a party the Pipeline does not list
    store.commit(str(dest), f"models/{host}/{VERSION}")
    with pytest.raises(Corrupt, match=r"does not list this party \(host 10001\)"):
        publish.parties(store, host, VERSION)


def test_checked_in_stubs_are_what_the_proto_gives():
    pytest.importorskip("grpc_tools")
    from casreg.fate.proto import regenerate
    assert regenerate.stale() == []


@pytest.mark.slow
def test_cli_exit_codes_one_line_each(store, serving, tmp_path):
    path = store.path
    store.close()
    run_cli("--store", path, "serving", "bind", "lr-test", MODEL, VERSION, check=0)
    assert b"lr-test" in run_cli("--store", path, "serving", "list", check=0).stdout
    proc = run_cli("--store", path, "serving", "bind", "lr-test", MODEL, VERSION, "--expect-old", "none", check=4)
    assert "serves" in one_line_error(proc)
    assert run_cli("--store", path, "serving", "publish", "lr-test", "--serving", serving.address,
                   "--transfer-url", TRANSFER, check=0).stdout.count(b": ok") == 2
    serving.status, serving.message = 1, "no such model"
    proc = run_cli("--store", path, "serving", "publish", "lr-test", "--serving", serving.address, check=7)
    assert "no such model" in one_line_error(proc)
    dead = serving.address.rsplit(":", 1)[0] + ":1"
    proc = run_cli("--store", path, "serving", "publish", "lr-test", "--serving", dead, "--timeout", "5", check=6)
    assert "did not answer" in one_line_error(proc)
    run_cli("--store", path, "serving", "unbind", "lr-test", check=0)
    assert "not bound" in one_line_error(run_cli("--store", path, "serving", "unbind", "lr-test", check=3))


def test_push_all_carries_bindings_and_fetch_brings_them(store, remote, tmp_path):
    from casreg.remotes import ops
    store.serving_bind("lr-test", MODEL, VERSION)
    ops.config(store).add("origin", remote.url)
    store.push("origin", [], all_refs=True)
    assert "serving/lr-test" in ops.ls_remote(store, "origin")
    other = new_store(tmp_path, "other", remote)
    other.close()
    there = Registry(other.path)
    try:
        for ref in (f"models/{MODEL}/{VERSION}", "serving/lr-test"):
            there.pull("origin", ref)
        assert [(r["service_id"], r["model"], r["version"]) for r in there.serving_list()] == [
            ("lr-test", MODEL, VERSION)]
    finally:
        there.close()


class FetchingServing(RecordingServing):
    """On publishLoad, fetches the model as FATE-Serving's FateFlowModelLoader does: URL-decodes
    filePath and POSTs {"name": tableName, "namespace": namespace} of its local party there."""

    def publishLoad(self, request, context):
        import json
        import urllib.parse
        import urllib.request
        info = request.model[request.local.role].roleModelInfo[request.local.partyId]
        body = json.dumps({"name": info.tableName, "namespace": info.namespace}).encode()
        post = urllib.request.Request(urllib.parse.unquote_plus(request.filePath), data=body, method="POST",
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=30) as reply:
            self.fetched = json.loads(reply.read())
        return self._answer("publishLoad", request)


@pytest.mark.slow
def test_the_serving_loads_the_model_from_the_casreg_serve_publish_names(store):
    import json

    from tests.test_serve import TRANSFER as FATE_FLOW_REPLY
    from tests.test_serve import Server
    store.serving_bind("lr-test", MODEL, VERSION)
    casreg_serve = Server(store.path, "--read-only")
    servicer = FetchingServing()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    pb_grpc.add_ModelServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        store.serving_publish("lr-test", [f"127.0.0.1:{port}"], transfer_url=casreg_serve.url)
    finally:
        server.stop(None)
        casreg_serve.stop()
    with open(FATE_FLOW_REPLY, encoding="utf-8") as f:
        assert servicer.fetched == json.load(f)  # what FATE-Flow 1.11.2 answers for this model
    assert [n for n, _ in servicer.calls] == ["publishLoad", "publishBind"]
