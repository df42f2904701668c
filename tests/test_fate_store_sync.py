"""casreg against FATE-Flow's own model stores, end to end: `fate import --from/--fate-config` takes
what FATE-Flow 1.11.2 wrote into MariaDB (its genuine rows), `fate store` writes back rows FATE-Flow
reads, Redis keys get FATE's TTL, and a damaged store is refused by name."""

from __future__ import annotations

import json
import uuid

import pytest

from casreg import fatestores as fs
from tests.helpers import one_line_error, run_cli
from tests.test_fatestores import PACKAGED_SHA256, PMID, VERSION, fixture, load_dump, mysql_db, query, redis_store  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
REF = f"models/{PMID}/{VERSION}"


def _import(tmp_path, *args, check=0):
    proc = run_cli("fate", "import", *args, "--json", cwd=tmp_path, check=check)
    return json.loads(proc.stdout) if proc.returncode == 0 else proc


def test_fate_flow_s_mysql_rows_in_and_back_out(tmp_path, mysql_db):  # noqa: F811
    url, conn = mysql_db
    load_dump(conn)
    run_cli("init", cwd=tmp_path, check=0)
    report = _import(tmp_path, "--from", url)
    assert sorted(report["versions"]) == [f"components/{PMID}/{VERSION}/dataio_0",
                                          f"components/{PMID}/{VERSION}/secureboost_0", REF]
    assert report["archives"][REF]["sha256"] == PACKAGED_SHA256 and not report["problems"]
    again = _import(tmp_path, "--from", url)
    assert again["new_stored_bytes"] == 0 and sorted(again["unchanged"]) == sorted(report["versions"])
    # back into an empty FATE database: the very rows FATE-Flow wrote
    original = query(conn, "SELECT f_model_id, f_model_version, f_slice_index, f_content, f_size "
                           "FROM t_machine_learning_model")
    components = query(conn, "SELECT f_party_model_id, f_model_version, f_component_name, f_slice_index, "
                             "f_content FROM t_machine_learning_component ORDER BY f_component_name")
    query(conn, "DROP TABLE t_machine_learning_model")
    query(conn, "DROP TABLE t_machine_learning_component")
    out = json.loads(run_cli("fate", "store", REF, "--to", url, "--json", cwd=tmp_path, check=0).stdout)
    assert out["sha256"] == PACKAGED_SHA256 and out["identical"]
    for component in ("dataio_0", "secureboost_0"):
        run_cli("fate", "store", f"components/{PMID}/{VERSION}/{component}", "--to", url, cwd=tmp_path, check=0)
    assert query(conn, "SELECT f_model_id, f_model_version, f_slice_index, f_content, f_size "
                       "FROM t_machine_learning_model") == original
    assert query(conn, "SELECT f_party_model_id, f_model_version, f_component_name, f_slice_index, f_content "
                       "FROM t_machine_learning_component ORDER BY f_component_name") == components
    refused = run_cli("fate", "store", REF, "--to", url, cwd=tmp_path)
    assert refused.returncode == 4 and "force" in one_line_error(refused)


def test_a_damaged_mysql_store_is_refused_by_name_and_nothing_of_it_kept(tmp_path, mysql_db):  # noqa: F811
    url, conn = mysql_db
    load_dump(conn)
    query(conn, "UPDATE t_machine_learning_model SET f_content = 'bm90IGEgcGlja2xl'")  # base64 of "not a pickle"
    run_cli("init", cwd=tmp_path, check=0)
    proc = _import(tmp_path, "--from", url, check=None)
    assert proc.returncode == 1 and PMID in proc.stderr.decode() and "Traceback" not in proc.stderr.decode()
    refs = json.loads(run_cli("refs", "--json", cwd=tmp_path, check=0).stdout)
    assert REF not in refs and f"components/{PMID}/{VERSION}/dataio_0" in refs  # the sound entries came in


