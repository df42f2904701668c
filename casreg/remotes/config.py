"""Named remotes of a store, in ``<store>/remotes.json`` (mode 0600: it may hold secrets).

A remote is a URL plus optional secrets. Secrets never come from the command line: they come from
environment variables ``CASREG_REMOTE_<NAME>_<FIELD>``, the fields each scheme registers:
``PASSWORD`` (redis, mysql), ``SECRET_ID`` / ``SECRET_KEY`` (COS; also ``COS_SECRET_ID`` /
``COS_SECRET_KEY``), ``ACCESS_KEY_ID`` / ``SECRET_ACCESS_KEY`` (S3; also ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``), or from FATE-Flow's model store in its ``service_conf.yaml`` read by
``remote add --fate-config`` (``from_fate_config``), which are kept in this 0600 file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from ..errors import CasregError, InvalidInput, InvalidURL
from .base import redact
from .registry import secret_fields

if TYPE_CHECKING:
    from ..fatestores.where import Location

FILE_NAME = "remotes.json"
DEFAULT_TIMEOUT = 30.0  # seconds, for connecting and for each read (URL query key ``timeout``)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RemoteConfig:
    def __init__(self, store_path: str):
        self.path = os.path.join(store_path, FILE_NAME)
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            self.data = {"remotes": {}, "default": None, "auto_sync": False}
        except (OSError, ValueError) as exc:
            raise CasregError(f"cannot read {self.path}: {exc}") from None

    def save(self) -> None:
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.data, f, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    # -- remotes ---------------------------------------------------------------------------------
    def add(self, name: str, url: str, secrets: dict | None = None) -> None:
        check_new_remote(name, url)
        if name in self.data["remotes"]:
            raise CasregError(f"remote {name} already exists")
        self.data["remotes"][name] = {"url": url, **({"secrets": secrets} if secrets else {})}
        self.save()

    def remove(self, name: str) -> None:
        self.get(name)
        del self.data["remotes"][name]
        if self.data.get("default") == name:
            self.data["default"] = None
        self.save()

    def get(self, name: str) -> dict:
        try:
            return self.data["remotes"][name]
        except KeyError:
            raise CasregError(f"no remote named {name}; see `casreg remote list`") from None

    def names(self) -> list[str]:
        return sorted(self.data["remotes"])

    def public(self, name: str) -> dict:
        """What may be printed: the URL without secrets, and which secrets are set where."""
        entry = self.get(name)
        stored = sorted(entry.get("secrets", {}))
        from_env = [f for f in secret_fields() if os.environ.get(env_name(name, f))]
        return {"name": name, "url": redact(entry["url"]), "secrets_in_config": stored,
                "secrets_from_env": from_env, "default": self.data.get("default") == name}

    def secrets(self, name: str) -> dict:
        """Secrets for a remote: environment variables first, then the 0600 config file."""
        return {**self.get(name).get("secrets", {}), **env_secrets(name)}

    # -- defaults --------------------------------------------------------------------------------
    def set_default(self, name: str | None) -> None:
        if name is not None:
            self.get(name)
        self.data["default"] = name
        self.save()

    @property
    def default(self) -> str | None:
        return self.data.get("default")

    def set_auto_sync(self, on: bool) -> None:
        self.data["auto_sync"] = bool(on)
        self.save()

    @property
    def auto_sync(self) -> bool:
        return bool(self.data.get("auto_sync"))


def check_new_remote(name: str, url: str) -> RemoteURL:
    """What ``remote add`` (and ``clone``, for origin) accept, checked before anything connects."""
    if not _NAME.match(name):
        raise InvalidInput(f"invalid remote name {name!r}: letters, digits, '.', '_', '-'")
    parsed = parse_url(url)
    if parsed.password is not None:
        raise InvalidURL("do not put a password in the URL (it would stay in your shell history); "
                         f"set {env_name(name, 'password')} or use --fate-config")
    return parsed


def env_secrets(name: str) -> dict:
    """The secrets of remote ``name`` set in the environment (CASREG_REMOTE_<NAME>_<FIELD>)."""
    return {f: os.environ[env_name(name, f)] for f in secret_fields() if os.environ.get(env_name(name, f)) is not None}


def env_name(remote: str, field: str) -> str:
    return f"CASREG_REMOTE_{re.sub(r'[^A-Za-z0-9]', '_', remote).upper()}_{field.upper()}"


@dataclass(frozen=True)
class RemoteURL:
    """A remote URL, checked: what a backend connects to. ``raw`` is the URL as given."""
    raw: str
    scheme: str
    host: str = ""           # the server; for cos:// the bucket
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str = ""       # redis: the db number; mysql: the database
    path: str = ""           # file: the store's directory
    query: dict = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT

    def __str__(self) -> str:
        return redact(self.raw)


def parse_url(url: str) -> RemoteURL:
    """The one parser of remote URLs: every problem is an InvalidURL naming it (never the password).
    What is common to every scheme is checked here; the rest by the scheme's ``check_url``."""
    from .registry import schemes

    def bad(problem: str) -> InvalidURL:
        return InvalidURL(f"invalid remote URL {redact(url)!r}: {problem}")
    try:
        parts = urlsplit(url)
        port = parts.port
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise bad(str(exc)) from None
    scheme = parts.scheme.lower()
    known = schemes()
    if scheme not in known:
        raise bad("use " + ", ".join(f"{s}://" for s in known))
    spec = known[scheme]
    if parts.fragment:
        raise bad("'#' is not allowed (percent-encode it)")
    query = dict(pairs)
    if len(query) != len(pairs):
        raise bad("a query key is given twice")
    unknown = sorted(set(query) - set(spec.query_keys))
    if unknown:
        keys = ", ".join(spec.query_keys) or "none"
        raise bad(f"unknown query key {unknown[0]!r} (known for {scheme}://: {keys})")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 86400:
            raise bad("timeout must be a number of seconds, more than 0 and at most 86400")
    if port == 0:
        raise bad("port 0")
    out = RemoteURL(url, scheme, parts.hostname or "", port, unquote(parts.username) if parts.username else None,
                    unquote(parts.password) if parts.password is not None else None,
                    query=query, timeout=timeout)
    return spec.check_url(out, parts.netloc, unquote(parts.path), bad) if spec.check_url else out


