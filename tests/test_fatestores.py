"""casreg.fatestores against what FATE-Flow itself wrote (fixtures/fate-stores: FATE-Flow 1.11.2's
own rows and objects) and against rows built here the way FATE's storage code builds them, in the
real MariaDB, Redis and SeaweedFS (speaking COS)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import re
import sys
import tarfile
import time
import uuid
import zipfile
from urllib.parse import urlsplit

import pytest

from casreg import fatestores as fs
from casreg.errors import AlreadyExists, Conflict, Corrupt, HostileInput, InvalidInput, InvalidURL, NotFound
from tests.helpers import random_bytes
from tests.servers import MYSQL_URL, REDIS_URL, require_tcp

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "fate-stores")
PMID, VERSION = "guest#9999#guest-9999#host-10000#model", "2020061215063879320146"
PACKAGED_SHA256 = "d67543e0e894071f6f2e5575194bef86710b040d23d583bfdf7726621d6b1fa8"
REDIS_DB = 9   # FATE's keys are fixed: this module's own db, and model ids of its own in it


def fixture(name: str) -> bytes:
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


def fate_serialize_b64(content: bytes) -> str:
    """fate_arch.common.base_utils.serialize_b64(content, to_str=True) on FATE's Python (3.6-3.8:
    pickle's default protocol there is 4)."""
    return base64.b64encode(pickle.dumps(content, protocol=4)).decode("utf-8")


def fate_slices(data: bytes) -> list[tuple[int, str, int]]:
    """(f_slice_index, f_content, f_size) as MysqlModelStorage.store's loop makes them."""
    fr, out, index = io.BytesIO(data), [], 0
    while True:
        content = fr.read(1024 * 1024 * 8)
        if not content:
            return out
        f_content = fate_serialize_b64(content)
        out.append((index, f_content, sys.getsizeof(f_content)))
        index += 1


