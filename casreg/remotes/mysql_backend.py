"""``mysql://user@host:port/database?prefix=casreg_&timeout=30`` — objects and refs in InnoDB tables.

Tables (created on first use, schema version in ``<prefix>meta``): ``<prefix>objects(id
BINARY(32) PRIMARY KEY, value LONGBLOB)`` and ``<prefix>refs(name VARBINARY(512) PRIMARY KEY,
target BINARY(32))``. Values go as ``_binary'...'`` literals (``binary_literal``: ~1.02x the stored
bytes on the wire, where pymysql's parameters send hex, 2x), in inserts batched under the server's
``max_allowed_packet`` by their exact size; a ref moves
by one conditional ``UPDATE``/``INSERT``/``DELETE`` whose row count says whether it won.

For gc (``gc.py``) the objects table has two more columns, ``uploaded DOUBLE`` (the server's
``UNIX_TIMESTAMP(NOW(6))`` at the latest put of the id) and ``condemned DOUBLE NULL``; tables
made by an older casreg gain them in place on first connect (``ALTER TABLE ... ADD COLUMN``,
instant on MariaDB 10.3+ and MySQL 8.0; existing rows read as uploaded at 0, i.e. long ago; two
clients migrating at once is harmless: the loser's duplicate column error is ignored).
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
from typing import Collection, Iterator

from ..errors import RemoteError, RemoteRefused, RemoteUnreachable
from .base import Backend, StoredObject, batched
from .config import check_server_url
from .registry import Scheme, register

SCHEMA_VERSION = "1"
LIST_PAGE = 5000
REF_BATCH = 500  # names per SELECT ... WHERE name IN (...)
UNREACHABLE = {2003, 2005, 2006, 2013}  # cannot connect, unknown host, gone away, lost
REFUSED = {1044, 1045, 1142, 1114, 1021, 1290, 1036}
MESSAGES = {
    1045: "access denied (check the user and CASREG_REMOTE_<NAME>_PASSWORD)",
    1044: "access denied to the database",
    1049: "the database does not exist",
    1142: "the user may not write these tables",
    1114: "the remote is full (table full)",
    1021: "the remote disk is full",
    1290: "the server is read-only",
    1036: "the table is read-only",
    2003: "cannot reach the server",
    2005: "unknown host",
    2006: "the server went away",
    2013: "lost the connection to the server",
}


def binary_literal(value: bytes, no_backslash_escapes: bool = False) -> bytes:
    """``_binary'...'``: the bytes as they are, but for the few the SQL lexer reads specially
    (backslash, quote, and NUL and Ctrl-Z as mysql_real_escape_string does; under the server's
    NO_BACKSLASH_ESCAPES only the quote, doubled). About 1.02x the value on random bytes, where
    pymysql's own ``X'hex'`` is 2x. Sent with ``character_set_client = binary`` (``put_many``), so
    the lexer reads the statement byte by byte; safe in utf8mb4 too (no byte of a multi-byte UTF-8
    character is a quote or a backslash), never in a charset such as GBK or SJIS."""
    if no_backslash_escapes:
        return b"_binary'" + value.replace(b"'", b"''") + b"'"
    body = value.replace(b"\\", b"\\\\").replace(b"'", b"\\'").replace(b"\0", b"\\0").replace(b"\x1a", b"\\Z")
    return b"_binary'" + body + b"'"


NOW_ROW = b",UNIX_TIMESTAMP(NOW(6)))"   # the row's upload time, by the server's clock (see gc)
UPSERT_TAIL = b" ON DUPLICATE KEY UPDATE uploaded = VALUES(uploaded), condemned = NULL"

class MySQLBackend(Backend):
    def __init__(self, url: str, secrets: dict):
        super().__init__(url)
        u = self.u
        import pymysql
        self._pymysql = pymysql
        prefix = u.query.get("prefix", "casreg_")  # letters, digits, _ (parse_url checked)
        self.where = f"mysql at {u.host}:{u.port or 3306}/{u.database}"
        self.t_objects, self.t_refs, self.t_meta = f"{prefix}objects", f"{prefix}refs", f"{prefix}meta"
        with self._errors():
            self.conn = pymysql.connect(host=u.host, port=u.port or 3306, user=u.user or "root",
                                        password=secrets.get("password") or u.password or "",
                                        database=u.database, autocommit=True, connect_timeout=u.timeout,
                                        read_timeout=u.timeout, write_timeout=u.timeout, charset="utf8mb4")
            self.traffic.requests += 1
            self._ensure_schema()

    @contextlib.contextmanager
    def _errors(self):
        try:
            conn = getattr(self, "conn", None)
            if conn is not None and not conn.open:  # lost by an earlier call: Retrying's next attempt reconnects
                conn.connect()
                self.traffic.requests += 1
            yield
        except self._pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if "timed out" in str(exc):
                message = f"no answer within {self.u.timeout:g} s (URL key timeout=)"
            else:
                message = ((MESSAGES.get(code) if code is not None else None)
                           or (str(exc.args[1]) if len(exc.args) > 1 else str(exc)))
            kind = (RemoteUnreachable if code in UNREACHABLE or "timed out" in str(exc)
                    else RemoteRefused if code in REFUSED else RemoteError)
            raise kind(f"{self.where}: {message[:200]}") from None
        except (OSError, ValueError, IndexError, KeyError, struct.error) as exc:  # pymysql parsing a non-MySQL reply
            raise RemoteError(f"{self.where}: unexpected reply, is it a MySQL server? "
                              f"({type(exc).__name__}: {str(exc)[:100]})") from None

    def _ensure_schema(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.t_meta} (k VARCHAR(64) PRIMARY KEY, v VARCHAR(255) NOT NULL)"
                        " ENGINE=InnoDB")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.t_objects} (id BINARY(32) PRIMARY KEY, "
                        "value LONGBLOB NOT NULL) ENGINE=InnoDB")
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.t_refs} (name VARBINARY(512) PRIMARY KEY, "
                        "target BINARY(32) NOT NULL) ENGINE=InnoDB")
            cur.execute(f"INSERT IGNORE INTO {self.t_meta} (k, v) VALUES ('schema', %s)", (SCHEMA_VERSION,))
            cur.execute(f"SELECT v FROM {self.t_meta} WHERE k = 'schema'")
            version = self._single(cur)
            if version != SCHEMA_VERSION:
                raise RemoteError(f"{self.where}: tables use casreg schema {version}, this casreg knows {SCHEMA_VERSION}")
            cur.execute("SELECT @@max_allowed_packet")
            self.packet = int(self._single(cur))
            self._ensure_gc_columns(cur)
        self.traffic.requests += 6

    def _ensure_gc_columns(self, cur) -> None:
        cur.execute(f"SHOW COLUMNS FROM {self.t_objects} LIKE 'condemned'")
        self.traffic.requests += 1
        if cur.fetchone() is not None:
            return
        try:
            cur.execute(f"ALTER TABLE {self.t_objects} ADD COLUMN uploaded DOUBLE NOT NULL DEFAULT 0, "
                        "ADD COLUMN condemned DOUBLE NULL DEFAULT NULL")
        except self._pymysql.err.MySQLError as exc:
            if not (exc.args and exc.args[0] == 1060):  # duplicate column: another client migrated first
                raise
        self.traffic.requests += 1

    def _single(self, cur):
        """The one value of a query that always gives one row (none: not a MySQL server)."""
        row = cur.fetchone()
        if row is None:
            raise RemoteError(f"{self.where}: unexpected reply, is it a MySQL server? (a query gave no row)")
        return row[0]

    def has_many(self, ids: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        with self._errors(), self.conn.cursor() as cur:
            for batch in batched(ids, 1000):
                cur.execute(f"SELECT id FROM {self.t_objects} WHERE id IN ({','.join(['%s'] * len(batch))})"
                            " AND condemned IS NULL", batch)  # a condemned object is not offered to a push
                found.update(bytes(row[0]) for row in cur.fetchall())
                self.traffic.requests += 1
        return found

    def put_many(self, items: list[tuple[bytes, bytes]]) -> None:
        from pymysql.constants import SERVER_STATUS
        limit = max(1 << 20, int(self.packet * 0.8))
        head = f"INSERT INTO {self.t_objects} (id, value, uploaded) VALUES ".encode()
        rows: list[bytes] = []
        size = len(head) + len(UPSERT_TAIL)
        with self._errors():
            self.conn.begin()
            # how this session reads a literal now (every reply's status says NO_BACKSLASH_ESCAPES)
            status = self.conn.server_status  # type: ignore[attr-defined]  # (not in the stubs)
            plain = bool(status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)
            try:
                with self.conn.cursor() as cur:
                    # the statement is bytes: a one-byte client charset lets the server's lexer
                    # take them as they come (0.75 s for 80 MB here, not 1.7 s under utf8mb4)
                    cur.execute("SET character_set_client = binary")
                    for oid, value in items:
                        row = b"(" + binary_literal(oid, plain) + b"," + binary_literal(value, plain) + NOW_ROW
                        if len(head) + len(row) + len(UPSERT_TAIL) > limit:  # the exact bytes of the statement, not an estimate
                            raise RemoteError(f"{self.where}: an object of {len(value)} bytes exceeds the "
                                              f"server's max_allowed_packet ({self.packet})")
                        if rows and size + 1 + len(row) > limit:
                            self._insert(cur, head, rows)
                            rows, size = [], len(head) + len(UPSERT_TAIL)
                        rows.append(row)
                        size += 1 + len(row)
                    if rows:
                        self._insert(cur, head, rows)
                    cur.execute("SET character_set_client = utf8mb4")
                    self.traffic.requests += 2
                self.conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):  # a lost connection rolled back already; keep the first error
                    self.conn.rollback()
                    self.conn.query("SET character_set_client = utf8mb4")
                raise

    def _insert(self, cur, head: bytes, rows: list[bytes]) -> None:
        # bytes, not str: pymysql sends a bytes statement as it is (its %s would send X'hex': 2x).
        # A row already there keeps its value; its upload time moves and a gc's condemnation goes
        cur.execute(head + b",".join(rows) + UPSERT_TAIL)
        self.traffic.requests += 1

    def get_many(self, ids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        for batch in batched(ids, 64):
            with self._errors(), self.conn.cursor() as cur:
                cur.execute(f"SELECT id, value FROM {self.t_objects} WHERE id IN ({','.join(['%s'] * len(batch))})",
                            batch)
                got = {bytes(i): bytes(v) for i, v in cur.fetchall()}
            self.traffic.requests += 1
            for oid in batch:
                if oid not in got:
                    raise RemoteError(f"{self.where} lacks object {oid.hex()}")
                yield oid, got[oid]

    def refs(self, names: Collection[str] | None = None) -> dict[str, bytes]:
        if names is None:
            with self._errors(), self.conn.cursor() as cur:
                cur.execute(f"SELECT name, target FROM {self.t_refs}")
                rows = list(cur.fetchall())
            self.traffic.requests += 1
        else:
            rows = []
            for batch in batched([n.encode() for n in dict.fromkeys(names)], REF_BATCH):
                with self._errors(), self.conn.cursor() as cur:
                    cur.execute(f"SELECT name, target FROM {self.t_refs} WHERE name IN "
                                f"({', '.join(['%s'] * len(batch))})", batch)
                    rows += cur.fetchall()
                self.traffic.requests += 1
        return self._accept_refs((bytes(n), bytes(t)) for n, t in rows)

    def set_ref_if_equals(self, name: str, old: bytes | None, new: bytes | None) -> bool:
        key = name.encode()
        with self._errors(), self.conn.cursor() as cur:
            if old is None and new is not None:
                n = cur.execute(f"INSERT IGNORE INTO {self.t_refs} (name, target) VALUES (%s, %s)", (key, new))
            elif new is None:
                n = cur.execute(f"DELETE FROM {self.t_refs} WHERE name = %s AND target = %s", (key, old))
            else:
                n = cur.execute(f"UPDATE {self.t_refs} SET target = %s WHERE name = %s AND target = %s",
                                (new, key, old))
        self.traffic.requests += 1
        return n == 1

    # -- gc ----------------------------------------------------------------------------------------
    def server_time(self) -> float:
        with self._errors(), self.conn.cursor() as cur:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
            now = float(self._single(cur))
        self.traffic.requests += 1
        return now

    def list_objects(self) -> Iterator[StoredObject]:
        last = b""
        while True:  # pages in id order: no long-running cursor on the server
            with self._errors(), self.conn.cursor() as cur:
                cur.execute(f"SELECT id, LENGTH(value), uploaded, condemned FROM {self.t_objects} WHERE id > %s "
                            f"ORDER BY id LIMIT {LIST_PAGE}", (last,))
                rows = cur.fetchall()
            self.traffic.requests += 1
            for oid, size, uploaded, condemned in rows:
                yield StoredObject(bytes(oid), int(size), float(uploaded),
                                   None if condemned is None else float(condemned))
            if len(rows) < LIST_PAGE:
                return
            last = bytes(rows[-1][0])

    def _each_batch(self, sql: str, items: list[StoredObject], extra: tuple = ()) -> int:
        done = 0
        for batch in batched([o.id for o in items], 1000):
            with self._errors(), self.conn.cursor() as cur:
                done += cur.execute(sql.format(",".join(["%s"] * len(batch))), [*batch, *extra])
            self.traffic.requests += 1
        return done

    def condemn(self, items: list[StoredObject], uploaded_before: float = math.inf) -> int:
        before = uploaded_before if math.isfinite(uploaded_before) else 1e300
        return self._each_batch(f"UPDATE {self.t_objects} SET condemned = UNIX_TIMESTAMP(NOW(6)) "
                                "WHERE id IN ({}) AND condemned IS NULL AND uploaded <= %s", items, (before,))

    def absolve(self, items: list[StoredObject]) -> None:
        self._each_batch(f"UPDATE {self.t_objects} SET condemned = NULL WHERE id IN ({{}})", items)

    def delete_condemned(self, items: list[StoredObject], cutoff: float, *,
                         repack_below: float = 0.5,
                         debris_before: float | None = None) -> tuple[int, int]:
        objects = size = 0
        for batch in batched(items, 1000):
            ids = [o.id for o in batch]
            marks = ",".join(["%s"] * len(ids))
            with self._errors():
                self.conn.begin()  # the rows locked, counted, then deleted: the bytes freed are exact
                try:
                    with self.conn.cursor() as cur:
                        cur.execute(f"SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM {self.t_objects} "
                                    f"WHERE id IN ({marks}) AND condemned <= %s FOR UPDATE", [*ids, cutoff])
                        n, nbytes = cur.fetchone() or (0, 0)
                        cur.execute(f"DELETE FROM {self.t_objects} WHERE id IN ({marks}) AND condemned <= %s",
                                    [*ids, cutoff])
                    self.conn.commit()
                except BaseException:
                    with contextlib.suppress(Exception):
                        self.conn.rollback()
                    raise
            self.traffic.requests += 3
            objects, size = objects + int(n), size + int(nbytes)
        return objects, size

    def compact(self) -> bool:
        """``OPTIMIZE TABLE`` (InnoDB rebuilds it online: reads and writes go on meanwhile)."""
        with self._errors(), self.conn.cursor() as cur:
            cur.execute(f"OPTIMIZE TABLE {self.t_objects}")
            cur.fetchall()
        self.traffic.requests += 1
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def _check_url(out, netloc: str, path: str, bad):
    out = check_server_url(out, netloc, path, bad)
    if not out.database or "/" in out.database:
        raise bad("needs a database: mysql://user@host:port/database")
    if not re.fullmatch(r"[A-Za-z0-9_]{0,32}", out.query.get("prefix", "casreg_")):
        raise bad("the prefix may have up to 32 letters, digits and '_'")
    return out


register(Scheme("mysql", lambda url, secrets, create=False, cache_dir=None: MySQLBackend(url, secrets),
                query_keys=("prefix", "timeout"), check_url=_check_url, sdk="pymysql", extra="mysql",
                secret_fields=("password",)))