def test_redis_ex_is_fate_s_ttl_both_ways(tmp_path, redis_store):  # noqa: F811
    base, r, pmid = redis_store
    zip_path = tmp_path / f"{pmid}_{VERSION}.zip"
    zip_path.write_bytes(fixture("fate1112_packaged.zip"))
    run_cli("init", cwd=tmp_path, check=0)
    _import(tmp_path, str(zip_path))
    ref = f"models/{pmid}/{VERSION}"
    conf = tmp_path / "service_conf.yaml"
    host, port = base.split("//")[1].split("/")[0].split(":")
    conf.write_text(f"model_store_address:\n  storage: redis\n  host: {host}\n  port: {port}\n  db: 9\n  ex: 600\n")
    run_cli("fate", "store", ref, "--fate-config", str(conf), cwd=tmp_path, check=0)
    key = f"{fs.REDIS_PREFIX}{pmid}:{VERSION}"
    assert r.get(key) == fixture("fate1112_packaged.zip") and 590 <= r.ttl(key) <= 600
    (tmp_path / "other").mkdir()
    run_cli("init", cwd=tmp_path / "other", check=0)
    report = _import(tmp_path / "other", "--fate-config", str(conf), "--model", pmid)
    assert list(report["versions"]) == [ref]
    meta = json.loads(run_cli("show", ref, "--json", cwd=tmp_path / "other", check=0).stdout)["meta"]
    assert meta["expires_at"] > 0 and meta["fate_archive_sha256"] == PACKAGED_SHA256


def test_bad_store_input_is_one_line(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    for args, code in ((("--from", "mysql://root:pw@127.0.0.1/x"), 2), (("--from", "ftp://x"), 2),
                       (("x.zip", "--from", "redis://127.0.0.1:6379/9"), 2), ((), 2)):
        proc = run_cli("fate", "import", *args, cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stderr)
        assert one_line_error(proc).startswith("casreg: error:")


def test_fate_flow_s_cos_object_in_and_back_out(tmp_path, seaweed):
    pmid = f"guest#9999#cos-{uuid.uuid4().hex[:8]}"
    key = f"FATEFlow/PipelinedModel/{pmid}/{VERSION}.zip"
    client = seaweed.client()
    client.put_object(Bucket=seaweed.bucket, Key=key, Body=fixture("fate111-cos-PipelinedModel.zip"))
    run_cli("init", cwd=tmp_path, check=0)
    report = _import(tmp_path, "--from", seaweed.url(seaweed.bucket), "--model", pmid)
    ref = f"models/{pmid}/{VERSION}"
    assert list(report["versions"]) == [ref]
    client.delete_object(Bucket=seaweed.bucket, Key=key)
    run_cli("fate", "store", ref, "--to", seaweed.url(seaweed.bucket), cwd=tmp_path, check=0)
    body = client.get_object(Bucket=seaweed.bucket, Key=key)["Body"].get_raw_stream().read()
    assert body == fixture("fate111-cos-PipelinedModel.zip")  # the object FATE put there, bit for bit


def test_a_fate_2_store_s_parties_come_in_as_versions_of_their_own(tmp_path):
    from tests.test_fatestores import small_tar
    store_dir = tmp_path / "fate2"
    store_dir.mkdir()
    with fs.open_url(f"file://{store_dir}") as store:
        for party in ("guest#9999#202412", "host#10000#202412", "arbiter#10001#202412"):
            store.write(party, "0", small_tar(party), component=f"lr_{party[0]}", output_key="model",
                        layout=fs.LAYOUT_2)
    (tmp_path / "site").mkdir()
    run_cli("init", cwd=tmp_path / "site", check=0)
    report = _import(tmp_path / "site", "--from", f"file://{store_dir}")
    assert sorted(report["versions"]) == ["models/arbiter#10001#202412/0", "models/guest#9999#202412/0",
                                          "models/host#10000#202412/0"]
    for party in ("guest#9999#202412", "host#10000#202412", "arbiter#10001#202412"):
        files = json.loads(run_cli("ls", f"models/{party}/0", "--json", cwd=tmp_path / "site", check=0).stdout)
        assert [f["path"] for f in files] == [f"lr_{party[0]}/model"]  # its own output, no other party's
        assert run_cli("cat", f"models/{party}/0:lr_{party[0]}/model", cwd=tmp_path / "site", check=0).stdout == \
            small_tar(party)