def big_zip(size: int, seed: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("define/define_meta.yaml", "component_define: {}\n")
        zf.writestr("variables/data/lr_0/model/weights", random_bytes(size, seed))
    return buf.getvalue()


def small_tar(text: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("model.json")
        info.size = len(text.encode())
        tf.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def dump_rows(sql: str) -> list[tuple[str, str, int]]:
    """(f_content, component or '', f_size) of each row in the genuine dump, read from its text."""
    rows = re.findall(r"\((?:\d+,)?\d+,'[^']*',\d+,'[^']*','[^']*','[^']*',(?:'([^']*)',)?(\d+),'([^']*)',\d+\)", sql)
    return [(content, comp, int(size)) for comp, size, content in rows]


# -- locations (no server) -----------------------------------------------------------------------------
def test_service_conf_1x_and_2x(tmp_path):
    conf = tmp_path / "service_conf.yaml"
    conf.write_text("party_id: 9999\nmodel_store_address:\n  storage: mysql\n  database: fate_model\n  user: fate\n"
                    "  password: s3cret\n  host: 10.0.0.5\n  port: 3307\n  max_connections: 10\n  stale_timeout: 10\n")
    loc = fs.read_service_conf(str(conf))
    assert (loc.engine, loc.generation, loc.host, loc.port, loc.user, loc.database) == \
        ("mysql", 1, "10.0.0.5", 3307, "fate", "fate_model")
    assert loc.secrets == {"password": "s3cret"} and "s3cret" not in repr(loc) + str(loc)
    # the deployment guides' spelling (name / passwd) reads the same
    loc = fs.location_from_conf({"model_store_address": {"storage": "mysql", "name": "fate_flow", "user": "fate",
                                                         "passwd": "fate_dev", "host": "127.0.0.1", "port": 3306}})
    assert (loc.database, loc.secrets) == ("fate_flow", {"password": "fate_dev"})
    loc = fs.location_from_conf({"model_store_address": {"storage": "redis", "host": "r", "port": 6380, "db": 2,
                                                         "password": "pw", "ex": 3600}})
    assert (loc.engine, loc.host, loc.port, loc.db, loc.ex, loc.secrets) == ("redis", "r", 6380, 2, 3600, {"password": "pw"})
    assert fs.location_from_conf({"model_store_address": {"storage": "redis", "host": "r", "ex": None}}).ex is None
    loc = fs.location_from_conf({"model_store_address": {"storage": "tencent_cos", "Region": "ap-guangzhou",
                                                         "SecretId": "id", "SecretKey": "key",
                                                         "Bucket": "fate-1250000000"}})
    assert (loc.engine, loc.bucket, loc.region, loc.secrets) == \
        ("tencent_cos", "fate-1250000000", "ap-guangzhou", {"secret_id": "id", "secret_key": "key"})
    # FATE-Flow 2.x: model_store: {engine, <engine>: {...}}, MySQL's password under passwd
    v2 = {"model_store": {"engine": "mysql", "decrypt_key": None, "file": {"path": None},
                          "mysql": {"name": "fate_flow", "user": "fate", "passwd": "fate", "host": "127.0.0.1",
                                    "port": 3306, "max_connections": 100, "stale_timeout": 30},
                          "tencent_cos": {"Region": None, "SecretId": None, "SecretKey": None, "Bucket": None}}}
    loc = fs.location_from_conf(v2)
    assert (loc.engine, loc.generation, loc.database, loc.user, loc.secrets) == \
        ("mysql", 2, "fate_flow", "fate", {"password": "fate"})
    v2["model_store"].update(engine="file", file={"path": str(tmp_path)})
    assert (fs.location_from_conf(v2).engine, fs.location_from_conf(v2).path) == ("file", str(tmp_path))


@pytest.mark.parametrize("doc, key", [
    ({"model_store_address": {"storage": "hdfs"}}, "model_store_address.storage"),
    ({"model_store_address": {"storage": "redis", "host": "r", "ex": "1h"}}, "model_store_address.ex"),
    ({"model_store_address": {"storage": "redis", "host": "r", "ex": 0}}, "model_store_address.ex"),
    ({"model_store_address": {"storage": "mysql", "user": "fate", "host": "h"}}, "model_store_address.database"),
    ({"model_store_address": {"storage": "mysql", "database": "d", "password": "a", "passwd": "b"}},
     "model_store_address.password"),
    ({"model_store_address": {"storage": "mysql", "database": "d", "port": "33o6"}}, "model_store_address.port"),
    ({"model_store_address": {"storage": "mysql", "database": "d", "pasword": "x"}}, "model_store_address.pasword"),
    ({"model_store_address": {"storage": "tencent_cos", "Region": "ap-guangzhou"}}, "model_store_address.Bucket"),
    ({"model_store_address": {"storage": "mysql", "database": "d"}, "encrypt_password": True}, "encrypt_password"),
    ({"model_store_address": {"storage": "mysql", "database": "d"}, "encrypt_password": True}, "CASREG_FATE_PASSWORD"),
    ({"model_store": {"engine": "redis"}}, "model_store.engine"),
    ({"model_store": {"engine": "mysql", "mysql": None}}, "model_store.mysql"),
    ({"model_store": {"engine": "file", "file": {"path": None}}}, "model_store.file.path"),
    ({"model_store": {"engine": "mysql", "decrypt_key": "k", "mysql": {"name": "d"}}}, "model_store.decrypt_key"),
    ({"model_store": {"engine": "mysql", "decrypt_key": "k", "mysql": {"name": "d"}}}, "CASREG_FATE_PASSWORD"),
    ({"model_store": {"engine": "mysql", "mysql": {"name": "d", "passwrd": "x"}}}, "model_store.mysql.passwrd"),
    ({"model_store": {"engine": "file"}, "model_store_address": {"storage": "mysql"}}, "model_store_address"),
    ({"fate_flow": {"host": "x"}}, "model_store_address"),
])
def test_misleading_config_names_its_key(doc, key, monkeypatch):
    monkeypatch.delenv("CASREG_FATE_PASSWORD", raising=False)
    with pytest.raises(InvalidInput) as err:
        fs.location_from_conf(doc)
    message = str(err.value)
    assert key in message and "\n" not in message


def test_an_encrypted_secret_is_replaced_by_the_environment_s_cos_and_file_stores_too(monkeypatch):
    """Review finding: COS's secret is its SecretKey (CASREG_FATE_SECRET_KEY), a file store has
    none; neither was helped by CASREG_FATE_PASSWORD."""
    monkeypatch.delenv("CASREG_FATE_PASSWORD", raising=False)
    monkeypatch.delenv("CASREG_FATE_SECRET_KEY", raising=False)
    monkeypatch.delenv("CASREG_FATE_SECRET_ID", raising=False)
    cos = {"model_store_address": {"storage": "tencent_cos", "Region": "ap-guangzhou", "Bucket": "b-1",
                                   "SecretId": "id", "SecretKey": "ENC(k)"}, "encrypt_password": True}
    with pytest.raises(InvalidInput, match="CASREG_FATE_SECRET_KEY"):
        fs.location_from_conf(cos)
    monkeypatch.setenv("CASREG_FATE_SECRET_KEY", "plain key")
    assert fs.location_from_conf(cos).secrets == {"secret_id": "id", "secret_key": "plain key"}
    monkeypatch.setenv("CASREG_FATE_SECRET_ID", "env id")
    assert fs.location_from_conf(cos).secrets == {"secret_id": "env id", "secret_key": "plain key"}
    files = {"model_store": {"engine": "file", "decrypt_key": "k", "file": {"path": "/m"}}}
    assert fs.location_from_conf(files).path == "/m"


@pytest.mark.parametrize("doc", [
    {"model_store_address": {"storage": "mysql", "database": "d", "password": "ENC(x9f)"}, "encrypt_password": True},
    {"model_store_address": {"storage": "redis", "host": "r", "password": "ENC(x9f)"}, "encrypt_password": True},
    {"model_store": {"engine": "mysql", "decrypt_key": "k", "mysql": {"name": "d", "passwd": "ENC(x9f)"}}},
])
def test_an_encrypted_password_is_replaced_by_the_environment_s(doc, monkeypatch):
    """FATE's encrypted passwords (encrypt_password, 2.x decrypt_key): the message's advice works,
    the password given in CASREG_FATE_PASSWORD is the one used, never the file's ciphertext."""
    monkeypatch.setenv("CASREG_FATE_PASSWORD", "plain secret")
    location = fs.location_from_conf(doc)
    assert location.secrets["password"] == "plain secret"
    assert fs.location_from_conf({**doc, "encrypt_password": False} if "model_store_address" in doc else
                                 {"model_store": {**doc["model_store"], "decrypt_key": ""}}).secrets == \
        {"password": "ENC(x9f)"}, "without encryption the file's password is taken as it is"


def test_a_casreg_remote_on_fate_s_server_is_read_from_the_same_conf(tmp_path):
    """`remote add --fate-config --casreg-format` reads service_conf.yaml with where.py, as `fate
    import` does: the 2.x layout and FATE's spellings too, its strictness too."""
    from casreg.remotes.config import from_fate_config, parse_url, remote_of_fate_store
    conf = tmp_path / "service_conf.yaml"
    conf.write_text("model_store:\n  engine: mysql\n  decrypt_key:\n  mysql:\n    name: fate_flow\n"
                    "    user: fate\n    passwd: s3cret\n    host: 10.0.0.5\n    port: 3307\n")
    url, secrets = from_fate_config(str(conf))
    assert (url, secrets) == ("mysql://fate@10.0.0.5:3307/fate_flow", {"password": "s3cret"})
    cos = fs.location_from_conf({"model_store_address": {
        "storage": "tencent_cos", "Region": "ap-guangzhou", "Bucket": "fate-1250000000", "SecretId": "id",
        "SecretKey": "key", "Scheme": "http", "Endpoint": "cos.internal", "Timeout": 5}})
    url, secrets = remote_of_fate_store(cos)
    u = parse_url(url)
    assert (u.scheme, u.host, u.timeout, secrets) == ("cos", "fate-1250000000", 5.0, {"secret_id": "id", "secret_key": "key"})
    assert (u.query["region"], u.query["scheme"], u.query["endpoint"]) == ("ap-guangzhou", "http", "cos.internal")
    redis = fs.location_from_conf({"model_store_address": {"storage": "redis", "host": "::1", "db": 3, "ex": 60}})
    assert remote_of_fate_store(redis) == ("redis://[::1]:6379/3", {})  # FATE's TTL is for FATE's keys
    assert parse_url("redis://[::1]:6379/3").database == "3"
    assert remote_of_fate_store(fs.parse_store_url("mysql://fate@db/fate_model"))[0] == "mysql://fate@db/fate_model"
    with pytest.raises(InvalidInput, match="file model store"):
        remote_of_fate_store(fs.location_from_conf({"model_store": {"engine": "file", "file": {"path": "/m"}}}))
    # what FATE-Flow would not read is refused here as by `fate import` (it once was taken)
    conf.write_text("model_store_address:\n  storage: MySQL\n  host: h\n")
    with pytest.raises(InvalidInput, match="model_store_address.storage"):
        from_fate_config(str(conf))
    conf.write_text("model_store_address:\n  storage: mysql\n  database: d\n  pasword: x\n")
    with pytest.raises(InvalidInput, match="model_store_address.pasword"):
        from_fate_config(str(conf))
    with pytest.raises(InvalidInput, match="cannot read FATE config"):
        from_fate_config(str(tmp_path / "missing.yaml"))


def test_remote_add_takes_a_url_or_a_fate_config_not_both(tmp_path):
    """Both given, the config's server silently won over the URL typed: now refused, nothing added."""
    from tests.helpers import run_cli
    conf = tmp_path / "service_conf.yaml"
    conf.write_text("model_store_address:\n  storage: redis\n  host: 127.0.0.1\n  port: 6379\n")
    run_cli("init", tmp_path / "store", check=0)
    both = run_cli("--store", tmp_path / "store", "remote", "add", "fate", "redis://127.0.0.1:6380/2",
                   "--fate-config", conf, "--casreg-format")
    assert both.returncode == 2 and b"not both" in both.stderr and b"Traceback" not in both.stderr
    listed = run_cli("--store", tmp_path / "store", "remote", "list", "--json", check=0).stdout
    assert json.loads(listed) == []


def test_store_urls():
    loc = fs.parse_store_url("mysql://fate@db.example:3307/fate_model")
    assert (loc.engine, loc.generation, loc.user, loc.host, loc.port, loc.database) == \
        ("mysql", None, "fate", "db.example", 3307, "fate_model")
    loc = fs.parse_store_url("redis://127.0.0.1:6379/3?ex=600&timeout=5")
    assert (loc.engine, loc.db, loc.ex, loc.timeout) == ("redis", 3, 600, 5.0)
    for url in ("cos://fate-1250000000.ap-guangzhou/", "cos://fate-1250000000.cos.ap-guangzhou.myqcloud.com",
                "cos://fate-1250000000?region=ap-guangzhou"):
        loc = fs.parse_store_url(url)
        assert (loc.engine, loc.bucket, loc.region) == ("tencent_cos", "fate-1250000000", "ap-guangzhou"), url
    loc = fs.parse_store_url("cos://fate-1250000000?region=ap-guangzhou&scheme=http&ip=127.0.0.1&port=8333")
    assert dict(loc.cos) == {"scheme": "http", "ip": "127.0.0.1", "port": "8333"}
    assert fs.parse_store_url("file:///srv/fate/model").path == "/srv/fate/model"
    for bad in ("mysql://fate:pw@db/fate_model", "mysql://fate@db/fate_model?prefix=x_", "mysql://fate@db/",
                "redis://r:6379/0?ex=0", "redis://r:6379/0?ex=10&ex=20", "cos://fate-1250000000.ap-guangzhou/casreg",
                "s3://bucket/x", "cos://fate-1250000000"):
        with pytest.raises(InvalidURL) as err:
            fs.parse_store_url(bad)
        assert "pw" not in str(err.value).replace("pwd", ""), bad


# -- slices (no server) --------------------------------------------------------------------------------------
def test_slices_are_fates_own_bytes():
    """FATE-Flow 1.11.2's rows, byte for byte: our encoding of their decoded slices gives their text."""
    rows = dump_rows(fixture("fate111-mysql.sql").decode())
    assert [c for _, c, _ in rows] == ["", "dataio_0", "secureboost_0"]
    for content, _, size in rows:
        piece = fs.decode_slice(content, "row", pickled=True)
        assert fs.encode_slice(piece) == content
        assert fs.slice_size(content) == size  # what sys.getsizeof gave on FATE's Python 3.8
        if sys.version_info < (3, 12):
            assert sys.getsizeof(content) == size
    assert hashlib.sha256(fs.decode_slice(rows[0][0], "row", True)).hexdigest() == PACKAGED_SHA256


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_and_damaged_slices(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(HostileInput, match="os.system|posix.system"):
        fs.decode_slice(base64.b64encode(pickle.dumps(Evil(marker), protocol=4)).decode(), "row x", True)
    assert not marker.exists()
    with pytest.raises(HostileInput, match="holds a list"):
        fs.decode_slice(base64.b64encode(pickle.dumps([b"x"], protocol=4)).decode(), "row x", True)
    with pytest.raises(HostileInput, match="bytearray|global"):
        fs.decode_slice(base64.b64encode(pickle.dumps(bytearray(b"x"), protocol=4)).decode(), "row x", True)
    good = pickle.dumps(b"PK\x05\x06" + bytes(18), protocol=4)
    for damaged, what in ((base64.b64encode(good).decode()[:-3] + "*==", "not valid base64"),
                          (base64.b64encode(good[:-4]).decode(), "not a pickle"),
                          (base64.b64encode(good + b"junk").decode(), "after its pickle"),
                          ("wrzDqcOp", "not a pickle")):
        with pytest.raises(Corrupt, match=what) as err:
            fs.decode_slice(damaged, "t_machine_learning_model m v slice 0", True)
        assert "slice 0" in str(err.value)
    assert fs.decode_slice(base64.b64encode(b"plain").decode(), "x", pickled=False) == b"plain"


# -- the 2.x file engine (no server) -----------------------------------------------------------------------
def test_file_store_v2(tmp_path):
    store = fs.open_url(f"file://{tmp_path}")
    entry = store.write("guest#9999#202412", "v1", small_tar("{}"), component="lr_0", output_key="model",
                        layout=fs.LAYOUT_2)
    assert entry.storage_key == "202412/v1/guest/9999/lr_0/model"
    assert (tmp_path / "202412/v1/guest/9999/lr_0/model").read_bytes() == small_tar("{}")
    assert [(e.layout, e.party_model_id, e.model_version, e.kind, e.component, e.output_key) for e in store.entries()] \
        == [(fs.LAYOUT_2, "guest#9999#202412", "v1", fs.COMPONENT, "lr_0", "model")]
    assert store.read(store.entries()[0]).data == small_tar("{}")
    with pytest.raises(AlreadyExists):
        store.write("guest#9999#202412", "v1", small_tar("{}"), component="lr_0", output_key="model")
    store.write("guest#9999#202412", "v1", small_tar('{"a": 1}'), component="lr_0", output_key="model", force=True)
    assert store.read(store.entries()[0]).data == small_tar('{"a": 1}')
    (tmp_path / "202412/v1/guest/9999/lr_0/bad").write_bytes(b"not a tar" * 100)
    bad = [e for e in store.entries() if e.output_key == "bad"][0]
    with pytest.raises(Corrupt, match="not a tar"):
        store.read(bad)
    with pytest.raises(InvalidInput):
        store.write("guest#9999#../x", "v1", small_tar("{}"), component="lr_0", output_key="model")
    with pytest.raises(InvalidInput, match="not a zip|not a tar"):
        store.write("guest#9999#202412", "v2", b"garbage", component="lr_0", output_key="model")


# -- MySQL ---------------------------------------------------------------------------------------------------
@pytest.fixture
def mysql_db():
    """A database of this test's own (FATE's table names are fixed); dropped afterwards."""
    import pymysql
    parts = urlsplit(MYSQL_URL)
    require_tcp(parts.hostname, parts.port or 3306, "MariaDB/MySQL")
    name = f"casreg_fs_{uuid.uuid4().hex[:10]}"
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", autocommit=True,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    conn.select_db(name)
    yield f"mysql://{parts.username or 'root'}@{parts.hostname}:{parts.port or 3306}/{name}", conn
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{name}`")
    conn.close()


def load_dump(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(fixture("fate111-mysql.sql").decode())
        while cur.nextset():
            pass


def query(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


@pytest.mark.slow
def test_mysql_reads_what_fate_wrote(mysql_db):
    url, conn = mysql_db
    load_dump(conn)
    with fs.open_url(url) as store:
        entries = store.entries()
        assert [(e.layout, e.party_model_id, e.model_version, e.kind, e.component) for e in entries] == [
            (fs.LAYOUT_1_9, PMID, VERSION, fs.PIPELINE, None),
            (fs.LAYOUT_1_9, PMID, VERSION, fs.COMPONENT, "dataio_0"),
            (fs.LAYOUT_1_9, PMID, VERSION, fs.COMPONENT, "secureboost_0")]
        archive = store.read(entries[0])
        assert archive.data == fixture("fate1112_packaged.zip") and archive.sha256 == PACKAGED_SHA256
        assert archive.recorded_sha256 is None      # this database has no t_machine_learning_model_info
        component = store.read(entries[2])
        names = zipfile.ZipFile(io.BytesIO(component.data)).namelist()
        assert names and all(n.startswith(("variables/data/secureboost_0/", "checkpoint/secureboost_0/")) for n in names)
        # FATE 1.9+ records the archive's SHA-256 beside the job; where that table is here, it comes back
        query(conn, "CREATE TABLE t_machine_learning_model_info (f_role VARCHAR(50), f_party_id VARCHAR(10), "
                    "f_model_id VARCHAR(100), f_model_version VARCHAR(100), f_archive_sha256 VARCHAR(100))")
        query(conn, "INSERT INTO t_machine_learning_model_info VALUES ('guest', '9999', 'guest-9999#host-10000#model', "
                    "%s, %s)", (VERSION, PACKAGED_SHA256))
        assert store.read(entries[0]).check().recorded_sha256 == PACKAGED_SHA256
        query(conn, "UPDATE t_machine_learning_model_info SET f_archive_sha256 = %s", ("0" * 64,))
        with pytest.raises(Corrupt, match="FATE recorded 0000"):
            store.read(entries[0]).check()


@pytest.mark.slow
@pytest.mark.parametrize("layout", [fs.LAYOUT_1_8, fs.LAYOUT_1_9])
def test_mysql_writes_fates_rows(mysql_db, layout):
    """A 20 MiB archive in 8 MiB slices, each row what FATE's MysqlModelStorage.store writes."""
    url, conn = mysql_db
    data = big_zip(20 << 20, "fatestores-" + layout)
    pmid = "host#10000#guest-9999#host-10000#model"
    with fs.open_url(url) as store:
        before = int(time.time() * 1000)
        entry = store.write(pmid, "v20", data, layout=layout)
        assert (entry.layout, entry.kind) == (layout, fs.PIPELINE) and store.layout() == layout
        rows = query(conn, "SELECT * FROM t_machine_learning_model ORDER BY f_slice_index")
        columns = [r[0] for r in query(conn, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                                             "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't_machine_learning_model' "
                                             "ORDER BY ORDINAL_POSITION")]
        if layout == fs.LAYOUT_1_8:  # the 1.8 peewee model's fields, in its order
            assert columns == ["f_model_id", "f_model_version", "f_size", "f_create_time", "f_update_time",
                               "f_description", "f_content", "f_slice_index"]
        else:                        # as FATE-Flow 1.11.2 created it (the genuine dump)
            assert columns == ["f_create_time", "f_create_date", "f_update_time", "f_update_date", "f_model_id",
                               "f_model_version", "f_size", "f_content", "f_slice_index"]
        got = [dict(zip(columns, r)) for r in rows]
        assert [(r["f_slice_index"], r["f_content"], r["f_size"]) for r in got] == fate_slices(data)
        assert len(got) == 3 and all(r["f_model_id"] == pmid and r["f_model_version"] == "v20" for r in got)
        for r in got:
            assert before <= r["f_create_time"] <= r["f_update_time"] <= int(time.time() * 1000)
            if layout == fs.LAYOUT_1_8:
                assert r["f_description"] == ""
            else:
                assert r["f_create_date"].strftime("%Y-%m-%d %H:%M:%S") == \
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["f_create_time"] / 1000))
        assert [(e.layout, e.party_model_id, e.model_version) for e in store.entries()] == [(layout, pmid, "v20")]
        assert store.read(store.entries()[0]).data == data
        with pytest.raises(AlreadyExists):
            store.write(pmid, "v20", data, layout=layout)
        small = big_zip(1000, "small")
        store.write(pmid, "v20", small, force=True)  # the table says which layout
        assert query(conn, "SELECT COUNT(*) FROM t_machine_learning_model")[0][0] == 1  # no slices left over
        assert store.read(store.entries()[0]).data == small
        other = fs.LAYOUT_1_9 if layout == fs.LAYOUT_1_8 else fs.LAYOUT_1_8
        with pytest.raises(Conflict):
            store.write(pmid, "v21", small, layout=other)


@pytest.mark.slow
def test_mysql_tables_match_fates(mysql_db):
    """Tables casreg creates are FATE-Flow 1.11.2's own (SHOW CREATE TABLE of the genuine dump)."""
    url, conn = mysql_db
    with fs.open_url(url) as store:
        store.write(PMID, VERSION, fixture("fate1112_packaged.zip"))
        component = zipfile.ZipFile(io.BytesIO(fixture("fate1112_packaged.zip")))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name in component.namelist():
                if name.startswith("variables/data/dataio_0/"):
                    zf.writestr(name, component.read(name))
        store.write(PMID, VERSION, buf.getvalue(), component="dataio_0")
        ours = {t: query(conn, f"SHOW CREATE TABLE {t}")[0][1] for t in (fs.MODEL_TABLE, fs.COMPONENT_TABLE)}
        rows = query(conn, "SELECT f_component_name, f_slice_index, f_size, f_content FROM t_machine_learning_component")
        assert [r[:3] for r in rows] == [("dataio_0", 0, 49 + len(rows[0][3]))]
        for t in ours:
            query(conn, f"DROP TABLE {t}")
        load_dump(conn)
        for t, mine in ours.items():
            theirs = query(conn, f"SHOW CREATE TABLE {t}")[0][1]
            assert re.sub(r" AUTO_INCREMENT=\d+", "", mine) == re.sub(r" AUTO_INCREMENT=\d+", "", theirs)


@pytest.mark.slow
def test_mysql_v2_rows(mysql_db):
    url, conn = mysql_db
    data = small_tar('{"coef": [1, 2]}')
    with fs.open_store(fs.Location("mysql", 2, **_mysql_parts(url))) as store:
        entry = store.write("guest#9999#202501021200", "0", data, component="lr_0", output_key="train_output_model")
        assert entry.layout == fs.LAYOUT_2 and store.layout() == fs.LAYOUT_2
        rows = query(conn, "SELECT f_storage_key, f_content, f_slice_index FROM t_machine_learning_model")
        assert rows == (("202501021200/0/guest/9999/lr_0/train_output_model", base64.b64encode(data).decode(), 0),)
        [found] = store.entries()
        assert (found.party_model_id, found.component, found.output_key) == \
            ("guest#9999#202501021200", "lr_0", "train_output_model")
        assert store.read(found).data == data
        with pytest.raises(Conflict):
            store.write(PMID, VERSION, fixture("fate1112_packaged.zip"), layout=fs.LAYOUT_1_9)


def _mysql_parts(url: str) -> dict:
    u = fs.parse_store_url(url)
    return {"host": u.host, "port": u.port, "user": u.user, "database": u.database}


@pytest.mark.slow
def test_mysql_damaged_store_refused(mysql_db, tmp_path):
    url, conn = mysql_db
    load_dump(conn)
    where = "f_model_id = %s AND f_model_version = %s"
    store = fs.open_url(url)
    [pipeline] = [e for e in store.entries() if e.kind == fs.PIPELINE]
    good = query(conn, f"SELECT f_content FROM t_machine_learning_model WHERE {where}", (PMID, VERSION))[0][0]

    def refused(kind, pattern):
        with pytest.raises(kind, match=pattern) as err:
            store.read(pipeline)
        assert PMID in str(err.value) and "\n" not in str(err.value)

    query(conn, "INSERT INTO t_machine_learning_model (f_model_id, f_model_version, f_size, f_content, f_slice_index) "
                "VALUES (%s, %s, 1, %s, 2)", (PMID, VERSION, good))
    refused(Corrupt, "slice 1 is missing")
    query(conn, "DELETE FROM t_machine_learning_model WHERE f_slice_index = 2")
    evil = base64.b64encode(pickle.dumps(Evil(tmp_path / "pwned"), protocol=4)).decode()
    for content, kind, pattern in ((evil, HostileInput, "system"),
                                   (good[:100] + "!" + good[101:], Corrupt, "not valid base64"),
                                   (fs.encode_slice(b"not a zip at all" * 10), Corrupt, "not a zip")):
        query(conn, f"UPDATE t_machine_learning_model SET f_content = %s WHERE {where}", (content, PMID, VERSION))
        refused(kind, pattern)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(NotFound):
        store.read(fs.Entry(fs.LAYOUT_1_9, PMID, "no-such-version", fs.PIPELINE))
    # a model id that is not <role>#<party>#<model> is listed and read as it is (the importer judges names)
    query(conn, "CREATE TABLE t_machine_learning_model_info (f_role VARCHAR(50), f_party_id VARCHAR(10), "
                "f_model_id VARCHAR(100), f_model_version VARCHAR(100), f_archive_sha256 VARCHAR(100))")
    query(conn, "INSERT INTO t_machine_learning_model (f_model_id, f_model_version, f_size, f_content, f_slice_index) "
                "VALUES ('odd', 'v', 1, %s, 0)", (fs.encode_slice(fixture("fate1112_packaged.zip")),))
    [odd] = [e for e in store.entries() if e.party_model_id == "odd"]
    assert store.read(odd).data == fixture("fate1112_packaged.zip")
    store.close()


# -- Redis ---------------------------------------------------------------------------------------------------
@pytest.fixture
def redis_store():
    import redis
    parts = urlsplit(REDIS_URL)
    require_tcp(parts.hostname, parts.port or 6379, "Redis")
    base = f"redis://{parts.hostname}:{parts.port or 6379}/{REDIS_DB}"
    r = redis.Redis(host=parts.hostname, port=parts.port or 6379, db=REDIS_DB)
    pmid = f"guest#9999#fs-{uuid.uuid4().hex[:10]}"
    yield base, r, pmid
    for key in r.scan_iter(match=f"FATEFlow:PipelinedModel:{pmid}:*"):
        r.delete(key)
    r.close()


@pytest.mark.slow
def test_redis_as_fate_writes_it(redis_store):
    base, r, pmid = redis_store
    data = fixture("fate1112_packaged.zip")
    key = f"FATEFlow:PipelinedModel:{pmid}:{VERSION}"
    with fs.open_url(f"{base}?ex=120") as store:
        entry = store.write(pmid, VERSION, data)
        assert entry.layout == fs.LAYOUT_1_8 and key in entry.where
        assert r.get(key) == data and 115 <= r.ttl(key) <= 120
        mine = [e for e in store.entries() if e.party_model_id == pmid]
        assert [(e.layout, e.model_version, e.kind) for e in mine] == [(fs.LAYOUT_1_8, VERSION, fs.PIPELINE)]
        assert store.read(mine[0]).data == data
        with pytest.raises(AlreadyExists):           # NX, as FATE without force_update
            store.write(pmid, VERSION, data)
        with pytest.raises(InvalidInput, match="1.7/1.8"):
            store.write(pmid, VERSION, data, component="dataio_0")
    with fs.open_url(base) as store:                 # no ex in the config: no expiry
        store.write(pmid, VERSION, fixture("fate111-cos-PipelinedModel.zip"), force=True)
        assert r.ttl(key) == -1 and r.get(key) == fixture("fate111-cos-PipelinedModel.zip")
        r.set(f"FATEFlow:PipelinedModel:{pmid}:broken", b"PK\x03\x04 truncated")
        with pytest.raises(Corrupt, match="not a zip"):
            store.read(fs.Entry(fs.LAYOUT_1_8, pmid, "broken", fs.PIPELINE))
        with pytest.raises(NotFound):
            store.read(fs.Entry(fs.LAYOUT_1_8, pmid, "absent", fs.PIPELINE))


# -- COS (SeaweedFS) ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cos_keys_as_fate_writes_them(seaweed):
    bucket = seaweed.bucket
    client = seaweed.client()
    pmid = f"guest#9999#fs-{uuid.uuid4().hex[:10]}"
    data = fixture("fate111-cos-PipelinedModel.zip")
    with fs.open_url(seaweed.url(bucket)) as store:
        store.write(pmid, VERSION, data)
        store.write(pmid, VERSION, fixture("fate1112_packaged.zip"), component="dataio_0")
        key = f"FATEFlow/PipelinedModel/{pmid}/{VERSION}.zip"
        assert client.get_object(Bucket=bucket, Key=key)["Body"].get_raw_stream().read() == data
        assert client.head_object(Bucket=bucket, Key=f"FATEFlow/PipelinedComponent/{pmid}/{VERSION}/dataio_0.zip")
        with pytest.raises(AlreadyExists):
            store.write(pmid, VERSION, data)
        # a 1.7/1.8 version with its .zip.sha1 beside it
        client.put_object(Bucket=bucket, Key=f"FATEFlow/PipelinedModel/{pmid}/old.zip", Body=data)
        client.put_object(Bucket=bucket, Key=f"FATEFlow/PipelinedModel/{pmid}/old.zip.sha1",
                          Body=hashlib.sha1(data).hexdigest().encode())
        client.put_object(Bucket=bucket, Key=f"FATEFlow/PipelinedModel/{pmid}/lone.zip", Body=data)
        store.write(pmid, "7", small_tar("{}"), component="lr_0", output_key="model", layout=fs.LAYOUT_2)
        mine = [e for e in store.entries() if e.party_model_id == pmid]
        assert [(e.layout, e.model_version, e.kind, e.component) for e in mine] == [
            (fs.LAYOUT_1_9, VERSION, fs.PIPELINE, None), (fs.LAYOUT_1_9, VERSION, fs.COMPONENT, "dataio_0"),
            (fs.LAYOUT_2, "7", fs.COMPONENT, "lr_0"),
            (fs.LAYOUT_1_X, "lone", fs.PIPELINE, None), (fs.LAYOUT_1_8, "old", fs.PIPELINE, None)]
        assert client.head_object(Bucket=bucket, Key=f"{pmid.split('#')[2]}/7/guest/9999/lr_0/model")
        assert store.read(mine[0]).data == data
        assert store.read(mine[2]).data == small_tar("{}")
        old = store.read(mine[4])
        assert old.check().recorded_sha1 == hashlib.sha1(data).hexdigest()
        client.put_object(Bucket=bucket, Key=f"FATEFlow/PipelinedModel/{pmid}/old.zip.sha1", Body=b"0" * 40)
        with pytest.raises(Corrupt, match="SHA-1"):
            store.read(mine[4]).check()
        client.put_object(Bucket=bucket, Key=f"FATEFlow/PipelinedModel/{pmid}/lone.zip", Body=b"not a zip")
        with pytest.raises(Corrupt, match="not a zip"):
            store.read(mine[3])
