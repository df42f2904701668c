"""casreg.fedn.ModelStorage as a FEDn combiner's model storage, driven through FEDn's own ModelService."""

import inspect
import os
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

import casreg
from casreg.fedn import ModelStatus, ModelStorage
from tests.helpers import random_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def storage(tmp_path):
    s = ModelStorage(str(tmp_path / "fedn-store"), tmp_dir=str(tmp_path / "spool"))
    os.makedirs(tmp_path / "spool")
    yield s
    s.close()


def _fedn():
    pb = pytest.importorskip("fedn.network.grpc.fedn_pb2")
    from fedn.network.combiner import modelservice
    return pb, modelservice


def _service(storage):
    """FEDn's ModelService with casreg as its storage, the way the README installs it."""
    _, modelservice = _fedn()
    service = modelservice.ModelService()
    service.temp_model_storage = storage
    return service


def _upload(service, model_id: str, data: bytes):
    """What a FEDn client sends: FEDn's upload_request_generator (1 MiB ModelRequests, then OK)."""
    import io
    _, modelservice = _fedn()
    return service.Upload(modelservice.upload_request_generator(io.BytesIO(data), model_id), None)


def _download(service, model_id: str) -> tuple[bytes, list[int]]:
    """What a FEDn client reads back: the IN_PROGRESS parts' data, and every part's status."""
    pb, _ = _fedn()
    parts = list(service.Download(pb.ModelRequest(id=model_id), None))
    return b"".join(p.data for p in parts if p.status == pb.ModelStatus.IN_PROGRESS), [p.status for p in parts]


# -- the storage on its own --------------------------------------------------------------------------

def test_statuses_are_fedns_and_the_class_is_fedns_model_storage(storage):
    pb, _ = _fedn()
    from fedn.network.storage.models.modelstorage import ModelStorage as FednModelStorage
    assert isinstance(storage, FednModelStorage)
    assert [(m.name, m.value) for m in ModelStatus] == list(pb.ModelStatus.items())


