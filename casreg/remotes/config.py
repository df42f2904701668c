"""Named remotes of a store, in ``<store>/remotes.json`` (mode 0600: it may hold secrets).

A remote is a URL plus optional secrets. Secrets never come from the command line: they come from
environment variables ``CASREG_REMOTE_<NAME>_PASSWORD`` / ``_SECRET_ID`` / ``_SECRET_KEY`` (for COS
also ``COS_SECRET_ID`` / ``COS_SECRET_KEY``), or from a FATE ``model_store_address`` block read by
``remote add --fate-config``, which are kept in this 0600 file.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, urlsplit

from ..errors import CasregError
from .base import redact

FILE_NAME = "remotes.json"
SCHEMES = ("file", "redis", "mysql", "cos")
SECRET_FIELDS = ("password", "secret_id", "secret_key")
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
        if not _NAME.match(name):
            raise CasregError(f"invalid remote name {name!r}: letters, digits, '.', '_', '-'")
        if name in self.data["remotes"]:
            raise CasregError(f"remote {name} already exists")
        check_url(url)
        if urlsplit(url).password:
            raise CasregError("do not put a password in the URL (it would stay in your shell history); "
                              f"set {env_name(name, 'password')} or use --fate-config")
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
        from_env = [f for f in SECRET_FIELDS if os.environ.get(env_name(name, f))]
        return {"name": name, "url": redact(entry["url"]), "secrets_in_config": stored,
                "secrets_from_env": from_env, "default": self.data.get("default") == name}

    def secrets(self, name: str) -> dict:
        """Secrets for a remote: environment variables first, then the 0600 config file."""
        out = dict(self.get(name).get("secrets", {}))
        for f in SECRET_FIELDS:
            value = os.environ.get(env_name(name, f))
            if value is not None:
                out[f] = value
        return out

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


def env_name(remote: str, field: str) -> str:
    return f"CASREG_REMOTE_{re.sub(r'[^A-Za-z0-9]', '_', remote).upper()}_{field.upper()}"


def check_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise CasregError(f"unsupported remote URL {redact(url)!r}: use " + ", ".join(f"{s}://" for s in SCHEMES))
    return url


def from_fate_config(path: str) -> tuple[str, dict]:
    """URL and secrets from FATE's ``model_store_address`` (a service_conf.yaml or the block alone)."""
    import yaml
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise CasregError(f"cannot read FATE config {path}: {exc}") from None
    block = doc.get("model_store_address", doc) if isinstance(doc, dict) else None
    if not isinstance(block, dict) or "storage" not in block:
        raise CasregError(f"{path}: no model_store_address block with a 'storage' key")
    storage = str(block["storage"]).lower()
    if storage == "tencent_cos":
        try:
            bucket, region = block["Bucket"], block["Region"]
        except KeyError as exc:
            raise CasregError(f"{path}: tencent_cos needs {exc.args[0]}") from None
        return (f"cos://{bucket}?region={quote(str(region))}",
                {"secret_id": str(block.get("SecretId", "")), "secret_key": str(block.get("SecretKey", ""))})
    if storage == "mysql":
        host, port = block.get("host", "127.0.0.1"), block.get("port", 3306)
        user, database = block.get("user", "root"), block.get("database", "fate_model")
        secrets = {"password": str(block["password"])} if block.get("password") else {}
        return f"mysql://{quote(str(user))}@{host}:{port}/{database}", secrets
    if storage == "redis":
        host, port, db = block.get("host", "127.0.0.1"), block.get("port", 6379), block.get("db", 0)
        secrets = {"password": str(block["password"])} if block.get("password") else {}
        return f"redis://{host}:{port}/{db}", secrets
    raise CasregError(f"{path}: unknown storage {storage!r} (FATE knows tencent_cos, mysql, redis)")
