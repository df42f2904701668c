"""What a push to MySQL puts on the wire (the server's own Bytes_received counter) against the
stored bytes it pushed, and that the binary literals carry every byte value as it is, in both
of the server's escaping modes, and still read rows written by earlier versions (hex)."""

from __future__ import annotations

import pytest

from casreg.remotes import open_backend
from casreg.remotes.sync import push
from tests.helpers import new_store, random_bytes, tree_files, write_file
from tests.remote_kinds import MySQLRemote

pytestmark = pytest.mark.slow  # a real MariaDB


@pytest.fixture
def mysql():
    handle = MySQLRemote()
    yield handle
    handle.cleanup()


def _status(backend, name: str) -> int:
    """A server counter of the backend's own connection (this session)."""
    with backend.unwrapped().conn.cursor() as cur:
        cur.execute(f"SHOW SESSION STATUS LIKE '{name}'")
        return int(cur.fetchone()[1])


def test_push_wire_carries_about_the_stored_bytes(mysql, tmp_path):
    src = tmp_path / "src"
    write_file(src / "model.safetensors", random_bytes(4 << 20, "wire"))  # incompressible
    write_file(src / "config.json", b'{"hidden": 384}')
    repo = new_store(tmp_path, "a")
    repo.commit(str(src), "models/m/v1")
    backend = open_backend(mysql.url)
    try:
        before = _status(backend, "Bytes_received")
        [result] = push(repo, backend, ["models/m/v1"])
        wire = _status(backend, "Bytes_received") - before
    finally:
        backend.close()
    assert result.bytes_sent > 4 << 20
    ratio = wire / result.bytes_sent
    print(f"Bytes_received {wire} for {result.bytes_sent} stored bytes pushed: {ratio:.3f}x")
    assert ratio <= 1.1, f"Bytes_received {wire} for {result.bytes_sent} stored bytes pushed ({ratio:.3f}x)"

    from casreg.remotes import ops
    clone = ops.clone(mysql.url, str(tmp_path / "b"))
    clone.checkout("models/m/v1", str(tmp_path / "out"))
    assert tree_files(tmp_path / "out") == tree_files(src)
    clone.close()
    repo.close()


SPECIAL = bytes(range(256)) * 4 + b"\\'\"\x00\x1a\r\n''\\\\" + b"\xff\xfe\x80\xc0\xaf'"


@pytest.mark.parametrize("no_backslash_escapes", [False, True])
def test_every_byte_value_round_trips(mysql, no_backslash_escapes):
    backend = open_backend(mysql.url)
    try:
        if no_backslash_escapes:
            with backend.unwrapped().conn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')")
            from pymysql.constants import SERVER_STATUS
            assert backend.unwrapped().conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
        items = [(bytes([i]) * 32, SPECIAL[i:] + SPECIAL[:i]) for i in range(0, 256, 17)]
        items.append((b"\x27" * 32, b""))  # an id of quotes, an empty value
        backend.put_many(items)
        assert dict(backend.get_many([oid for oid, _ in items])) == dict(items)
        assert backend.has_many([oid for oid, _ in items]) == {oid for oid, _ in items}
    finally:
        backend.close()


def test_rows_written_as_hex_by_earlier_versions_still_read(mysql):
    backend = open_backend(mysql.url)  # creates the tables
    try:
        old = (b"\x01" * 32, SPECIAL)
        with mysql.conn.cursor() as cur:  # pymysql's own parameter: X'...' as casreg <= 0.x sent it
            cur.execute(f"INSERT INTO {mysql.prefix}objects (id, value) VALUES (%s, %s)", old)
        assert dict(backend.get_many([old[0]])) == dict([old])
        backend.put_many([old, (b"\x02" * 32, b"new")])  # the old row is kept as it is
        assert dict(backend.get_many([old[0], b"\x02" * 32])) == {old[0]: SPECIAL, b"\x02" * 32: b"new"}
    finally:
        backend.close()


def test_batches_follow_the_escaped_size(mysql):
    """The split under max_allowed_packet counts the bytes as sent: a value of quotes doubles."""
    from casreg.errors import RemoteError
    backend = open_backend(mysql.url)
    try:
        backend.unwrapped().packet = 1 << 20  # as if the server allowed 1 MiB: batches of up to 1 MiB
        quotes = [(bytes([i]) * 32, b"'" * 300_000) for i in range(4)]  # 600 kB each as sent
        before = _status(backend, "Com_insert")
        backend.put_many(quotes)
        assert _status(backend, "Com_insert") - before == 4  # one statement each: two would pass 1 MiB
        random = [(bytes([i]) * 32, random_bytes(300_000, str(i))) for i in range(4, 8)]
        before = _status(backend, "Com_insert")
        backend.put_many(random)
        assert _status(backend, "Com_insert") - before == 2  # ~306 kB each as sent: three to a statement
        assert dict(backend.get_many([oid for oid, _ in quotes + random])) == dict(quotes + random)
        before = _status(backend, "Com_insert")
        with pytest.raises(RemoteError, match="exceeds the server's max_allowed_packet"):
            backend.put_many([(b"\x0a" * 32, random_bytes(600_000, "a")),  # inserted alone, then
                              (b"\x0b" * 32, random_bytes(600_000, "b")),
                              (b"\x09" * 32, b"\\" * 600_000)])  # 1.2 MB as sent
        with backend.unwrapped().conn.cursor() as cur:  # the failed put left the session as it was
            cur.execute("SELECT @@character_set_client")
            assert cur.fetchone()[0] == "utf8mb4"
        assert _status(backend, "Com_insert") - before == 1
        assert backend.has_many([b"\x0a" * 32, b"\x0b" * 32]) == set()  # rolled back
        backend.put_many([(b"\x09" * 32, random_bytes(600_000, "fits"))])  # 0.61 MB as sent
    finally:
        backend.close()
