"""Remote operations on a store by remote name: what the CLI's remote commands call."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from typing import Iterator

from .. import notes
from ..errors import AlreadyExists, InvalidInput, NotFound, RefConflict, StoreUnavailable
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


# What `push --all` sends: the registry's names (versions, checkpoints, tags, aliases, metadata,
# FEDn models), not scratch refs of other names nor remote-tracking refs.
PUSHED_BY_ALL = ("models/", "checkpoints/", "components/", "tags/", "aliases/", "modelmeta/", notes.PREFIX, "fedn/",
                 "serving/")  # FATE-Serving service id bindings (fate/publish.py)


def push_refs(repo, name: str, refs: list[str], *, all_refs: bool = False, force: bool = False,
              progress=None) -> list[PushResult]:
    if all_refs:
        refs = [r for r, _ in repo.list_refs() if r.startswith(PUSHED_BY_ALL)]
    if not refs:
        raise InvalidInput("name the refs to push, or --all")
    refs = with_annotations(repo, refs)
    be = backend(repo, name)
    try:
        return push(repo, be, refs, force=force, progress=progress)
    finally:
        be.close()


def delete_remote_ref(repo, name: str, ref: str, *, expect_old: bytes | None = None) -> bytes:
    """Delete ``ref`` on remote ``name`` by compare-and-swap (from ``expect_old`` if given, else
    from where it is now) and the local tracking ref; returns what it pointed at. The objects stay
    on the remote until its gc."""
    be = backend(repo, name)
    try:
        current = be.refs([ref]).get(ref)
        if current is None:
            raise NotFound(f"the remote {name} has no ref {ref}")
        if expect_old is not None and current != expect_old:
            raise RefConflict(f"{ref} on {name} is at {current.hex()[:12]}, expected {expect_old.hex()[:12]}")
        if not be.set_ref_if_equals(ref, current, None):
            raise RefConflict(f"{ref} on {name} moved while deleting it; look again")
    finally:
        be.close()
    tracking = tracking_ref(name, ref)
    if dict(repo.list_refs(tracking)).get(tracking):
        repo.delete_ref(tracking)
    return current


def gc_remote(repo, name: str, *, dry_run: bool = False, grace: str | None = None,
              compact: bool | None = None):
    """``gc.collect`` on remote ``name`` (grace default ``gc.DEFAULT_GRACE``): a ``RemoteGcResult``."""
    from .gc import DEFAULT_GRACE, collect
    be = backend(repo, name)
    try:
        return collect(be, remote=name, grace=grace or DEFAULT_GRACE, dry_run=dry_run, compact=compact)
    finally:
        be.close()


def with_annotations(repo, refs: list[str]) -> list[str]:
    """``refs`` and the annotation refs of the versions they name (metadata travels with them)."""
    have = dict(repo.list_refs(notes.PREFIX))
    out = list(dict.fromkeys(refs))
    for ref in refs:
        if not notes.is_notes_ref(ref):
            note = notes.notes_ref(repo.resolve(ref))
            if note in have and note not in out:
                out.append(note)
    return out


def fetch_refs(repo, name: str, refs: list[str] | None = None, *, repair: bool = False,
               progress=None) -> FetchResult:
    be = backend(repo, name)
    try:
        return fetch(repo, name, be, refs or None, repair=repair, progress=progress)
    finally:
        be.close()


def pull_ref(repo, name: str, ref: str, *, force: bool = False, progress=None) -> tuple[bytes | None, bytes]:
    """Fetch ``ref`` from remote ``name`` and fast-forward the local ref to it."""
    result = fetch_refs(repo, name, [ref], progress=progress)
    target = result.refs[ref]
    old = fast_forward(repo, ref, target, force=force, message=f"pull {name}")
    note = notes.notes_ref(target)
    if note in result.refs:  # the version's metadata as the remote has it
        fast_forward(repo, note, result.refs[note], force=force, message=f"pull {name}")
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


CLONE_PREFIX = ".casreg-clone-"


def clone(url: str, path: str, secrets: dict | None = None, progress=None):
    """A new store at ``path`` with remote ``origin`` and a local ref for every remote ref.

    Atomic: the store is built in a temporary sibling and renamed into place once every ref
    landed, so a clone cut off at any point leaves no store behind and can simply be run again
    (the sibling of a killed clone is removed by the next clone beside it)."""
    from ..repo import STORE_DIR, Repository
    store = path if os.path.basename(os.path.normpath(path)) == STORE_DIR else os.path.join(path, STORE_DIR)
    store = os.path.abspath(store)
    if os.path.exists(os.path.join(store, "data.mdb")):
        raise AlreadyExists(f"a casreg store already exists at {store}")
    check_new_remote("origin", url)  # what `remote add` refuses (a password in the URL), before connecting
    be = open_backend(url, {**(secrets or {}), **env_secrets("origin")})  # fail before creating anything
    be.close()
    parent = os.path.dirname(store)
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_abandoned_clones(parent)
        tmp = tempfile.mkdtemp(prefix=CLONE_PREFIX, dir=parent)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create a store in {parent}: {exc.strerror}") from None
    try:
        with _held(os.path.join(tmp, ".clone.lock")):
            with Repository.init(tmp) as repo:
                config(repo).add("origin", url, secrets)
                result = fetch_refs(repo, "origin", progress=progress)
                for ref, target in result.refs.items():
                    fast_forward(repo, ref, target, message="clone")
            os.unlink(os.path.join(tmp, ".clone.lock"))
            try:
                os.rename(tmp, store)  # onto nothing or an empty directory; never over a store
            except OSError as exc:
                raise StoreUnavailable(f"cannot create the store at {store}: {exc.strerror}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Repository(store)


@contextlib.contextmanager
def _held(lock_path: str) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_abandoned_clones(parent: str) -> None:
    """Temporary stores of clones that were killed: their lock is free (a live clone holds it)."""
    for name in os.listdir(parent):
        if not name.startswith(CLONE_PREFIX):
            continue
        candidate = os.path.join(parent, name)
        try:
            fd = os.open(os.path.join(candidate, ".clone.lock"), os.O_RDWR)
        except OSError:
            continue  # not one of ours, or just being created
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a clone in progress
        finally:
            os.close(fd)
        shutil.rmtree(candidate, ignore_errors=True)


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
    assert remote is not None  # the caller checked wants_fetch()
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