def check_server_url(out: RemoteURL, netloc: str, path: str, bad) -> RemoteURL:
    """For a scheme naming a server (redis://, mysql://): a host, and the path as the database."""
    if not out.host:
        raise bad(f"needs a host: {out.scheme}://host[:port]/...")
    return replace(out, database=path.strip("/"))


def from_fate_config(path: str) -> tuple[str, dict]:
    """URL and secrets of a casreg remote on the server of FATE-Flow's model store, as its
    ``service_conf.yaml`` names it (read by ``fatestores.where``, the one reader of that file:
    1.x ``model_store_address``, 2.x ``model_store``, or the block alone)."""
    from ..fatestores.where import read_service_conf
    return remote_of_fate_store(read_service_conf(path))


def remote_of_fate_store(loc: Location) -> tuple[str, dict]:
    """A ``fatestores.Location`` as casreg's remote URL + secrets (its password, COS keys).
    Redis's ``ex`` (the TTL FATE gives its own keys) is not carried over: casreg's objects on
    that server do not expire. FATE-Flow 2.x's ``file`` store is a directory of FATE's, no server."""
    host = (f"[{loc.host}]" if ":" in loc.host else loc.host) + (f":{loc.port}" if loc.port else "")
    query: list[tuple[str, str]]
    if loc.engine == "mysql":
        url, query = f"mysql://{quote(loc.user, safe='')}@{host}/{quote(loc.database, safe='')}", []
    elif loc.engine == "redis":
        url, query = f"redis://{host}/{loc.db}", []
    elif loc.engine == "tencent_cos":
        url, query = f"cos://{loc.bucket}", [("region", loc.region), *loc.cos]
    else:
        raise InvalidInput(f"{loc}: FATE-Flow's file model store is a directory on this machine, not a "
                           f"server; for a casreg store there give its file:// URL")
    if loc.timeout != DEFAULT_TIMEOUT:
        query.append(("timeout", f"{loc.timeout:g}"))
    return url + (f"?{urlencode(query)}" if query else ""), dict(loc.secrets)
