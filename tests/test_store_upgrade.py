"""A store written by casreg 0.1.0 (tests/fixtures/stores, made with that release's CLI: two
versions of models/mlp, v2's metadata changed the old way, a tag, a deleted ref) opens and keeps
working. Nothing in it needs rewriting: metadata changed by 0.1.0 stays in its commits (the
version then had a new id, as 0.1.0 did it); new changes go beside the version."""

import os
import tarfile

import pytest

from casreg.registry import Registry

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "stores", "casreg-0.1.0.tar.gz")


@pytest.fixture
def old_store(tmp_path):
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    return str(tmp_path / ".casreg")


def test_a_store_of_release_0_1_0_opens_and_keeps_working(old_store, tmp_path):
    with Registry(old_store) as reg:
        assert reg.verify(full=True) == []
        assert [r["version"] for r in reg.versions("mlp")] == ["v1", "v2"]
        assert reg.metadata("models/mlp/v2") == {"accuracy": 0.9}
        assert reg.resolve("golden") == reg.resolve("models/mlp/v1")
        v2 = reg.resolve("models/mlp/v2")
        assert reg.set_meta("models/mlp/v2", {"stage": "prod"}) == v2
        assert reg.metadata("models/mlp/v2") == {"accuracy": 0.9, "stage": "prod"}
        reg.checkout("models/mlp/v1", str(tmp_path / "out"))
        assert (tmp_path / "out" / "config.json").read_bytes() == b'{"hidden": 8}'
        (tmp_path / "out" / "config.json").write_bytes(b'{"hidden": 32}')
        v3 = reg.commit(str(tmp_path / "out"), "models/mlp/v2").id
        assert reg.read_commit(v3).parents == [v2]
        assert reg.gc(prune="never")["deleted_objects"] == 0, "the reflog keeps the deleted scratch ref"
        reg.gc(prune="now")
        assert reg.verify(full=True) == []
