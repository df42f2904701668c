"""Where a FATE store is: FATE-Flow's service_conf.yaml (1.x ``model_store_address``, 2.x
``model_store``) or a store URL, and the secrets (never from URLs)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import (
    InvalidInput,
    InvalidURL,
)
from .entries import ENV

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
        block = doc.get("model_store", doc)
        location = _conf_v2(block, where, "model_store" if "model_store" in doc else "")
        key = "model_store.decrypt_key" if "model_store" in doc else "decrypt_key"
        encrypted = isinstance(block, dict) and bool(block.get("decrypt_key"))
        return _secrets_from_env(location, where, key) if encrypted else location
    block = doc.get("model_store_address", doc)
    key = "model_store_address" if "model_store_address" in doc else ""
    if not isinstance(block, dict) or "storage" not in block:
        raise InvalidInput(f"{where}: no model_store_address (FATE-Flow 1.x) or model_store (2.x) block with "
                           f"a storage / engine key")
    location = _conf_v1(block, where, key)
    return _secrets_from_env(location, where, "encrypt_password") if doc.get("encrypt_password") else location


def _secrets_from_env(location: Location, where: str, key: str) -> Location:
    """A store whose config holds its secrets encrypted (FATE's ``encrypt_password`` /
    ``decrypt_key``, which casreg cannot decrypt): MySQL's and Redis's password from
    ``CASREG_FATE_PASSWORD``, COS's secret key (and id, if given) from ``CASREG_FATE_SECRET_KEY``
    (``_SECRET_ID``), instead of the file's; an InvalidInput naming the variable when it is not
    set. A file store has no secret."""
    if location.engine == "file":
        return location
    needed, optional = (("secret_key",), ("secret_id",)) if location.engine == "tencent_cos" else (("password",), ())
    given = {k: os.environ[ENV[k]] for k in (*needed, *optional) if os.environ.get(ENV[k])}
    missing = [ENV[k] for k in needed if k not in given]
    if missing:
        raise InvalidInput(f"{where}: {key} is set: the file's secrets are encrypted and casreg cannot decrypt "
                           f"them; give them in {' and '.join(missing)} (used instead of the file's)")
    return replace(location, secrets={**location.secrets, **given})


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
    from ..remotes.config import parse_url
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
