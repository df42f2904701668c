"""FATE's own facts about a version (roles, parties, initiator, components, job) become metadata
that `models` / `versions --where` filter on; a pipeline.pb that lies gives no facts, not a crash."""

import json
import os
import shutil
import zipfile

import pytest

from casreg.fate.facts import WireError, decode_pipeline, version_facts
from casreg.metadata import matches
from tests.helpers import run_cli, write_file

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "fate")
NAME = "guest#9999#guest-9999#host-10000#model_2020061215063879320146.zip"
PARTY = "guest#9999#guest-9999#host-10000#model"


def test_facts_of_the_fate_flow_archive(tmp_path):
    with zipfile.ZipFile(os.path.join(HERE, "fate1112-mysql", NAME)) as zf:
        zf.extractall(tmp_path)
    facts = version_facts(str(tmp_path))
    assert facts["roles"] == {"guest": [9999], "host": [10000]} and facts["parties"] == ["10000", "9999"]
    assert (facts["initiator_role"], facts["initiator_party_id"]) == ("guest", 9999)
    assert facts["fate_job_id"] == "2020061215063879320146" and facts["fate_version"] == "1.4.0"
    assert facts["fate_model_id"] == "guest-9999#host-10000#model"
    assert facts["components"] == ["dataio_0", "dataio_1", "pipeline", "secureboost_0"]
    assert "HeteroSecureBoost" in facts["modules"]


def test_versions_and_models_filter_on_fate_facts(tmp_path):
    shutil.copy(os.path.join(HERE, "fate1112-mysql", NAME), tmp_path / NAME)
    run_cli("init", cwd=tmp_path, check=0)
    run_cli("fate", "import", NAME, cwd=tmp_path, check=0)
    run_cli("commit", str(tmp_path / NAME), "--ref", "models/other/v1", "--meta", "framework=torch",
            cwd=tmp_path, check=0)

    def listed(*args):
        return json.loads(run_cli(*args, "--json", cwd=tmp_path, check=0).stdout)
    assert [m["model"] for m in listed("models", "--where", "roles.host=10000")] == [PARTY]
    assert [m["model"] for m in listed("models", "--where", "framework=torch")] == ["other"]
    assert listed("models", "--where", "parties=10000", "--where", "initiator_role=host") == []
    assert [v["version"] for v in listed("versions", PARTY, "-w", "modules=HeteroSecureBoost")] == [
        "2020061215063879320146"]
    assert listed("versions", PARTY, "-w", "party_id=10000") == []


@pytest.mark.parametrize("data", [b"\x0a", b"\x0a\xff\xff\xff\xff\x0f", b"\x0b", b"\x80" * 20, b"\x0a\x05ab"])
def test_a_pipeline_pb_that_lies_is_refused_by_the_decoder(data):
    with pytest.raises(WireError):
        decode_pipeline(data)


def test_a_damaged_pipeline_gives_no_facts_and_the_import_goes_on(tmp_path):
    version = tmp_path / "cache" / PARTY / "202612020001"
    write_file(version / "pipeline.pb", b"\x1a\xff\xff\xff\xff\x0fgarbage")
    write_file(version / "define" / "define_meta.yaml", b"component_define: [unclosed")
    assert version_facts(str(version)) == {}
    run_cli("init", cwd=tmp_path, check=0)
    run_cli("fate", "import", str(tmp_path / "cache"), cwd=tmp_path, check=0)


def test_matches():
    meta = {"roles": {"host": [10000, 10001]}, "party_id": "9999", "n": 3, "ok": True, "tags": ["a"]}
    assert matches(meta, {"roles.host": 10001, "party_id": 9999, "n": "3", "tags": "a", "ok": True})
    assert not matches(meta, {"roles.guest": 1}) and not matches(meta, {"ok": 1}) and not matches(meta, {"n": True})
    assert not matches(meta, {"party_id.x": 1}) and not matches(meta, {"missing": "x"})
