"""Hostile or malformed input from the user or the remote: every case is one line, never a traceback."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

import pytest

from casreg.errors import CasregError, InvalidInput, NonFastForward
from casreg.remotes import RemoteError, open_backend, ops
from casreg.remotes.config import parse_url
from casreg.repo import Repository
from tests import test_remotes
from tests.helpers import one_line_error, random_bytes, run_cli, write_file

pytestmark = pytest.mark.slow  # real servers, subprocess campaigns: not in the fast lane

BAD_URLS = [
    ("redis://127.0.0.1:abc/0", "port"),
    ("redis://127.0.0.1:99999/0", "port"),
    ("mysql://root@127.0.0.1:-1/test", "port"),
    ("gopher://example.com/", "use file://"),
    ("redis://[::1", "ipv6"),
    ("redis://[::1]:x/0", "port"),
    ("redis://", "needs a host"),
    ("redis:///0", "needs a host"),
    ("redis://127.0.0.1:6379/zero", "db number"),
    ("redis://127.0.0.1/0?prefx=a", "prefix, timeout"),
    ("redis://127.0.0.1/0?timeout=soon", "timeout"),
    ("redis://127.0.0.1/0?timeout=0", "timeout"),
    ("mysql://root@127.0.0.1:3306/", "needs a database"),
    ("mysql://root@127.0.0.1/test?prefix=x;drop", "prefix"),
    ("cos://bucket?region=ap-guangzhou", "bucket"),
    ("cos://b-1250000000", "region"),
    ("cos://b-1250000000?region=ap-guangzhou&port=http", "port"),
    ("cos://b-1250000000?region=ap guangzhou", "region"),
    ("file://somehost/x", "file:///"),
    ("redis://u:hunter2@127.0.0.1:abc/0", "port"),
]


@pytest.mark.parametrize("url, problem", BAD_URLS)
def test_malformed_url_is_invalid_input(url, problem):
    for call in (parse_url, open_backend):
        with pytest.raises(InvalidInput) as info:
            call(url)
        message = str(info.value)
        assert problem.lower() in message.lower() and "\n" not in message
        assert "hunter2" not in message


def test_malformed_url_is_one_line_in_the_cli(tmp_path):
    run_cli("init", cwd=tmp_path, check=0)
    for i, (url, problem) in enumerate(BAD_URLS):
        line = one_line_error(run_cli("remote", "add", f"r{i}", url, cwd=tmp_path))
        assert problem.lower() in line.lower() and "hunter2" not in line, line
        line = one_line_error(run_cli("clone", url, tmp_path / f"c{i}", cwd=tmp_path))
        assert problem.lower() in line.lower() and "hunter2" not in line, line
        assert not (tmp_path / f"c{i}").exists()
    assert run_cli("remote", "list", cwd=tmp_path, check=0).stdout == b""


def test_unknown_query_key_lists_the_known_ones():
    with pytest.raises(InvalidInput, match="known for cos://: region, prefix, endpoint, ip, port, scheme, timeout"):
        parse_url("cos://b-1250000000?region=ap-guangzhou&bucket=x")
    with pytest.raises(InvalidInput, match="given twice"):
        parse_url("redis://127.0.0.1/0?prefix=a&prefix=b")


# -- a server that is not what the URL says ------------------------------------------------------
@pytest.fixture
def fake_server():
    """Start TCP servers on free ports: ``start(reply)`` answers every connection with ``reply``
    (after its first bytes arrive), or with nothing at all when ``reply`` is None, and holds it open."""
    sockets, conns = [], []

    def start(reply: bytes | None) -> int:
        srv = socket.create_server(("127.0.0.1", 0))
        sockets.append(srv)

        def serve():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                conns.append(conn)
                if reply is not None:
                    with contextlib.suppress(OSError):
                        conn.recv(65536)
                        conn.sendall(reply)
        threading.Thread(target=serve, daemon=True).start()
        return srv.getsockname()[1]
    yield start
    for s in sockets + conns:
        s.close()


HTTP_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 19\r\n\r\n<html><p>hi</html>\n"
GARBAGE = b"\x05\x00\x00\x00\xff\x01garbage\r\n"
OPEN = {"secret_id": "casreg-test", "secret_key": "casreg-test-secret",
        "access_key_id": "casreg-test", "secret_access_key": "casreg-test-secret"}


def _urls(port: int, query: str = "") -> list[str]:
    return [f"redis://127.0.0.1:{port}/0{'?' if query else ''}{query}",
            f"mysql://root@127.0.0.1:{port}/test{'?' if query else ''}{query}",
            f"cos://b-1250000000?region=ap-guangzhou&scheme=http&ip=127.0.0.1&port={port}{'&' if query else ''}{query}",
            f"s3://b-bucket/x?endpoint=http://127.0.0.1:{port}{'&' if query else ''}{query}"]


def test_a_server_speaking_another_protocol_is_one_remote_error(fake_server, tmp_path):
    ports = [fake_server(HTTP_REPLY), fake_server(GARBAGE), 3306]  # 3306: MariaDB, not Redis
    for port in ports:
        for url in _urls(port, "timeout=2"):
            if url.startswith("mysql") and port == 3306:
                continue
            with pytest.raises(RemoteError) as info:
                open_backend(url, OPEN).refs()
            assert "\n" not in str(info.value), url
    run_cli("init", cwd=tmp_path, check=0)
    run_cli("remote", "add", "web", _urls(ports[0], "timeout=2")[0], cwd=tmp_path, check=0)
    assert "redis at 127.0.0.1" in one_line_error(run_cli("ls-remote", "web", cwd=tmp_path))


def test_a_server_that_never_answers_times_out(fake_server, tmp_path):
    port = fake_server(None)
    for url in _urls(port, "timeout=1"):
        start = time.monotonic()
        with pytest.raises(RemoteError, match="within 1 s|timed out|Timeout") as info:
            open_backend(url, OPEN).refs()
        assert time.monotonic() - start < 6, url  # one retry at most
        assert "\n" not in str(info.value)
    run_cli("init", cwd=tmp_path, check=0)
    run_cli("remote", "add", "mute", _urls(port, "timeout=1")[1], cwd=tmp_path, check=0)
    assert "no answer within 1 s" in one_line_error(run_cli("ls-remote", "mute", cwd=tmp_path))


# -- remote data that does not parse ---------------------------------------------------------------
def _pushed(tmp_path, remote) -> bytes:
    repo = Repository.init(str(tmp_path / "a" / ".casreg"))
    ops.config(repo).add("origin", remote.url)
    write_file(tmp_path / "m" / "w.bin", random_bytes(50_000, "bad-refs"))
    cid = repo.commit(str(tmp_path / "m"), "models/m/v1").id
    ops.push_refs(repo, "origin", ["models/m/v1"])
    repo.close()
    return cid


def _plant_bad_refs(remote, cid: bytes) -> None:
    """Refs casreg never writes, put on the server the way the backend stores refs."""
    if remote.kind == "redis":
        remote.r.hset(remote.prefix.encode() + b"refs", mapping={b"\xff\xfebad": cid, b"../../x": cid,
                                                                 b"models/short": cid[:31]})
    elif remote.kind == "mysql":
        with remote.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {remote.prefix}refs (name, target) VALUES (%s, %s)",
                            [(b"\xff\xfebad", cid), (b"../../x", cid)])
    else:  # cos, s3: entries of the ref log
        for key, body in [("models/zz:0000000000000000", b'{"old": null, "new": "zz"}'),
                          ("models/list:0000000000000000", b"[1, 2]"),
                          ("models/notjson:0000000000000000", b"\xff{"),
                          # SeaweedFS refuses keys with '../'; this name is as invalid for casreg
                          ("models/a..b:0000000000000000", b'{"old": null, "new": "%s"}' % cid.hex().encode())]:
            remote.put_raw(f"refs/{key}", body)


@pytest.mark.parametrize("remote", ["redis", "mysql", "cos", "s3"], indirect=True)
def test_bad_remote_refs_are_skipped_with_a_warning(remote, tmp_path, caplog):
    cid = _pushed(tmp_path, remote)
    _plant_bad_refs(remote, cid)
    be = remote.backend()
    with caplog.at_level(logging.WARNING, logger="casreg"):
        assert be.refs() == {"models/m/v1": cid}
    invalid_name = "models/a..b" if remote.kind in ("cos", "s3") else "../../x"
    assert invalid_name in be.bad_refs and len(be.bad_refs) == {"redis": 3, "mysql": 2, "cos": 4, "s3": 4}[remote.kind]
    assert all("\n" not in why for why in be.bad_refs.values())
    assert len(caplog.records) == len(be.bad_refs)
    be.close()
    # the CLI shows the good refs on stdout, one warning line per skipped ref on stderr; clone works
    proc = run_cli("clone", remote.url, tmp_path / "b", cwd=tmp_path, check=0)
    warnings = proc.stderr.decode().splitlines()
    assert len(warnings) == len(be.bad_refs) and all(w.startswith("casreg: warning: ") for w in warnings)
    assert "Traceback" not in proc.stderr.decode()
    out = run_cli("ls-remote", "origin", cwd=tmp_path / "b", check=0)
    assert out.stdout.decode().split() == ["REF", "VERSION", "models/m/v1", cid.hex()]
    assert invalid_name in out.stderr.decode()
    with Repository(str(tmp_path / "b" / ".casreg")) as b:
        assert [name for name, _ in b.list_refs()] == ["models/m/v1", "remotes/origin/models/m/v1"]
        reported = [p for p in ops.verify(b, "origin") if p["kind"] == "ref"]
        assert sorted(p["ref"] for p in reported) == sorted(be.bad_refs), "verify --remote reports what fetch skips"


@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_damaged_pack_store_ref_head_refuses_a_push_in_one_line(remote, tmp_path):
    cid = _pushed(tmp_path, remote)
    be = remote.backend()
    remote.put_raw("refs/models/m/v1:0000000000000001", b'{"new": 7}')
    with pytest.raises(CasregError) as info:
        be.set_ref_if_equals("models/m/v1", cid, bytes(32))
    assert "models/m/v1" in str(info.value) and "\n" not in str(info.value)
    remote.put_raw("refs/models/m/v1:0000000000000001", b"[]")
    with pytest.raises(CasregError, match="ref log entry models/m/v1:1 is damaged"):
        be.set_ref_if_equals("models/m/v1", cid, bytes(32))


# -- clone takes secrets like every other remote command ---------------------------------------------
private_redis = test_remotes.private_redis  # a password-protected redis-server of our own


def test_clone_of_a_password_protected_redis(private_redis, tmp_path):
    url = f"redis://127.0.0.1:{private_redis}/0"
    run_cli("init", cwd=tmp_path, check=0)
    write_file(tmp_path / "m" / "w.bin", random_bytes(50_000, "private"))
    run_cli("commit", "m", "--ref", "models/m/v1", cwd=tmp_path, check=0)
    run_cli("remote", "add", "r", url, cwd=tmp_path, check=0)
    run_cli("push", "r", "models/m/v1", cwd=tmp_path, env={"CASREG_REMOTE_R_PASSWORD": "s3cret"}, check=0)

    assert "authentication failed" in one_line_error(run_cli("clone", url, tmp_path / "none", cwd=tmp_path))
    assert not (tmp_path / "none").exists()
    env = {"CASREG_REMOTE_ORIGIN_PASSWORD": "s3cret"}
    run_cli("clone", url, tmp_path / "b", cwd=tmp_path, env=env, check=0)
    assert "models/m/v1" in run_cli("ls-remote", "origin", cwd=tmp_path / "b", env=env, check=0).stdout.decode()
    assert "s3cret" not in (tmp_path / "b" / ".casreg" / "remotes.json").read_text()

    # a password in the URL is refused as by `remote add`, before connecting (port 1 would not answer)
    line = one_line_error(run_cli("clone", "redis://:s3cret@127.0.0.1:1/0", tmp_path / "c", cwd=tmp_path))
    assert "CASREG_REMOTE_ORIGIN_PASSWORD" in line and "s3cret" not in line
    assert not (tmp_path / "c").exists()
    # the Python API's explicit secrets are kept in the 0600 remotes.json, like --fate-config's
    c = ops.clone(url, str(tmp_path / "d"), secrets={"password": "s3cret"})
    assert ops.ls_remote(c, "origin") == {"models/m/v1": c.resolve("models/m/v1")}
    c.close()


# -- the COS ref log cache is checked against the server ---------------------------------------------
@pytest.mark.parametrize("remote", ["cos", "s3"], indirect=True)
def test_pack_store_cache_does_not_hide_a_rewritten_ref_log(remote, tmp_path):
    """Site A pushed; the prefix was emptied; site B pushed other content under the same ref. A must
    see B's ref, and A's push without --force must be refused, not overwrite B's version."""
    a = Repository.init(str(tmp_path / "a" / ".casreg"))
    b = Repository.init(str(tmp_path / "b" / ".casreg"))
    for repo in (a, b):
        ops.config(repo).add("origin", remote.url)
    write_file(tmp_path / "ma" / "w.bin", random_bytes(50_000, "site-a"))
    write_file(tmp_path / "mb" / "w.bin", random_bytes(50_000, "site-b"))
    va = a.commit(str(tmp_path / "ma"), "models/m/v1").id
    vb = b.commit(str(tmp_path / "mb"), "models/m/v1").id
    ops.push_refs(a, "origin", ["models/m/v1"])
    assert ops.ls_remote(a, "origin") == {"models/m/v1": va}  # A has read (and cached) its ref log

    remote.empty()
    ops.push_refs(b, "origin", ["models/m/v1"])

    assert ops.ls_remote(a, "origin") == {"models/m/v1": vb}
    write_file(tmp_path / "ma" / "w.bin", random_bytes(60_000, "site-a-2"))
    a.commit(str(tmp_path / "ma"), "models/m/v1", expect_old=va.hex(), parents=["models/m/v1"])
    with pytest.raises(NonFastForward, match="rejected"):
        ops.push_refs(a, "origin", ["models/m/v1"])
    be = remote.backend()
    assert be.refs() == {"models/m/v1": vb}
    be.close()
    a.close()
    b.close()