def test_without_fedn_the_same_methods_on_a_plain_base(tmp_path):
    code = (
        "import sys; sys.modules['fedn'] = None\n"  # fedn not importable
        "from casreg.fedn import ModelStorage, ModelStatus\n"
        "assert ModelStorage.__mro__[1] is object\n"
        f"s = ModelStorage({str(tmp_path / 'store')!r})\n"
        "p = s.get_ptr('m'); p.write(b'weights'); s.set_model_metadata('m', ModelStatus.OK); p.close()\n"
        "assert s.get('m').read() == b'weights' and s.get_model_metadata('m') == 0 and s.exist('m')\n"
        "assert s.delete('m') and s.get_model_metadata('m') == ModelStatus.UNKNOWN\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.stdout.strip() == "ok", out.stderr


def test_get_ptr_lands_on_close_and_statuses_follow_fedns_protocol(storage, tmp_path):
    update = random_bytes(1 << 20, "round-1")
    assert not storage.exist("3f2a") and storage.get("3f2a") is None
    assert storage.get_model_metadata("3f2a") == ModelStatus.UNKNOWN  # TempModelStorage's answer
    ptr = storage.get_ptr("3f2a")
    ptr.write(update[:600_000])
    assert storage.get_ptr("3f2a") is ptr  # the same file until it is closed
    storage.set_model_metadata("3f2a", ModelStatus.IN_PROGRESS)
    ptr.write(update[600_000:])
    storage.set_model_metadata("3f2a", ModelStatus.OK)  # FEDn says OK before it closes the file
    assert not storage.exist("3f2a") and storage.get("3f2a") is None
    assert storage.get_model_metadata("3f2a") == ModelStatus.IN_PROGRESS
    assert storage.registry.list_refs("fedn/") == []
    ptr.flush()
    ptr.close()
    assert os.listdir(tmp_path / "spool") == []  # the temporary file is gone
    assert storage.exist("3f2a") and storage.get("3f2a").read() == update
    assert storage.get_model_metadata("3f2a") == ModelStatus.OK
    assert storage.registry.metadata("fedn/3f2a") == {"fedn_status": "OK"}
    with pytest.raises(ValueError):
        ptr.write(b"late")

    # A status changed later is a note beside the version: get serves only OK.
    assert storage.set_model_metadata("3f2a", ModelStatus.FAILED)
    assert storage.get("3f2a") is None and storage.get_model_metadata("3f2a") == ModelStatus.FAILED
    assert storage.set_model_metadata("3f2a", ModelStatus.OK) and storage.get("3f2a").read() == update
    with pytest.raises(TypeError, match="ModelStatus"):
        storage.set_model_metadata("3f2a", {"round": 2})
    # A status for an id with nothing stored is kept, as TempModelStorage keeps it.
    assert storage.set_model_metadata("never-uploaded", ModelStatus.FAILED)
    assert storage.get_model_metadata("never-uploaded") == ModelStatus.FAILED and not storage.exist("never-uploaded")


def test_a_second_upload_to_an_id_is_a_new_version_on_top(storage):
    first, second = random_bytes(300_000, "a"), random_bytes(300_000, "b")
    storage.set_model("m", first, {"round": 1})
    storage.set_model("m", second, {"round": 2})
    assert storage.get("m").read() == second
    assert [v.commit.meta for v in storage.registry.log("fedn/m")] == [{"round": 2, "fedn_status": "OK"},
                                                               {"round": 1, "fedn_status": "OK"}]
    storage.set_model("m", second)  # the same bytes: no new version
    assert len(storage.registry.log("fedn/m")) == 2


def test_delete_keeps_the_history_until_gc_and_delete_all(storage):
    update = random_bytes(1 << 20, "round-1")
    storage.set_model("3f2a", update)
    storage.set_model("4b1c", update[:-10] + b"0123456789")
    assert storage.registry.stats()["unique_chunk_bytes"] < 1.2 * len(update)  # the second update dedups
    assert storage.delete("3f2a") and not storage.exist("3f2a") and storage.get("3f2a") is None
    assert storage.get_model_metadata("3f2a") == ModelStatus.UNKNOWN
    assert not storage.delete("3f2a")  # as TempModelStorage: nothing to delete
    storage.registry.gc()  # within the grace period: kept
    storage.registry.restore_version("fedn/3f2a")
    assert storage.get("3f2a").read() == update
    open_ptr = storage.get_ptr("5d2e")
    open_ptr.write(b"half")
    assert storage.delete_all()
    assert storage.registry.list_refs("fedn/") == [] and open_ptr.closed
    assert storage.get_model_metadata("5d2e") == ModelStatus.UNKNOWN
    storage.registry.restore_version("fedn/4b1c")
    assert storage.get("4b1c").read() == update[:-10] + b"0123456789"


def test_an_upload_never_closed_is_never_visible(storage, tmp_path):
    """A client that goes away mid-stream: FEDn's Upload returns without closing the file."""
    pb, _ = _fedn()
    service = _service(storage)
    model = random_bytes(3 << 20, "cut")

    def cut_stream():  # two of the three 1 MiB chunks, never the closing OK message
        for i in range(2):
            yield pb.ModelRequest(id="cut", data=model[i << 20:(i + 1) << 20], status=pb.ModelStatus.IN_PROGRESS)

    assert service.Upload(cut_stream(), None) is None

    def broken_stream():  # gRPC raises out of the request iterator when the client cancels
        yield pb.ModelRequest(id="broken", data=model[:1 << 20], status=pb.ModelStatus.IN_PROGRESS)
        raise RuntimeError("client cancelled")

    with pytest.raises(RuntimeError):
        service.Upload(broken_stream(), None)
    for model_id in ("cut", "broken"):
        assert not storage.exist(model_id) and storage.get(model_id) is None
        assert storage.get_model_metadata(model_id) == ModelStatus.IN_PROGRESS
        data, statuses = _download(service, model_id)
        assert data == b"" and statuses == [pb.ModelStatus.IN_PROGRESS, pb.ModelStatus.FAILED]
    assert storage.registry.list_refs("fedn/") == [] and storage.registry.stats()["versions"] == 0
    assert storage.delete("cut") and storage.delete("broken")  # aborting discards the spooled bytes
    assert os.listdir(tmp_path / "spool") == []
    assert storage.get_model_metadata("cut") == ModelStatus.UNKNOWN


def test_readme_install_matches_fedns_combiner():
    """The README replaces ModelService in fedn.network.combiner.combiner: Combiner builds it there."""
    pytest.importorskip("fedn")
    import fedn.network.combiner.combiner as fedn_combiner
    from fedn.network.combiner.modelservice import ModelService
    assert fedn_combiner.ModelService is ModelService
    assert "modelservice = ModelService()" in inspect.getsource(fedn_combiner.Combiner.__init__)
    assert "self.temp_model_storage = TempModelStorage()" in inspect.getsource(ModelService.__init__)
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "fedn_combiner.ModelService = CasregModelService" in readme


# -- FEDn's ModelService over casreg: federated rounds -------------------------------------------------

WEIGHTS = (4 << 20) // 4  # 4 MiB of float32
ROUNDS = 20


@pytest.mark.slow
@pytest.mark.parametrize("codec_name", ["zstd", "delta"])
def test_combiner_rounds_through_fedns_model_service(tmp_path, codec_name):
    """20 rounds of a 4 MiB float32 model whose every weight moves a little each round (a global
    model after aggregation), each uploaded under a new id as FEDn's combiner does, read back by
    Download byte-identical."""
    pb, _ = _fedn()
    path = str(tmp_path / "store")
    casreg.Repository.init(path, codec_name=codec_name).close()
    storage = ModelStorage(path)
    service = _service(storage)
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 0.05, WEIGHTS).astype(np.float32)
    uploaded, ids = [], []
    for _ in range(ROUNDS):
        weights = (weights - 1e-3 * rng.normal(0, 0.05, WEIGHTS)).astype(np.float32)  # an SGD-sized step
        model_id = str(uuid.uuid4())
        data = weights.tobytes()
        response = _upload(service, model_id, data)
        assert (response.id, response.status) == (model_id, pb.ModelStatus.OK)
        assert storage.get_model_metadata(model_id) == pb.ModelStatus.OK and service.exist(model_id)
        uploaded.append(data)
        ids.append(model_id)
    for model_id, data in zip(ids, uploaded):
        got, statuses = _download(service, model_id)
        assert got == data  # byte-identical
        assert statuses[-1] == pb.ModelStatus.OK and set(statuses[:-1]) == {pb.ModelStatus.IN_PROGRESS}
        assert service.get_model(model_id).getvalue() == data  # the combiner's own reader
    stats = storage.registry.stats()
    total = sum(len(d) for d in uploaded)
    assert stats["versions"] == ROUNDS and stats["logical_bytes"] == total
    print(f"\n{codec_name}: {ROUNDS} uploads of {len(uploaded[0])} B = {total} B; "
          f"stored_bytes {stats['stored_bytes']} ({stats['stored_bytes'] / total:.3f}), "
          f"disk_bytes {stats['disk_bytes']} ({stats['disk_bytes'] / total:.3f})")
    assert stats["stored_bytes"] < (0.75 if codec_name == "delta" else 1.0) * total
    storage.close()


def test_concurrent_uploads_from_the_servers_threads(storage):
    """FEDn's gRPC server runs Upload on a thread pool: clients' uploads of different ids at once."""
    service = _service(storage)
    models = {f"client-{i}": random_bytes(1 << 20, f"client-{i}") for i in range(4)}
    errors: list[BaseException] = []

    def client(model_id):
        try:
            _upload(service, model_id, models[model_id])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for model_id, data in models.items():
        assert _download(service, model_id)[0] == data
