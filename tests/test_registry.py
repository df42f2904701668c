"""The registry layer: tags, aliases, metadata and state, delete/restore, deploy, Python API (FEDn: test_fedn.py)."""

import json

import pytest

import casreg
from casreg.errors import CasregError, RefConflict
from tests.helpers import one_line_error, run_cli
from tests.test_fate import FIXTURE, PARTY, _cache_with_checkpoints


@pytest.fixture
def reg(tmp_path):
    casreg.Registry.init(str(tmp_path / ".casreg")).close()
    r = casreg.Registry(str(tmp_path))  # a project directory holding .casreg works too
    r.fate_import(_cache_with_checkpoints(str(tmp_path / "fate")))
    yield r
    r.close()


V1, V2 = "202611230001", "202611230002"


def test_tags_and_aliases_move_by_compare_and_swap(reg):
    reg.tag("release-1", f"models/{PARTY}/{V1}", description="first release to the hospital cluster")
    assert reg.tags() == [{"name": "release-1", "target": reg.resolve(f"models/{PARTY}/{V1}").hex(),
                           "description": "first release to the hospital cluster"}]
    with pytest.raises(CasregError, match="already exists"):
        reg.tag("release-1", f"models/{PARTY}/{V2}")
    v1 = reg.set_alias(PARTY, "production", V1)
    reg.set_alias(PARTY, "production", V2, expect_old=v1.hex())
    with pytest.raises(RefConflict):
        reg.set_alias(PARTY, "production", V1, expect_old=v1.hex())  # someone moved it: stale view loses
    assert reg.aliases(PARTY) == {"production": V2}
    moves = reg.reflog(f"aliases/{PARTY}/production")
    assert [m["new"] for m in moves] == [reg.resolve(f"models/{PARTY}/{V2}").hex(), v1.hex()]
    assert reg.versions(PARTY)[0]["tags"] == ["release-1"]


def test_metadata_and_state_change_beside_the_version(reg):
    """Issue 11: meta set and state made a new commit, so the id changed under tags and aliases."""
    ref = f"models/{PARTY}/{V2}"
    before = reg.resolve(ref)
    reg.tag("golden", ref)
    reg.set_alias(PARTY, "production", V2)
    committed = reg.read_commit(before).meta
    assert reg.set_meta(ref, {"description": "SecureBoost, 3 parties", "accuracy": 0.91, "validated": True}) == before
    reg.set_state(ref, "archived")
    assert reg.resolve(ref) == before and reg.resolve("tags/golden") == before, "the version's id stays"
    assert reg.aliases(PARTY) == {"production": V2}
    meta = reg.metadata(ref)
    assert meta["accuracy"] == 0.91 and meta["validated"] is True and meta["state"] == "ARCHIVED"
    assert reg.read_commit(before).meta == committed, "the version itself is immutable"
    assert reg.metadata(f"aliases/{PARTY}/production") == meta
    changes = reg.metadata_history(ref)
    assert [c.message for c in changes] == ["meta: state=ARCHIVED", "meta: description=SecureBoost, 3 parties, "
                                            "accuracy=0.91, validated=True"]
    assert changes[0].meta == meta and "accuracy" not in committed
    assert len(reg.log(ref)) == 1, "no metadata commit in the version's history"
    reg.set_meta(ref, {}, remove=["validated"])
    assert "validated" not in reg.metadata(ref)
    assert {v["version"]: v["state"] for v in reg.versions(PARTY)} == {V1: "LIVE", V2: "ARCHIVED"}
    reg.set_model_meta(PARTY, {"description": "credit scoring", "owner": "risk-team"})
    reg.set_state(PARTY, "LIVE", model=True)
    [model] = reg.models()
    assert model["description"] == "credit scoring" and model["state"] == "LIVE"
    with pytest.raises(CasregError, match="LIVE, ARCHIVED"):
        reg.set_state(ref, "DELETED")


def test_delete_then_restore_until_gc(reg, tmp_path):
    ref = f"models/{PARTY}/{V1}"
    cid = reg.delete_version(ref)
    assert ref not in dict(reg.list_refs())
    assert reg.restore_version(ref) == cid
    reg.delete_version(ref)
    for step, _ in reg.list_refs(f"checkpoints/{PARTY}/{V1}/"):
        reg.delete_ref(step)
    reg.gc(prune="now")
    with pytest.raises(CasregError, match="garbage-collected"):
        reg.restore_version(ref)


def test_deploy_a_checkpoint_as_fate_flow_deploys_it(reg, tmp_path):
    from casreg.fate.pipeline import decode_pipeline
    before = reg.stats()
    cid = reg.deploy_checkpoint(PARTY, V1, "hetero_lr_0", "step_2", "202611239999")
    after = reg.stats()
    assert after["unique_chunk_bytes"] - before["unique_chunk_bytes"] < 20_000  # only the Pipeline files are new
    reg.checkout(f"models/{PARTY}/202611239999", str(tmp_path / "deployed"))
    deployed = tmp_path / "deployed"
    step = tmp_path / "fate" / "model_local_cache" / PARTY / V1 / "checkpoint" / "hetero_lr_0" / "2#step_2"
    target = deployed / "variables" / "data" / "hetero_lr_0" / "model"
    assert (target / "HeteroLogisticRegressionParam").read_bytes() == (step / "HeteroLogisticRegressionParam.pb").read_bytes()
    assert (target / "HeteroLogisticRegressionParam.json").exists() and (target / "database.yaml").exists()
    assert not (deployed / "checkpoint").exists(), "FATE's deploy does not copy checkpoints"
    parent = decode_pipeline((step.parents[2] / "pipeline.pb").read_bytes())
    for path in ("pipeline.pb", "variables/data/pipeline/pipeline/Pipeline"):
        child = decode_pipeline((deployed / path).read_bytes())
        assert child["model_version"] == "202611239999"
        assert json.loads(child["train_runtime_conf"])["job_parameters"]["model_version"] == "202611239999"
        assert {k: v for k, v in child.items() if k not in ("model_version", "train_runtime_conf")} == \
            {k: v for k, v in parent.items() if k not in ("model_version", "train_runtime_conf")}
    meta = reg.read_commit(cid).meta
    assert meta["deployed_from"].endswith("hetero_lr_0/2#step_2") and meta["model_version"] == "202611239999"
    assert "fate_archive_sha256" not in meta
    with pytest.raises(CasregError):
        reg.deploy_checkpoint(PARTY, V1, "hetero_lr_0", "step_2", "202611239999")  # the name exists


