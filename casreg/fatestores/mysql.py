"""FATE-Flow's MySQL model store: ``t_machine_learning_model`` slices (1.7/1.8, 1.9+, 2.x) and 1.9+
``t_machine_learning_component``, written in one transaction as FATE's peewee models write them."""

from __future__ import annotations

import base64
import contextlib
from typing import Iterator

from ..errors import (
    AlreadyExists,
    Conflict,
    Corrupt,
    InvalidInput,
    NotFound,
    RemoteError,
    RemoteRefused,
    RemoteUnreachable,
)
from .base import FateStore
from .entries import (
    COMPONENT,
    COMPONENT_META_TABLE,
    COMPONENT_TABLE,
    ENV,
    LAYOUT_1_8,
    LAYOUT_1_9,
    LAYOUT_2,
    MODEL_INFO_TABLE,
    MODEL_TABLE,
    NAME_MAX,
    PIPELINE,
    SLICE_MAX_SIZE,
    Archive,
    Entry,
    check_archive,
    date_of,
    decode_slice,
    encode_slice,
    now_ms,
    parse_storage_key,
    size_limit,
    slice_size,
    too_big,
)
from .where import Location

# MySQL ------------------------------------------------------------------------------------------------
_DDL = {
    # as FATE's peewee models create them (1.8 pipelined_model/mysql_model_storage.py; 1.9+ model/
    # mysql_model_storage.py over fate_arch's BaseModel; 2.x manager/outputs/model/engine/_mysql.py)
    (LAYOUT_1_8, PIPELINE): f"""CREATE TABLE IF NOT EXISTS `{MODEL_TABLE}` (
        `f_model_id` VARCHAR(100) NOT NULL, `f_model_version` VARCHAR(100) NOT NULL, `f_size` BIGINT NOT NULL,
        `f_create_time` BIGINT NOT NULL, `f_update_time` BIGINT NOT NULL, `f_description` TEXT,
        `f_content` LONGTEXT NOT NULL, `f_slice_index` INTEGER NOT NULL,
        PRIMARY KEY (`f_model_id`, `f_model_version`, `f_slice_index`),
        KEY `machinelearningmodel_f_model_id` (`f_model_id`),
        KEY `machinelearningmodel_f_model_version` (`f_model_version`),
        KEY `machinelearningmodel_f_slice_index` (`f_slice_index`))""",
    (LAYOUT_1_9, PIPELINE): f"""CREATE TABLE IF NOT EXISTS `{MODEL_TABLE}` (
        `f_create_time` BIGINT, `f_create_date` DATETIME, `f_update_time` BIGINT, `f_update_date` DATETIME,
        `f_model_id` VARCHAR(100) NOT NULL, `f_model_version` VARCHAR(100) NOT NULL, `f_size` BIGINT NOT NULL,
        `f_content` LONGTEXT NOT NULL, `f_slice_index` INTEGER NOT NULL,
        PRIMARY KEY (`f_model_id`, `f_model_version`, `f_slice_index`),
        KEY `machinelearningmodel_f_model_id` (`f_model_id`),
        KEY `machinelearningmodel_f_model_version` (`f_model_version`),
        KEY `machinelearningmodel_f_slice_index` (`f_slice_index`))""",
    (LAYOUT_1_9, COMPONENT): f"""CREATE TABLE IF NOT EXISTS `{COMPONENT_TABLE}` (
        `id` INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
        `f_create_time` BIGINT, `f_create_date` DATETIME, `f_update_time` BIGINT, `f_update_date` DATETIME,
        `f_party_model_id` VARCHAR(100) NOT NULL, `f_model_version` VARCHAR(100) NOT NULL,
        `f_component_name` VARCHAR(100) NOT NULL, `f_size` BIGINT NOT NULL, `f_content` LONGTEXT NOT NULL,
        `f_slice_index` INTEGER NOT NULL,
        UNIQUE KEY `machinelearningcomponent_f_party_model_id_f_model_versio_53f5cd3`
            (`f_party_model_id`, `f_model_version`, `f_component_name`, `f_slice_index`),
        KEY `machinelearningcomponent_f_party_model_id` (`f_party_model_id`),
        KEY `machinelearningcomponent_f_model_version` (`f_model_version`),
        KEY `machinelearningcomponent_f_component_name` (`f_component_name`),
        KEY `machinelearningcomponent_f_slice_index` (`f_slice_index`))""",
    (LAYOUT_2, COMPONENT): f"""CREATE TABLE IF NOT EXISTS `{MODEL_TABLE}` (
        `f_create_time` BIGINT, `f_update_time` BIGINT, `f_storage_key` VARCHAR(100) NOT NULL,
        `f_content` LONGTEXT NOT NULL, `f_slice_index` INTEGER NOT NULL,
        PRIMARY KEY (`f_storage_key`, `f_slice_index`))""",
}


