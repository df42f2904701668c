"""The catalog as pages: models and a model's versions, newest first, with the columns a
browser shows (size, stored bytes, dedup, state, aliases, tags, metadata), by catalog id.

Paging is done here, not by the caller: a model of 10,000 versions costs one pass over its refs
and commits (to order them by time) and, for the page only, the notes, tags, aliases and
``footprint`` of each version against the version before it. Ids are ``catalog.ids``: numbers
that name a model or a version in a URL whatever characters its name holds (``#``, ``/``).
"""

from __future__ import annotations

import threading

from . import catalog, notes
from .errors import InvalidInput, NotFound
from .footprint import footprint

MAX_LIMIT = 500
FACTS_KEPT = 200_000  # (time, size) of this many commits kept in memory: ~40 MB at most

_facts: dict[tuple[str, bytes], tuple[int, int]] = {}
_facts_lock = threading.Lock()


def _commit_facts(repo, txn, cid: bytes) -> tuple[int, int]:
    """(time, logical size) of a commit: a commit never changes, so each is read once."""
    key = (repo.path, cid)
    found = _facts.get(key)
    if found is None:
        summary = repo.objects.summary(txn, cid)
        found = (summary.time, summary.logical_bytes)
        with _facts_lock:
            if len(_facts) >= FACTS_KEPT:
                _facts.clear()
            _facts[key] = found
    return found


def _check_page(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"offset must be 0 or more and limit 1 to {MAX_LIMIT}")


def _key_of(repo, number: int | str) -> str:
    wanted = str(number)
    return next((key for key, n in catalog.ids(repo).items() if str(n) == wanted), "")


def model_of_id(repo, number: int | str) -> str:
    """The model a catalog id names (NotFound if none)."""
    key = _key_of(repo, number)
    model = key[len("modelmeta/"):] if key.startswith("modelmeta/") else ""
    if not model or not catalog.model_exists(repo, model):
        raise NotFound(f"no model with id {number}")
    return model


def version_of_id(repo, number: int | str) -> str:
    """The version ref (``models/<model>/<version>``) a catalog id names (NotFound if none)."""
    key = _key_of(repo, number)
    if not catalog.split_version_ref(key) or not dict(repo.list_refs(key)).get(key):
        raise NotFound(f"no model version with id {number}")
    return key


def model_id(repo, model: str) -> int:
    key = f"modelmeta/{catalog.check_model(model)}"
    ids = catalog.ids(repo)
    if key not in ids or not catalog.model_exists(repo, model):
        raise NotFound(f"no model named {model}")
    return ids[key]


def _model_rows(repo, prefix: str = catalog.MODELS) -> dict[str, dict]:
    """What ``catalog.models`` says of each model under ``prefix``, from the commit facts kept."""
    out: dict[str, dict] = {}
    with repo.db.read() as txn:
        for ref, cid in repo.refs.items(txn, prefix):
            parts = catalog.split_version_ref(ref)
            if parts is None:
                continue
            model, version = parts
            row = out.setdefault(model, {"model": model, "versions": 0, "latest": None, "logical_bytes": 0})
            row["versions"] += 1
            row["logical_bytes"] += _commit_facts(repo, txn, cid)[1]
            if row["latest"] is None or version > row["latest"]:
                row["latest"] = version
        if prefix == catalog.MODELS:  # models registered before any version
            metas = [ref for ref, _ in repo.refs.items(txn, "modelmeta/")]
        else:
            one = f"modelmeta/{prefix[len(catalog.MODELS):-1]}"
            metas = [one] if repo.refs.get(txn, one) is not None else []
        for ref in metas:
            model = ref[len("modelmeta/"):]
            out.setdefault(model, {"model": model, "versions": 0, "latest": None, "logical_bytes": 0})
    return out


def _with_meta(repo, row: dict) -> dict:
    meta = repo.model_meta(row["model"])
    return dict(row, state=meta.get("state", "LIVE"), description=meta.get("description", ""))


def model_page(repo, *, offset: int = 0, limit: int = 50, query: str = "") -> dict:
    """Models by name (those whose name holds ``query``), ``limit`` from ``offset``."""
    _check_page(offset, limit)
    rows = _model_rows(repo)
    names = [name for name in sorted(rows) if query.lower() in name.lower()]
    ids = catalog.ids(repo)
    items = [dict(_with_meta(repo, rows[name]), id=ids[f"modelmeta/{name}"]) for name in names[offset:offset + limit]]
    return {"total": len(names), "offset": offset, "limit": limit, "items": items}


