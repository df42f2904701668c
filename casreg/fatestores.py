"""FATE-Flow's own model stores, read and written in FATE's formats (and nothing of casreg's).

Where (``Location``): a FATE-Flow ``service_conf.yaml`` (1.x ``model_store_address`` with
``storage: mysql | redis | tencent_cos``; 2.x ``model_store: {engine, mysql | tencent_cos | file}``)
or a store URL: ``mysql://user@host:port/db``, ``redis://host:port/db?ex=SECONDS``,
``cos://<bucket>-<appid>.<region>/`` (or casreg's ``cos://<bucket>-<appid>?region=...``), ``file:///dir``
(2.x file engine). Secrets never come from URLs: a config's own values, else ``CASREG_FATE_PASSWORD``,
``CASREG_FATE_SECRET_ID``, ``CASREG_FATE_SECRET_KEY`` (COS also ``COS_SECRET_ID`` / ``COS_SECRET_KEY``).

What FATE-Flow writes (its storage classes, 1.7 to 2.2), each an ``Entry``:

- MySQL ``t_machine_learning_model``: one row per 8 MiB slice, ``f_slice_index`` 0..n-1. 1.7/1.8 and
  1.9+ key rows by (f_model_id = party model id, f_model_version) and hold
  ``base64(pickle.dumps(slice, protocol=4))`` in ``f_content``, ``f_size = sys.getsizeof(f_content)``;
  1.7/1.8 have ``f_description`` and no dates, 1.9+ ``f_create_date`` / ``f_update_date``. 1.9+ also
  ``t_machine_learning_component`` (per-component zips). 2.x: ``f_storage_key``, plain base64.
- Redis (1.7/1.8 only): ``FATEFlow:PipelinedModel:<party_model_id>:<model_version>``, the zip, TTL ``ex``.
- COS: ``FATEFlow/PipelinedModel/<pmid>/<version>.zip``, 1.9+ ``FATEFlow/PipelinedComponent/<pmid>/
  <version>/<component>.zip``, 2.x the storage key ``<model_id>/<version>/<role>/<party_id>/<task>/<output>``.
  A COS pipeline object does not say which 1.x wrote it: its layout is ``1.x`` unless a ``.zip.sha1``
  side object (1.7/1.8) or component objects (1.9+) tell.

Nothing read is trusted: slices must be 0..n-1, base64 strict, the pickle may hold no global at all
(every ``find_class`` is refused) and must be one ``bytes`` with nothing after it, the result a zip
(2.x: a tar) no larger than ``archive.Limits.max_bytes``; else ``Corrupt`` / ``HostileInput`` naming the
entry, never half an archive. Hashes FATE recorded (1.9+ ``f_archive_sha256`` of
``t_machine_learning_model_info`` / ``t_pipeline_component_meta`` when in the store's database; a
``.zip.sha1`` COS side object) come back beside the bytes (``Archive.check``).

Writes are FATE's own rows and objects; a version is replaced only with ``force``, and never visible
half written (one MySQL transaction, one Redis ``SET``, one COS ``PUT``, a rename for files).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import pickle
import re
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import (
    AlreadyExists,
    Conflict,
    Corrupt,
    HostileInput,
    InvalidInput,
    InvalidURL,
    NotFound,
    RemoteError,
    RemoteRefused,
    RemoteUnreachable,
)

LAYOUT_1_8, LAYOUT_1_9, LAYOUT_1_X, LAYOUT_2 = "1.7/1.8", "1.9+", "1.x", "2.x"
LAYOUTS = (LAYOUT_1_8, LAYOUT_1_9, LAYOUT_2)    # what a write may ask for
PIPELINE, COMPONENT = "pipeline", "component"
SLICE_MAX_SIZE = 8 << 20                        # FATE's SLICE_MAX_SIZE
PICKLE_PROTOCOL = 4                             # pickle.dumps' default on the Pythons FATE runs on
MODEL_TABLE, COMPONENT_TABLE = "t_machine_learning_model", "t_machine_learning_component"
MODEL_INFO_TABLE, COMPONENT_META_TABLE = "t_machine_learning_model_info", "t_pipeline_component_meta"
REDIS_PREFIX = "FATEFlow:PipelinedModel:"
COS_MODELS, COS_COMPONENTS = "FATEFlow/PipelinedModel", "FATEFlow/PipelinedComponent"
ROLES = ("guest", "host", "arbiter", "local")
ENV = {"password": "CASREG_FATE_PASSWORD", "secret_id": "CASREG_FATE_SECRET_ID", "secret_key": "CASREG_FATE_SECRET_KEY"}
_NAME_MAX = 100                                 # FATE's CharField(max_length=100) columns

# 1.x/2.x config keys each engine takes (FATE passes the rest of its block on to peewee / CosConfig).
_MYSQL_KEYS = {"storage", "database", "name", "user", "password", "passwd", "host", "port", "max_connections",
               "stale_timeout", "charset", "connect_timeout"}
_REDIS_KEYS = {"storage", "host", "port", "db", "password", "ex", "max_connections"}
_COS_KEYS = {"storage", "Region", "SecretId", "SecretKey", "Bucket", "Scheme", "Endpoint", "IP", "Port", "Timeout"}


# -- where --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Location:
    """A FATE model store: ``engine`` mysql | redis | tencent_cos | file; ``generation`` 1 or 2 when
    it came from a service_conf.yaml, None from a URL (then the store's own contents tell)."""
    engine: str
    generation: int | None = None
    host: str = ""
    port: int | None = None
    user: str = ""
    database: str = ""               # mysql
    db: int = 0                      # redis
    ex: int | None = None            # redis: the TTL FATE gives each key (None: no expiry)
    bucket: str = ""                 # tencent_cos
    region: str = ""
    cos: tuple[tuple[str, str], ...] = ()   # cos:// query keys: scheme, endpoint, ip, port
    path: str = ""                   # file
    timeout: float = 30.0
    secrets: dict = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        if self.engine == "mysql":
            return f"FATE mysql store {self.user}@{self.host}:{self.port or 3306}/{self.database}"
        if self.engine == "redis":
            return f"FATE redis store {self.host}:{self.port or 6379}/{self.db}"
        if self.engine == "tencent_cos":
            return f"FATE COS store {self.bucket} ({self.region})"
        return f"FATE file store {self.path}"


def read_service_conf(path: str) -> Location:
    """The model store a FATE-Flow ``service_conf.yaml`` names (or a file holding the block alone)."""
    import yaml
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read FATE config {path}: {str(exc).splitlines()[0]}") from None
    return location_from_conf(doc, os.path.basename(path))


def location_from_conf(doc: Any, where: str = "service_conf.yaml") -> Location:
    """The store of a parsed service_conf: 1.x ``model_store_address``, 2.x ``model_store`` (or either
    block alone). A key that would make casreg read somewhere else than FATE does is an InvalidInput."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: not a FATE service_conf (a YAML mapping)")
    if "model_store_address" in doc and "model_store" in doc:
        raise InvalidInput(f"{where}: both model_store_address (FATE-Flow 1.x) and model_store (2.x); keep one")
    if "model_store" in doc or "engine" in doc:
        return _conf_v2(doc.get("model_store", doc), where, "model_store" if "model_store" in doc else "")
    if doc.get("encrypt_password"):
        raise InvalidInput(f"{where}: encrypt_password is on; casreg cannot decrypt FATE's passwords: "
                           f"turn it off for this file or give the password in {ENV['password']}")
    block = doc.get("model_store_address", doc)
    key = "model_store_address" if "model_store_address" in doc else ""
    if not isinstance(block, dict) or "storage" not in block:
        raise InvalidInput(f"{where}: no model_store_address (FATE-Flow 1.x) or model_store (2.x) block with "
                           f"a storage / engine key")
    return _conf_v1(block, where, key)


def _conf_v1(block: dict, where: str, key: str) -> Location:
    def name(k: str) -> str:
        return f"{key}.{k}" if key else k
    storage = block.get("storage")
    known = {"mysql": _MYSQL_KEYS, "redis": _REDIS_KEYS, "tencent_cos": _COS_KEYS}
    if storage not in known:
        raise InvalidInput(f"{where}: {name('storage')} is {storage!r}; FATE-Flow 1.x knows mysql, redis "
                           f"(1.7/1.8 only), tencent_cos")
    _no_unknown(block, known[storage], where, name)
    if storage == "mysql":
        return _mysql_location(block, where, name, 1)
    if storage == "redis":
        ex = block.get("ex")
        if ex is not None and (isinstance(ex, bool) or not isinstance(ex, int) or ex <= 0):
            raise InvalidInput(f"{where}: {name('ex')} must be a whole number of seconds above 0, or empty "
                               f"for no expiry (got {ex!r})")
        secrets = {"password": str(block["password"])} if block.get("password") else {}
        return Location("redis", 1, host=_text(block, "host", where, name, "localhost"),
                        port=_port(block, where, name, 6379), db=_whole(block, "db", where, name, 0), ex=ex,
                        secrets=secrets)
    return _cos_location(block, where, name, 1)


def _conf_v2(block: Any, where: str, key: str) -> Location:
    def name(k: str) -> str:
        return f"{key}.{k}" if key else k
    if not isinstance(block, dict):
        raise InvalidInput(f"{where}: {key or 'model_store'} is not a mapping")
    engine = block.get("engine")
    if engine not in ("mysql", "tencent_cos", "file"):
        raise InvalidInput(f"{where}: {name('engine')} is {engine!r}; FATE-Flow 2.x knows file, mysql, tencent_cos")
    if block.get("decrypt_key"):
        raise InvalidInput(f"{where}: {name('decrypt_key')} is set; casreg cannot decrypt FATE's passwords: "
                           f"give the password in {ENV['password']} and leave decrypt_key empty")
    sub = block.get(engine)
    if not isinstance(sub, dict):
        raise InvalidInput(f"{where}: {name('engine')} is {engine} but {name(engine)} is not a mapping")

    def inner(k: str) -> str:
        return name(f"{engine}.{k}")
    if engine == "mysql":
        _no_unknown(sub, _MYSQL_KEYS, where, inner)
        return _mysql_location(sub, where, inner, 2)
    if engine == "tencent_cos":
        _no_unknown(sub, _COS_KEYS, where, inner)
        return _cos_location(sub, where, inner, 2)
    path = sub.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"{where}: {inner('path')} is empty (FATE-Flow then uses a directory inside its "
                           f"installation); give that directory")
    return Location("file", 2, path=path)


def _mysql_location(block: dict, where: str, name, generation: int) -> Location:
    database = _alias(block, ("database", "name"), where, name)
    password = _alias(block, ("password", "passwd"), where, name)
    if not database:
        raise InvalidInput(f"{where}: {name('database')} (or {name('name')}) is missing: which database holds "
                           f"FATE's models?")
    return Location("mysql", generation, host=_text(block, "host", where, name, "localhost"),
                    port=_port(block, where, name, 3306), user=_text(block, "user", where, name, "root"),
                    database=str(database), secrets={"password": str(password)} if password else {})


def _cos_location(block: dict, where: str, name, generation: int) -> Location:
    for k in ("Bucket", "Region"):
        if not isinstance(block.get(k), str) or not block[k] or "/" in block[k]:
            raise InvalidInput(f"{where}: {name(k)} is missing or not a plain name")
    cos = {"scheme": block.get("Scheme"), "endpoint": block.get("Endpoint"), "ip": block.get("IP"),
           "port": block.get("Port")}
    if cos["scheme"] not in (None, "http", "https"):
        raise InvalidInput(f"{where}: {name('Scheme')} must be http or https")
    secrets = {k: str(block[f]) for k, f in (("secret_id", "SecretId"), ("secret_key", "SecretKey")) if block.get(f)}
    timeout = block.get("Timeout") or 30.0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InvalidInput(f"{where}: {name('Timeout')} must be a number of seconds above 0")
    return Location("tencent_cos", generation, bucket=block["Bucket"], region=block["Region"], timeout=float(timeout),
                    cos=tuple((k, str(v)) for k, v in cos.items() if v not in (None, "")), secrets=secrets)


def _no_unknown(block: dict, known: set, where: str, name) -> None:
    unknown = sorted(str(k) for k in block if k not in known)
    if unknown:
        raise InvalidInput(f"{where}: unknown key {name(unknown[0])} for this engine (known: "
                           f"{', '.join(sorted(known - {'storage'}))})")


def _alias(block: dict, keys: tuple[str, str], where: str, name):
    given = [k for k in keys if block.get(k) not in (None, "")]
    if len(given) == 2 and str(block[keys[0]]) != str(block[keys[1]]):
        raise InvalidInput(f"{where}: {name(keys[0])} and {name(keys[1])} disagree; keep one")
    return block[given[0]] if given else None


def _text(block: dict, key: str, where: str, name, default: str) -> str:
    value = block.get(key)
    if value in (None, ""):
        return default
    if not isinstance(value, str) or any(c in value for c in "/@ \t\n"):
        raise InvalidInput(f"{where}: {name(key)} is not a plain name ({value!r})")
    return value


def _whole(block: dict, key: str, where: str, name, default: int) -> int:
    value = block.get(key, default)
    if value in (None, ""):
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{where}: {name(key)} must be a whole number (got {value!r})")
    return value


def _port(block: dict, where: str, name, default: int) -> int:
    port = _whole(block, "port", where, name, default)
    if not 0 < port < 65536:
        raise InvalidInput(f"{where}: {name('port')} must be from 1 to 65535 (got {port})")
    return port


def parse_store_url(url: str) -> Location:
    """A FATE store from a URL. Checked by casreg's one URL parser (``remotes.config.parse_url``);
    FATE's table and key names are fixed, so ``prefix`` is refused; a password in the URL too."""
    from .remotes.config import parse_url
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise InvalidURL(f"invalid FATE store URL: {exc}") from None
    scheme = parts.scheme.lower()
    ex = None
    if scheme == "redis":
        exes = [v for k, v in pairs if k == "ex"]
        pairs = [(k, v) for k, v in pairs if k != "ex"]
        if exes:
            if len(exes) > 1 or not exes[0].isdigit() or int(exes[0]) == 0:
                raise InvalidURL("invalid FATE store URL: ex must be one whole number of seconds above 0")
            ex = int(exes[0])
    netloc = parts.netloc
    if scheme == "cos":
        m = re.fullmatch(r"([a-z0-9]+(?:-[a-z0-9]+)+)\.(?:cos\.)?([a-z0-9][a-z0-9.-]*?)(?:\.myqcloud\.com)?", netloc)
        if m:
            if any(k == "region" for k, _ in pairs):
                raise InvalidURL("invalid FATE store URL: the region is in the host and in ?region=")
            netloc, pairs = m.group(1), [("region", m.group(2)), *pairs]
        if parts.path.strip("/"):
            raise InvalidURL("invalid FATE store URL: FATE's COS keys are fixed; no path after the bucket")
    if any(k == "prefix" for k, _ in pairs):
        raise InvalidURL("invalid FATE store URL: FATE's table and key names are fixed; no prefix=")
    path = "" if scheme == "cos" else parts.path
    u = parse_url(urlunsplit((scheme, netloc, path, urlencode(pairs), parts.fragment)))
    if u.password is not None:
        raise InvalidURL(f"do not put a password in the URL (it would stay in your shell history); set {ENV['password']}")
    if u.scheme == "mysql":
        if not u.database:
            raise InvalidURL("invalid FATE store URL: mysql://user@host:port/<database>: the database is missing")
        return Location("mysql", None, host=u.host, port=u.port, user=u.user or "root", database=u.database,
                        timeout=u.timeout)
    if u.scheme == "redis":
        return Location("redis", None, host=u.host, port=u.port, db=int(u.database or 0), ex=ex, timeout=u.timeout)
    if u.scheme == "cos":
        cos = tuple((k, v) for k, v in u.query.items() if k in ("scheme", "endpoint", "ip", "port"))
        return Location("tencent_cos", None, bucket=u.host, region=u.query["region"], cos=cos, timeout=u.timeout)
    if u.scheme == "file":
        return Location("file", None, path=u.path)
    raise InvalidURL(f"a FATE store is mysql://, redis://, cos:// or file:// (not {u.scheme}://)")


def env_secrets() -> dict:
    """Secrets from the environment: CASREG_FATE_PASSWORD, _SECRET_ID, _SECRET_KEY (COS also COS_SECRET_ID / _KEY)."""
    out = {k: os.environ[v] for k, v in ENV.items() if os.environ.get(v)}
    for k, v in (("secret_id", "COS_SECRET_ID"), ("secret_key", "COS_SECRET_KEY")):
        if k not in out and os.environ.get(v):
            out[k] = os.environ[v]
    return out


# -- what -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One archive in a FATE store. ``component`` is the component (2.x: the task) of a component
    archive, ``output_key`` a 2.x task output's key; ``where`` how the store names it."""
    layout: str                      # LAYOUT_1_8, LAYOUT_1_9, LAYOUT_1_X (COS, unknown 1.x) or LAYOUT_2
    party_model_id: str              # <role>#<party_id>#<model_id>
    model_version: str
    kind: str                        # PIPELINE or COMPONENT
    component: str | None = None
    output_key: str | None = None
    where: str = field(default="", compare=False)

    def __str__(self) -> str:
        what = " ".join(p for p in (self.kind, self.party_model_id, self.model_version, self.component,
                                    self.output_key) if p)
        return f"{what} ({self.where})" if self.where else what

    @property
    def sort_key(self) -> tuple:
        return (self.party_model_id, self.model_version, self.kind != PIPELINE, self.component or "",
                self.output_key or "")

    @property
    def storage_key(self) -> str:
        """FATE 2.x's key: ``<model_id>/<model_version>/<role>/<party_id>/<task_name>/<output_key>``."""
        parts = self.party_model_id.split("#", 2)
        if len(parts) != 3:
            raise InvalidInput(f"not a FATE party model id: {self.party_model_id!r} (<role>#<party_id>#<model_id>)")
        role, party, model = parts
        return "/".join((model, self.model_version, role, party, self.component or "", self.output_key or ""))


@dataclass(frozen=True)
class Archive:
    """An archive's bytes and the hashes FATE recorded for it (None where it recorded none)."""
    entry: Entry
    data: bytes = field(repr=False)
    recorded_sha256: str | None = None
    recorded_sha1: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def check(self) -> Archive:
        """Itself, or Corrupt if its bytes differ from a hash FATE recorded."""
        for name, recorded, actual in (("SHA-256", self.recorded_sha256, self.sha256),
                                       ("SHA-1", self.recorded_sha1, hashlib.sha1(self.data).hexdigest())):
            if recorded and recorded.lower() != actual:
                raise Corrupt(f"{self.entry}: the archive's {name} is {actual}, FATE recorded {recorded}")
        return self


def v2_entry(model_id: str, model_version: str, role: str, party_id: str, task_name: str, output_key: str,
             where: str = "") -> Entry:
    return Entry(LAYOUT_2, f"{role}#{party_id}#{model_id}", model_version, COMPONENT, task_name, output_key, where)


def _parse_storage_key(key: str, where: str) -> Entry | None:
    parts = key.split("/")
    if len(parts) != 6 or parts[2] not in ROLES or not all(_plain(p) for p in parts):
        return None
    model, version, role, party, task, output = parts
    return v2_entry(model, version, role, party, task, output, where)


def _plain(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= _NAME_MAX and value not in (".", "..")
            and not any(c in value for c in "/\\:") and not any(ord(c) < 32 or ord(c) == 127 for c in value))


def _check_names(*pairs: tuple[str, Any]) -> None:
    for what, value in pairs:
        if not _plain(value):
            raise InvalidInput(f"not a name FATE can store: {what} {value!r} (1 to {_NAME_MAX} characters, "
                               f"no '/', '\\', ':' or control characters)")


# -- decoding what a store holds ---------------------------------------------------------------------
class _NoGlobals(pickle.Unpickler):
    """FATE's slices are pickled ``bytes``: a pickle that names any global at all is refused."""
    def find_class(self, module, name):
        raise _GlobalRefused(f"{module}.{name}")


class _GlobalRefused(pickle.UnpicklingError):
    pass


def encode_slice(content: bytes) -> str:
    """``f_content`` of a 1.x row, as FATE's ``serialize_b64(content, to_str=True)`` writes it."""
    return base64.b64encode(pickle.dumps(bytes(content), protocol=PICKLE_PROTOCOL)).decode("ascii")


def slice_size(f_content: str) -> int:
    """``f_size`` as FATE computes it, ``sys.getsizeof(f_content)`` of an ASCII str on CPython 3.6-3.11
    (FATE 1.x runs on 3.6-3.8; 3.12 dropped 8 bytes from the str header, so not ``sys.getsizeof`` here)."""
    return 49 + len(f_content)


def decode_slice(f_content: Any, name: str, pickled: bool) -> bytes:
    """The bytes of one row's ``f_content``: strict base64, then (1.x) a pickle of one ``bytes``."""
    if isinstance(f_content, str):
        try:
            f_content = f_content.encode("ascii")
        except UnicodeEncodeError:
            raise Corrupt(f"{name}: f_content is not base64 (non-ASCII text)") from None
    try:
        raw = base64.b64decode(f_content, validate=True)
    except (ValueError, TypeError):
        raise Corrupt(f"{name}: f_content is not valid base64") from None
    if not pickled:
        return raw
    stream = io.BytesIO(raw)
    try:
        value = _NoGlobals(stream).load()
    except _GlobalRefused as exc:
        raise HostileInput(f"{name}: the pickle in f_content calls for the global {exc}; refused "
                           f"(FATE's slices are plain bytes)") from None
    except Exception as exc:  # any malformed pickle (truncated, bad opcode, bad memo): never partly used
        raise Corrupt(f"{name}: f_content is not a pickle FATE wrote ({type(exc).__name__})") from None
    if type(value) is not bytes:
        raise HostileInput(f"{name}: the pickle in f_content holds a {type(value).__name__}, not bytes")
    if stream.tell() != len(raw):
        raise Corrupt(f"{name}: f_content has {len(raw) - stream.tell()} bytes after its pickle")
    return value


def _check_archive(data: bytes, entry: Entry) -> bytes:
    buf = io.BytesIO(data)
    if entry.layout == LAYOUT_2:
        try:
            with tarfile.open(fileobj=buf):
                pass
        except (tarfile.TarError, EOFError, OSError, ValueError):
            raise Corrupt(f"{entry}: not a tar archive (FATE 2.x stores tars)") from None
        return data
    try:
        with zipfile.ZipFile(buf):
            pass
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise Corrupt(f"{entry}: not a zip archive (truncated or damaged)") from None
    return data


def _limit() -> int:
    from .archive import Limits
    return Limits.from_env().max_bytes


def _too_big(entry: Entry, size: int, limit: int) -> HostileInput:
    return HostileInput(f"{entry}: {size} bytes, more than the archive limit of {limit} (CASREG_ARCHIVE_MAX_BYTES)")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _date(ms: int) -> str:
    """FATE's timestamp_to_date: local time, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


# -- the stores ---------------------------------------------------------------------------------------
class FateStore:
    """One FATE store. ``entries()`` lists what it holds, ``read(entry)`` one archive, ``write(...)``
    stores one the way FATE-Flow does (refusing to replace a version unless ``force``)."""

    def __init__(self, location: Location):
        self.location = location
        self.secrets = {**env_secrets(), **location.secrets}

    def entries(self) -> list[Entry]:
        raise NotImplementedError

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        raise NotImplementedError

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> FateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _checked_write(self, party_model_id, model_version, data, component, output_key, layout) -> None:
        if layout is not None and layout not in LAYOUTS:
            raise InvalidInput(f"unknown FATE layout {layout!r} (one of {', '.join(LAYOUTS)})")
        if not isinstance(party_model_id, str) or len(party_model_id.split("#", 2)) != 3 \
                or party_model_id.split("#", 1)[0] not in ROLES:
            raise InvalidInput(f"not a FATE party model id: {party_model_id!r} (<role>#<party_id>#<model_id>)")
        _check_names(("party model id", party_model_id), ("model version", model_version))
        if component is not None:
            _check_names(("component", component))
        if layout == LAYOUT_2:
            if component is None or output_key is None:
                raise InvalidInput("a FATE 2.x archive is a task's output: give its task name and output key")
            _check_names(("output key", output_key), *(("2.x key part", p) for p in party_model_id.split("#", 2)))
        elif output_key is not None:
            raise InvalidInput("an output key is FATE 2.x's; a 1.x archive has none")
        if layout == LAYOUT_1_8 and component is not None:
            raise InvalidInput("FATE 1.7/1.8 store whole pipelines only; component archives are 1.9+")
        try:
            _check_archive(bytes(data), Entry(layout or LAYOUT_1_9, party_model_id, model_version,
                                              COMPONENT if component else PIPELINE, component, output_key,
                                              "the archive to write"))
        except Corrupt as exc:
            raise InvalidInput(str(exc)) from None


def open_store(location: Location) -> FateStore:
    """The store at ``location``, connected (a one-line RemoteError if it cannot be)."""
    kinds = {"mysql": MySQLStore, "redis": RedisStore, "tencent_cos": COSStore, "file": FileStore}
    return kinds[location.engine](location)


def open_conf(path: str) -> FateStore:
    return open_store(read_service_conf(path))


def open_url(url: str) -> FateStore:
    return open_store(parse_store_url(url))


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
        from .remotes.mysql_backend import MESSAGES, REFUSED, UNREACHABLE
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
                entry = _parse_storage_key(key, f"{self.where} {MODEL_TABLE}")
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
        limit = max_bytes or _limit()
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
                    raise _too_big(entry, estimate, limit)
                with self.conn.cursor(self._pymysql.cursors.SSCursor) as cur:
                    cur.execute(f"SELECT f_slice_index, f_content FROM `{table}` WHERE {where} "
                                f"ORDER BY f_slice_index", args)
                    for expected, (index, content) in enumerate(cur):
                        if index != expected:
                            raise Corrupt(f"{entry}: slice {expected} changed while reading")
                        out += decode_slice(content, f"{entry} slice {index}", pickled)
                        if len(out) > limit:
                            raise _too_big(entry, len(out), limit)
            finally:
                with contextlib.suppress(Exception):
                    self.conn.rollback()
        data = _check_archive(bytes(out), entry)
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
        if layout == LAYOUT_2 and len(entry.storage_key) > _NAME_MAX:
            raise InvalidInput(f"FATE 2.x storage key {entry.storage_key!r} is longer than its {_NAME_MAX}-character column")
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
        now = _now_ms()
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
                        (now, _date(now), now, _date(now), entry.party_model_id, entry.model_version,
                         slice_size(content), content, index))
        else:
            cur.execute(f"INSERT INTO `{table}` (f_create_time, f_create_date, f_update_time, f_update_date, "
                        f"f_party_model_id, f_model_version, f_component_name, f_size, f_content, f_slice_index) "
                        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (now, _date(now), now, _date(now), entry.party_model_id, entry.model_version, entry.component,
                         slice_size(content), content, index))


# Redis ------------------------------------------------------------------------------------------------
class RedisStore(FateStore):
    def __init__(self, location: Location):
        super().__init__(location)
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        self._redis = redis
        loc = location
        self.where = f"redis {loc.host}:{loc.port or 6379}/{loc.db}"
        self.r = redis.Redis(host=loc.host, port=loc.port or 6379, db=loc.db, password=self.secrets.get("password"),
                             socket_connect_timeout=loc.timeout, socket_timeout=loc.timeout, retry=Retry(NoBackoff(), 0))
        with self._errors():
            self.r.ping()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        e = self._redis.exceptions
        try:
            yield
        except e.AuthenticationError:
            raise RemoteRefused(f"{self.where}: authentication failed (FATE's config or {ENV['password']})") from None
        except (e.ConnectionError, e.TimeoutError) as exc:
            raise RemoteUnreachable(f"cannot reach {self.where}: {str(exc).splitlines()[0][:200]}") from None
        except e.ResponseError as exc:
            text = str(exc)
            kind = RemoteRefused if ("NOAUTH" in text or "WRONGPASS" in text or text.startswith("OOM")) else RemoteError
            raise kind(f"{self.where}: {text[:200]}") from None
        except e.RedisError as exc:
            raise RemoteError(f"{self.where}: unexpected reply, is it a Redis server? ({str(exc)[:100]})") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.r.close()

    @staticmethod
    def key(party_model_id: str, model_version: str) -> str:
        return f"{REDIS_PREFIX}{party_model_id}:{model_version}"

    def entries(self) -> list[Entry]:
        out = []
        with self._errors():
            for raw in self.r.scan_iter(match=REDIS_PREFIX + "*", count=1000):
                try:
                    key = raw.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                pmid, _, version = key[len(REDIS_PREFIX):].rpartition(":")
                if pmid and version:
                    out.append(Entry(LAYOUT_1_8, pmid, version, PIPELINE, where=f"{self.where} key {key}"))
        return sorted(out, key=lambda e: e.sort_key)

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        limit = max_bytes or _limit()
        if entry.kind != PIPELINE or entry.layout not in (LAYOUT_1_8, LAYOUT_1_X):
            raise NotFound(f"{entry}: FATE keeps only 1.7/1.8 pipeline archives in Redis")
        key = self.key(entry.party_model_id, entry.model_version)
        entry = Entry(LAYOUT_1_8, entry.party_model_id, entry.model_version, PIPELINE, where=f"{self.where} key {key}")
        with self._errors():
            size = int(self.r.strlen(key))     # a key that is not a string: WRONGTYPE, a RemoteError
            if size > limit:
                raise _too_big(entry, size, limit)
            data = self.r.get(key)
        if data is None:
            raise NotFound(f"{entry}: no such key")
        if len(data) > limit:  # grown since STRLEN
            raise _too_big(entry, len(data), limit)
        return Archive(entry, _check_archive(bytes(data), entry))

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        if component is not None or output_key is not None or layout not in (None, LAYOUT_1_8):
            raise InvalidInput("FATE keeps only 1.7/1.8 pipeline archives in Redis (1.9 removed the Redis store)")
        self._checked_write(party_model_id, model_version, data, None, None, LAYOUT_1_8)
        key = self.key(party_model_id, model_version)
        entry = Entry(LAYOUT_1_8, party_model_id, model_version, PIPELINE, where=f"{self.where} key {key}")
        with self._errors():
            done = self.r.set(key, bytes(data), ex=self.location.ex, nx=not force)  # FATE's SET key zip [NX] [EX ex]
        if not done:
            raise AlreadyExists(f"{entry}: already in the store; replace it with force")
        return entry


# COS --------------------------------------------------------------------------------------------------
class COSStore(FateStore):
    def __init__(self, location: Location):
        super().__init__(location)
        from .remotes.base import Traffic
        from .remotes.config import RemoteURL
        from .remotes.cos_backend import COSBlobs
        loc = location
        query = {"region": loc.region, "prefix": "", **dict(loc.cos)}
        url = RemoteURL(f"cos://{loc.bucket}", "cos", loc.bucket, query=query, timeout=loc.timeout)
        self.blobs = COSBlobs(url, self.secrets, Traffic())
        self.where = f"COS bucket {loc.bucket}"

    def _list(self, prefix: str) -> dict[str, int]:
        """Key (after ``prefix``) -> size of every object under ``prefix`` (all of them for "")."""
        out: dict[str, int] = {}
        marker = ""
        while True:
            with self.blobs._errors():
                resp = self.blobs.client.list_objects(Bucket=self.blobs.bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
            contents = resp.get("Contents", [])
            out.update((c["Key"][len(prefix):], int(c.get("Size", 0))) for c in contents)
            if resp.get("IsTruncated") not in ("true", True) or not contents:
                return out
            marker = resp.get("NextMarker") or contents[-1]["Key"]

    def entries(self) -> list[Entry]:
        models, components, out = self._list(COS_MODELS + "/"), self._list(COS_COMPONENTS + "/"), []
        with_components = set()
        for name in components:
            parts = name.split("/")
            if len(parts) == 3 and parts[2].endswith(".zip") and len(parts[2]) > 4:
                with_components.add((parts[0], parts[1]))
                out.append(Entry(LAYOUT_1_9, parts[0], parts[1], COMPONENT, parts[2][:-4],
                                 where=f"{self.where} {COS_COMPONENTS}/{name}"))
        for name in models:
            parts = name.split("/")
            if len(parts) == 2 and parts[1].endswith(".zip") and len(parts[1]) > 4:
                pmid, version = parts[0], parts[1][:-4]
                layout = LAYOUT_1_8 if f"{name}.sha1" in models else \
                    LAYOUT_1_9 if (pmid, version) in with_components else LAYOUT_1_X
                out.append(Entry(layout, pmid, version, PIPELINE, where=f"{self.where} {COS_MODELS}/{name}"))
        for name in self._list(""):
            if not name.startswith("FATEFlow/"):
                entry = _parse_storage_key(name, f"{self.where} {name}")
                if entry:
                    out.append(entry)
        return sorted(out, key=lambda e: e.sort_key)

    @staticmethod
    def key(entry: Entry) -> str:
        if entry.layout == LAYOUT_2:
            return entry.storage_key
        if entry.kind == COMPONENT:
            return f"{COS_COMPONENTS}/{entry.party_model_id}/{entry.model_version}/{entry.component}.zip"
        return f"{COS_MODELS}/{entry.party_model_id}/{entry.model_version}.zip"

    def _size(self, key: str) -> int | None:
        from .remotes.blobs import BlobMissing
        try:
            with self.blobs._errors():
                head = self.blobs.client.head_object(Bucket=self.blobs.bucket, Key=key)
        except BlobMissing:
            return None
        except RemoteError as exc:
            if "404" in str(exc) or "NoSuch" in str(exc):
                return None
            raise
        length = next((v for k, v in head.items() if k.lower() == "content-length"), None)
        return int(length) if length is not None and str(length).isdigit() else None

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        from .remotes.blobs import BlobMissing
        limit = max_bytes or _limit()
        key = self.key(entry)
        entry = Entry(entry.layout, entry.party_model_id, entry.model_version, entry.kind, entry.component,
                      entry.output_key, f"{self.where} {key}")
        size = self._size(key)
        if size is None:
            raise NotFound(f"{entry}: no such object")
        if size > limit:
            raise _too_big(entry, size, limit)
        try:
            data, _ = self.blobs.get(key)
        except BlobMissing:
            raise NotFound(f"{entry}: no such object") from None
        if len(data) > limit:
            raise _too_big(entry, len(data), limit)
        sha1 = None
        if entry.kind == PIPELINE and entry.layout in (LAYOUT_1_8, LAYOUT_1_X) and self._size(key + ".sha1") is not None:
            side, _ = self.blobs.get(key + ".sha1")
            sha1 = side[:64].decode("ascii", "replace").strip().lower()
            if not re.fullmatch(r"[0-9a-f]{40}", sha1) or len(side.strip()) != 40:
                raise Corrupt(f"{entry}: its side object {key}.sha1 does not hold a SHA-1")
        return Archive(entry, _check_archive(data, entry), recorded_sha1=sha1)

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        if layout is None:
            layout = LAYOUT_2 if self.location.generation == 2 else LAYOUT_1_9
        self._checked_write(party_model_id, model_version, data, component, output_key, layout)
        entry = Entry(layout, party_model_id, model_version, COMPONENT if component else PIPELINE, component, output_key)
        key = self.key(entry)
        entry = Entry(layout, party_model_id, model_version, entry.kind, component, output_key, f"{self.where} {key}")
        if force:
            self.blobs.put(key, bytes(data))
        elif self.blobs.put_if_absent(key, bytes(data)) is None:
            raise AlreadyExists(f"{entry}: already in the store; replace it with force")
        return entry


# file (2.x) -------------------------------------------------------------------------------------------
class FileStore(FateStore):
    """FATE-Flow 2.x's ``file`` engine: each task output a tar at ``<path>/<storage key>``."""

    def __init__(self, location: Location):
        super().__init__(location)
        self.root = location.path
        if not os.path.isdir(self.root):
            raise NotFound(f"FATE file store {self.root}: no such directory")

    def _path(self, entry: Entry) -> str:
        from .safepath import join_inside
        if entry.layout != LAYOUT_2:
            raise NotFound(f"{entry}: FATE's file engine holds 2.x task outputs only")
        return join_inside(self.root, *entry.storage_key.split("/"))

    def entries(self) -> list[Entry]:
        out = []
        for top, dirs, files in os.walk(self.root):
            depth = 0 if top == self.root else os.path.relpath(top, self.root).count(os.sep) + 1
            dirs[:] = sorted(d for d in dirs if depth < 5 and not os.path.islink(os.path.join(top, d)))
            if depth == 5:
                for name in files:
                    key = os.path.relpath(os.path.join(top, name), self.root).replace(os.sep, "/")
                    entry = _parse_storage_key(key, f"{self.root}/{key}")
                    if entry:
                        out.append(entry)
        return sorted(out, key=lambda e: e.sort_key)

    def read(self, entry: Entry, max_bytes: int | None = None) -> Archive:
        limit = max_bytes or _limit()
        path = self._path(entry)
        entry = Entry(LAYOUT_2, entry.party_model_id, entry.model_version, COMPONENT, entry.component,
                      entry.output_key, path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFound(f"{entry}: no such file") from None
        except OSError as exc:
            raise RemoteError(f"{entry}: cannot open: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise _too_big(entry, size, limit)
            data = f.read(size + 1)
        if len(data) > limit:
            raise _too_big(entry, len(data), limit)
        return Archive(entry, _check_archive(data, entry))

    def write(self, party_model_id: str, model_version: str, data: bytes, *, component: str | None = None,
              output_key: str | None = None, layout: str | None = None, force: bool = False) -> Entry:
        if layout not in (None, LAYOUT_2):
            raise InvalidInput("FATE's file engine holds 2.x task outputs only")
        self._checked_write(party_model_id, model_version, data, component, output_key, LAYOUT_2)
        entry = Entry(LAYOUT_2, party_model_id, model_version, COMPONENT, component, output_key)
        path = self._path(entry)
        entry = Entry(LAYOUT_2, party_model_id, model_version, COMPONENT, component, output_key, path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.casreg-{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            if force:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise AlreadyExists(f"{entry}: already in the store; replace it with force") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return entry