class MySQLStore(FateStore):
    def __init__(self, location: Location):
        super().__init__(location)
        import pymysql
        self._pymysql = pymysql
        loc = location
        self.where = f"mysql {loc.host}:{loc.port or 3306}/{loc.database}"
        with self._errors():
            self.conn = pymysql.connect(host=loc.host, port=loc.port or 3306, user=loc.user or "root",
                                        password=self.secrets.get("password", ""), database=loc.database,
                                        autocommit=True, connect_timeout=loc.timeout, read_timeout=loc.timeout,
                                        write_timeout=loc.timeout, charset="utf8mb4")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        from ..remotes.mysql_backend import MESSAGES, REFUSED, UNREACHABLE
        try:
            yield
        except self._pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code == 1062:
                raise AlreadyExists(f"{self.where}: the version is already there (a duplicate slice row); "
                                    f"replace it with force") from None
            message = MESSAGES.get(code) if code is not None else None
            message = message or (str(exc.args[1]) if len(exc.args) > 1 else str(exc))
            if code == 1045:
                message = f"access denied (check the user and the password: FATE's config or {ENV['password']})"
            kind = RemoteUnreachable if code in UNREACHABLE or "timed out" in str(exc) else \
                RemoteRefused if code in REFUSED else RemoteError
            raise kind(f"{self.where}: {message[:200]}") from None
        except (OSError, ValueError, IndexError, KeyError) as exc:
            raise RemoteError(f"{self.where}: unexpected reply, is it a MySQL server? ({type(exc).__name__})") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._errors(), self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def _columns(self, table: str) -> set[str]:
        return {r[0] for r in self._query("SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                                          "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))}

    def layout(self) -> str | None:
        """Which FATE wrote ``t_machine_learning_model`` here (None: no such table)."""
        cols = self._columns(MODEL_TABLE)
        if not cols:
            return None
        if {"f_storage_key", "f_content", "f_slice_index"} <= cols:
            return LAYOUT_2
        if {"f_model_id", "f_model_version", "f_size", "f_content", "f_slice_index"} <= cols:
            return LAYOUT_1_9 if "f_create_date" in cols else LAYOUT_1_8
        raise RemoteError(f"{self.where}: {MODEL_TABLE} has columns {', '.join(sorted(cols))}: not a table "
                          f"FATE-Flow wrote")

    def entries(self) -> list[Entry]:
        out = []
        layout = self.layout()
        if layout == LAYOUT_2:
            for (key,) in self._query(f"SELECT DISTINCT f_storage_key FROM `{MODEL_TABLE}`"):
                entry = parse_storage_key(key, f"{self.where} {MODEL_TABLE}")
                if entry:
                    out.append(entry)
        elif layout:
            out += [Entry(layout, m, v, PIPELINE, where=f"{self.where} {MODEL_TABLE}") for m, v in
                    self._query(f"SELECT DISTINCT f_model_id, f_model_version FROM `{MODEL_TABLE}`")]
        if self._columns(COMPONENT_TABLE):
            out += [Entry(LAYOUT_1_9, m, v, COMPONENT, c, where=f"{self.where} {COMPONENT_TABLE}") for m, v, c in
                    self._query(f"SELECT DISTINCT f_party_model_id, f_model_version, f_component_name "
                                f"FROM `{COMPONENT_TABLE}`")]
        return sorted(out, key=lambda e: e.sort_key)

    def _rows(self, entry: Entry) -> tuple[str, str, tuple]:
        """(table, WHERE clause, its arguments) of an entry's rows."""
        if entry.layout == LAYOUT_2:
            return MODEL_TABLE, "f_storage_key = %s", (entry.storage_key,)
        if entry.kind == COMPONENT:
            return (COMPONENT_TABLE, "f_party_model_id = %s AND f_model_version = %s AND f_component_name = %s",
                    (entry.party_model_id, entry.model_version, entry.component))
        return MODEL_TABLE, "f_model_id = %s AND f_model_version = %s", (entry.party_model_id, entry.model_version)

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        limit = max_bytes or size_limit()
        table, where, args = self._rows(entry)
        actual = self.layout() if table == MODEL_TABLE else (LAYOUT_1_9 if self._columns(table) else None)
        if actual is None:
            raise NotFound(f"{entry}: {self.where} has no {table} table")
        if (actual == LAYOUT_2) != (entry.layout == LAYOUT_2):
            raise NotFound(f"{entry}: {self.where} {table} holds FATE {actual} rows")
        entry = Entry(actual, entry.party_model_id, entry.model_version, entry.kind, entry.component,
                      entry.output_key, f"{self.where} {table}")
        pickled = entry.layout != LAYOUT_2
        out = bytearray()
        with self._errors():
            with self.conn.cursor() as cur:
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")  # both reads see one state
            try:
                slices = self._query(f"SELECT f_slice_index, LENGTH(f_content) FROM `{table}` WHERE {where} "
                                     f"ORDER BY f_slice_index", args)
                if not slices:
                    raise NotFound(f"{entry}: no such archive in the store")
                indexes = [int(i) for i, _ in slices]
                if indexes != list(range(len(indexes))):
                    missing = sorted(set(range(max(indexes) + 1)) - set(indexes))
                    raise Corrupt(f"{entry}: slices {indexes[:8]} are not 0..{len(indexes) - 1}"
                                  + (f" (slice {missing[0]} is missing)" if missing else " (duplicates)"))
                estimate = sum(int(n or 0) for _, n in slices) * 3 // 4 - 32 * len(slices)  # less pickle framing
                if estimate > limit:
                    raise too_big(entry, estimate, limit)
                with self.conn.cursor(self._pymysql.cursors.SSCursor) as cur:
                    cur.execute(f"SELECT f_slice_index, f_content FROM `{table}` WHERE {where} "
                                f"ORDER BY f_slice_index", args)
                    for expected, (index, content) in enumerate(cur):
                        if index != expected:
                            raise Corrupt(f"{entry}: slice {expected} changed while reading")
                        out += decode_slice(content, f"{entry} slice {index}", pickled)
                        if len(out) > limit:
                            raise too_big(entry, len(out), limit)
            finally:
                with contextlib.suppress(Exception):
                    self.conn.rollback()
        data = check_archive(bytes(out), entry)
        return Archive(entry, data, recorded_sha256=self._recorded_sha256(entry))

    def _recorded_sha256(self, entry: Entry) -> str | None:
        parts = entry.party_model_id.split("#", 2)
        if entry.layout != LAYOUT_1_9 or len(parts) != 3:
            return None
        role, party, model = parts
        table, extra, more = (MODEL_INFO_TABLE, "", ()) if entry.kind == PIPELINE else \
            (COMPONENT_META_TABLE, " AND f_component_name = %s", (entry.component,))
        if "f_archive_sha256" not in self._columns(table):
            return None
        found = self._query(f"SELECT DISTINCT f_archive_sha256 FROM `{table}` WHERE f_role = %s AND f_party_id = %s "
                            f"AND f_model_id = %s AND f_model_version = %s{extra}",
                            (role, party, model, entry.model_version, *more))
        values = {str(v).strip() for (v,) in found if v}
        if len(values) > 1:
            raise Corrupt(f"{entry}: {table} records {len(values)} different archive SHA-256s")
        return values.pop() if values else None

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        existing = self.layout()
        if layout is None:
            layout = existing or (LAYOUT_2 if self.location.generation == 2 else LAYOUT_1_9)
        self._checked_write(party_model_id, model_version, data, component, output_key, layout)
        kind = COMPONENT if component else PIPELINE
        if existing and existing != layout and (kind == PIPELINE or layout == LAYOUT_2 or existing == LAYOUT_2):
            raise Conflict(f"{self.where}: {MODEL_TABLE} here is FATE {existing}'s; a {layout} archive cannot go in it")
        entry = Entry(layout, party_model_id, model_version, kind, component, output_key)
        if layout == LAYOUT_2 and len(entry.storage_key) > NAME_MAX:
            raise InvalidInput(f"FATE 2.x storage key {entry.storage_key!r} is longer than its {NAME_MAX}-character column")
        table, where, args = self._rows(entry)
        entry = Entry(layout, party_model_id, model_version, kind, component, output_key, f"{self.where} {table}")
        packet = self._query("SELECT @@max_allowed_packet")[0][0]
        row = 4 * ((min(len(data), SLICE_MAX_SIZE) + 32) // 3 + 1) + 1024   # base64 of the pickle, and the SQL
        if row > int(packet):
            raise RemoteRefused(f"{self.where}: a slice row is {row} bytes, more than the server's max_allowed_packet "
                                f"({packet}); FATE-Flow could not store this archive either")
        with self._errors(), self.conn.cursor() as cur:
            cur.execute(_DDL[(layout, kind)])  # DDL commits: so before the transaction
        with self._errors():
            self.conn.begin()
            try:
                with self.conn.cursor() as cur:
                    cur.execute(f"SELECT COUNT(*) FROM `{table}` WHERE {where} FOR UPDATE", args)
                    if cur.fetchall()[0][0] and not force:
                        raise AlreadyExists(f"{entry}: already in the store; replace it with force")
                    cur.execute(f"DELETE FROM `{table}` WHERE {where}", args)
                    for index, start in enumerate(range(0, len(data), SLICE_MAX_SIZE)):
                        self._insert(cur, entry, table, index, data[start:start + SLICE_MAX_SIZE])
                self.conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    self.conn.rollback()
                raise
        return entry

    @staticmethod
    def _insert(cur, entry: Entry, table: str, index: int, piece: bytes) -> None:
        now = now_ms()
        if entry.layout == LAYOUT_2:
            content = base64.b64encode(piece).decode("ascii")
            cur.execute(f"INSERT INTO `{table}` (f_create_time, f_update_time, f_storage_key, f_content, f_slice_index) "
                        f"VALUES (%s, %s, %s, %s, %s)", (now, now, entry.storage_key, content, index))
            return
        content = encode_slice(piece)
        if entry.layout == LAYOUT_1_8:
            cur.execute(f"INSERT INTO `{table}` (f_model_id, f_model_version, f_size, f_create_time, f_update_time, "
                        f"f_description, f_content, f_slice_index) VALUES (%s, %s, %s, %s, %s, '', %s, %s)",
                        (entry.party_model_id, entry.model_version, slice_size(content), now, now, content, index))
        elif entry.kind == PIPELINE:
            cur.execute(f"INSERT INTO `{table}` (f_create_time, f_create_date, f_update_time, f_update_date, f_model_id, "
                        f"f_model_version, f_size, f_content, f_slice_index) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (now, date_of(now), now, date_of(now), entry.party_model_id, entry.model_version,
                         slice_size(content), content, index))
        else:
            cur.execute(f"INSERT INTO `{table}` (f_create_time, f_create_date, f_update_time, f_update_date, "
                        f"f_party_model_id, f_model_version, f_component_name, f_size, f_content, f_slice_index) "
                        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (now, date_of(now), now, date_of(now), entry.party_model_id, entry.model_version, entry.component,
                         slice_size(content), content, index))