def model_detail(repo, model: str) -> dict:
    row = _model_rows(repo, f"{catalog.MODELS}{catalog.check_model(model)}/").get(model)
    if row is None:
        raise NotFound(f"no model named {model}")
    return dict(_with_meta(repo, row), id=model_id(repo, model), metadata=repo.model_meta(model),
                aliases=repo.aliases(model))


def _ordered(repo, model: str) -> list[tuple[int, str, str, bytes]]:
    """(time, version, ref, commit id) of each named version of ``model``, newest first."""
    prefix = f"{catalog.MODELS}{catalog.check_model(model)}/"
    out = []
    with repo.db.read() as txn:
        for ref, cid in repo.refs.items(txn, prefix):
            version = ref[len(prefix):]
            if "/" not in version:
                out.append((_commit_facts(repo, txn, cid)[0], version, ref, cid))
    if not out and not catalog.model_exists(repo, model):
        raise NotFound(f"no model named {model}")
    out.sort(key=lambda r: (r[0], r[1]), reverse=True)
    return out


def _row(repo, ids: dict, tags: dict, aliases: dict, entry, previous) -> dict:
    time, version, ref, cid = entry
    commit = repo.read_commit(cid)
    meta = notes.read(repo, cid)
    fp = footprint(repo, cid, previous[3] if previous else None)
    return {"id": ids[ref], "version": version, "ref": ref, "commit": cid.hex(), "time": time,
            "author": commit.author, "message": commit.message, "state": meta.get("state", "LIVE"),
            "size": fp.logical_bytes, **fp.to_json(), "previous": previous[1] if previous else None,
            "tags": sorted(tags.get(cid, [])), "aliases": sorted(aliases.get(cid, [])), "metadata": meta}


def _names(repo, model: str) -> tuple[dict, dict]:
    tags: dict[bytes, list[str]] = {}
    for ref, cid in repo.list_refs("tags/"):
        tags.setdefault(cid, []).append(ref[len("tags/"):])
    by_target: dict[bytes, list[str]] = {}
    prefix = f"aliases/{model}/"
    for ref, cid in repo.list_refs(prefix):
        by_target.setdefault(cid, []).append(ref[len(prefix):])
    return tags, by_target


def version_page(repo, model: str, *, offset: int = 0, limit: int = 50) -> dict:
    """``model``'s named versions, newest first, ``limit`` from ``offset``; each with its
    footprint against the version before it (by time) and what names it."""
    _check_page(offset, limit)
    ordered = _ordered(repo, model)
    ids = catalog.ids(repo)
    tags, aliases = _names(repo, model)
    items = [_row(repo, ids, tags, aliases, ordered[i], ordered[i + 1] if i + 1 < len(ordered) else None)
             for i in range(offset, min(offset + limit, len(ordered)))]
    return {"model": model, "model_id": ids.get(f"modelmeta/{model}"), "total": len(ordered), "offset": offset,
            "limit": limit, "items": items}


def version_detail(repo, ref: str) -> dict:
    """One version as a page row, plus its parents, file count and model."""
    parts = catalog.split_version_ref(ref)
    if parts is None:
        raise NotFound(f"not a model version: {ref}")
    model, version = parts
    ordered = _ordered(repo, model)
    at = next((i for i, e in enumerate(ordered) if e[2] == ref), None)
    if at is None:
        raise NotFound(f"no version {version} of model {model}")
    tags, aliases = _names(repo, model)
    ids = catalog.ids(repo)
    row = _row(repo, ids, tags, aliases, ordered[at], ordered[at + 1] if at + 1 < len(ordered) else None)
    with repo.db.read() as txn:
        summary = repo.objects.summary(txn, ordered[at][3])
    return dict(row, model=model, model_id=ids.get(f"modelmeta/{model}"), parents=[p.hex() for p in summary.parents],
                files=summary.files, meta_changes=len(notes.history(repo, ordered[at][3])))


def version_history(repo, ref: str) -> dict:
    """Where the version's name pointed over time (its reflog, newest first) and every change of
    its metadata."""
    try:
        moves = repo.reflog(ref)
    except NotFound:
        moves = []
    return {"ref": ref, "moves": moves,
            "metadata": [c.to_json() for c in notes.history(repo, repo.resolve(ref))]}
