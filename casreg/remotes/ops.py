"""Remote operations on a store by remote name: what the CLI's remote commands call."""

from __future__ import annotations

import os

from ..errors import CasregError, NotFound
from . import open_backend
from .base import Backend
from .config import RemoteConfig, check_new_remote, env_secrets
from .sync import FetchResult, PushResult, fast_forward, fetch, push, tracking_ref, verify_remote


def config(repo) -> RemoteConfig:
    return RemoteConfig(repo.path)


def backend(repo, name: str, *, cached: bool = True) -> Backend:
    """The backend of remote ``name``; ``cached=False`` reads everything from the server itself."""
    cfg = config(repo)
    cache_dir = os.path.join(repo.path, "cache", name) if cached else None
    return open_backend(cfg.get(name)["url"], cfg.secrets(name), cache_dir=cache_dir)


def push_refs(repo, name: str, refs: list[str], *, all_refs: bool = False, force: bool = False,
              progress=None) -> list[PushResult]:
    if all_refs:
        refs = [r for r, _ in repo.list_refs() if not r.startswith("remotes/")]
    if not refs:
        raise CasregError("name the refs to push, or --all")
    be = backend(repo, name)
    try:
        return push(repo, be, refs, force=force, progress=progress)
    finally:
        be.close()


def fetch_refs(repo, name: str, refs: list[str] | None = None, progress=None) -> FetchResult:
    be = backend(repo, name)
    try:
        return fetch(repo, name, be, refs or None, progress=progress)
    finally:
        be.close()


def pull_ref(repo, name: str, ref: str, *, force: bool = False, progress=None) -> tuple[bytes | None, bytes]:
    """Fetch ``ref`` from remote ``name`` and fast-forward the local ref to it."""
    result = fetch_refs(repo, name, [ref], progress=progress)
    target = result.refs[ref]
    old = fast_forward(repo, ref, target, force=force, message=f"pull {name}")
    return old, target


def ls_remote(repo, name: str) -> dict[str, bytes]:
    be = backend(repo, name)
    try:
        return be.refs()
    finally:
        be.close()


def verify(repo, name: str, full: bool = False) -> list[dict]:
    be = backend(repo, name, cached=False)  # check what the server holds, not what we remember
    try:
        return verify_remote(be, full)
    finally:
        be.close()


def clone(url: str, path: str, secrets: dict | None = None, progress=None):
    """A new store at ``path`` with remote ``origin`` and a local ref for every remote ref."""
    from ..repo import STORE_DIR, Repository
    store = path if os.path.basename(os.path.normpath(path)) == STORE_DIR else os.path.join(path, STORE_DIR)
    check_new_remote("origin", url)  # what `remote add` refuses (a password in the URL), before connecting
    be = open_backend(url, {**(secrets or {}), **env_secrets("origin")})  # fail before creating anything
    be.close()
    created = not os.path.exists(store)
    repo = Repository.init(store)
    try:
        config(repo).add("origin", url, secrets)
        result = fetch_refs(repo, "origin", progress=progress)
        for ref, target in result.refs.items():
            fast_forward(repo, ref, target, message="clone")
    except BaseException:
        repo.close()
        if created:  # a failed clone leaves nothing behind
            import shutil
            shutil.rmtree(store, ignore_errors=True)
        raise
    return repo


def wants_fetch(repo, spec: str) -> bool:
    """True when auto-sync is on, a default remote is set and ``spec`` is unknown locally."""
    cfg = config(repo)
    if not (cfg.auto_sync and cfg.default):
        return False
    try:
        repo.resolve(spec.partition(":")[0])
        return False
    except NotFound:
        return True


def auto_fetch(repo, spec: str) -> str:
    """Pull ``spec``'s ref from the default remote (FATE's enable_model_store on load); its name."""
    remote = config(repo).default
    pull_ref(repo, remote, spec.partition(":")[0])
    return remote


def auto_push(repo, ref: str) -> list[PushResult] | None:
    """With auto-sync on and a default remote: push ``ref`` after a commit moved it."""
    cfg = config(repo)
    if not (cfg.auto_sync and cfg.default):
        return None
    return push_refs(repo, cfg.default, [ref])


__all__ = ["auto_fetch", "auto_push", "wants_fetch", "clone", "config", "fetch_refs", "ls_remote", "pull_ref", "push_refs",
           "tracking_ref", "verify"]