def test_deploy_rewrites_a_fate_1_11_pipeline_as_fate_flow_does():
    from casreg.fate.pipeline import as_json, decode_pipeline, deployed, encode_pipeline
    conf = {"job_parameters": {"common": {"model_id": "m", "model_version": "1"}}}
    party = {"job_parameters": {"model_id": "m", "model_version": "1"}, "role": {"guest": [9999]}}
    fields = {"train_runtime_conf": json.dumps(conf).encode(), "fate_version": "1.11.2", "model_id": "m",
              "model_version": "1", "parent": 1, "runtime_conf_on_party": json.dumps(party).encode(),
              "parent_info": b"{}", "initiator_party_id": 9999}
    assert decode_pipeline(encode_pipeline(fields)) == fields
    child = deployed(fields, "m", "1", "2")
    assert child["model_version"] == "2" and not child["parent"]
    assert json.loads(child["train_runtime_conf"])["job_parameters"]["common"]["model_version"] == "2"
    assert json.loads(child["runtime_conf_on_party"])["job_parameters"]["model_version"] == "2"
    assert json.loads(child["parent_info"]) == {"parent_model_id": "m", "parent_model_version": "1"}
    assert "parent" not in decode_pipeline(encode_pipeline(child))  # proto3 leaves False out
    doc = json.loads(as_json(child))
    assert doc["modelVersion"] == "2" and doc["parent"] is False and doc["initiatorPartyId"] == 9999


@pytest.mark.slow
def test_registry_cli(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    run_cli("fate", "import", FIXTURE, cwd=tmp_path, check=0)
    ref = f"models/{PARTY}/2020061215063879320146"
    run_cli("tag", "create", "golden", ref, "-m", "reference model", cwd=tmp_path, check=0)
    assert json.loads(run_cli("tag", "list", "--json", cwd=tmp_path, check=0).stdout)[0]["description"] == \
        "reference model"
    run_cli("alias", "set", PARTY, "production", "2020061215063879320146", cwd=tmp_path, check=0)
    run_cli("meta", "set", ref, "framework=fate", "auc=0.87", cwd=tmp_path, check=0)
    meta = json.loads(run_cli("meta", "get", ref, cwd=tmp_path, check=0).stdout)
    assert meta["auc"] == 0.87 and meta["framework"] == "fate"
    run_cli("state", ref, "archived", cwd=tmp_path, check=0)
    assert json.loads(run_cli("versions", PARTY, "--json", cwd=tmp_path, check=0).stdout)[0]["state"] == "ARCHIVED"
    run_cli("delete", ref, cwd=tmp_path, check=0)
    run_cli("restore", ref, cwd=tmp_path, check=0)
    assert "state must be one of" in one_line_error(run_cli("state", ref, "gone", cwd=tmp_path))
    assert "already exists" in one_line_error(run_cli("tag", "create", "golden", ref, cwd=tmp_path))


@pytest.mark.slow
def test_models_versions_and_aliases_for_any_model_name(tmp_path):
    """Issue 11: `casreg alias set mlp production v2` failed for anyone not using FATE ids."""
    from tests.helpers import run_cli, write_file
    run_cli("init", cwd=tmp_path, check=0)
    for version in ("v1", "v2"):
        write_file(tmp_path / "m" / "model.safetensors", f"weights {version}".encode())
        run_cli("commit", "m", "--ref", f"models/mlp/{version}", cwd=tmp_path, check=0)
    run_cli("alias", "set", "mlp", "production", "v2", cwd=tmp_path, check=0)
    assert json.loads(run_cli("alias", "list", "mlp", "--json", cwd=tmp_path, check=0).stdout) == {"production": "v2"}
    rows = json.loads(run_cli("versions", "mlp", "--json", cwd=tmp_path, check=0).stdout)
    assert [r["version"] for r in rows] == ["v1", "v2"] and rows[0]["size"] == len(b"weights v1")
    [model] = json.loads(run_cli("models", "--json", cwd=tmp_path, check=0).stdout)
    assert model["model"] == "mlp" and model["versions"] == 2 and model["latest"] == "v2"
    run_cli("meta", "set", "mlp", "owner=vision", "--model", cwd=tmp_path, check=0)
    run_cli("state", "mlp/production", "archived", cwd=tmp_path, check=0)  # aliases/mlp/production
    rows = json.loads(run_cli("versions", "mlp", "--json", cwd=tmp_path, check=0).stdout)
    assert [r["state"] for r in rows] == ["LIVE", "ARCHIVED"]
