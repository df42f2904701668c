"""The model catalog: models, their named versions and aliases, for any model name.

A model is a name; its versions are the refs ``models/<model>/<version>`` (FATE's party model ids
and model versions are one naming scheme among others: ``models/mlp/v2`` works the same), its
aliases ``aliases/<model>/<alias>`` and its own metadata the chain ``modelmeta/<model>``. Sizes come
from the root trees' entries, so listing never walks a version's files.
"""

from __future__ import annotations

from . import notes
from .errors import InvalidInput, NotFound
from .objects.encoding import COMMIT, LINK, TREE
from .refs import check_ref_name

MODELS = "models/"


def check_model(name: str) -> str:
    """``name`` if it can name a model (any legal ref path), else InvalidInput."""
    if not name or name.startswith("/") or name.endswith("/"):
        raise InvalidInput(f"invalid model name {name!r}")
    check_ref_name(f"{MODELS}{name}/x")
    return name


def version_ref(model: str, version: str) -> str:
    return check_ref_name(f"{MODELS}{check_model(model)}/{version}")


def split_version_ref(ref: str) -> tuple[str, str] | None:
    """(model, version) of a ``models/<model>/<version>`` ref, else None."""
    if not ref.startswith(MODELS):
        return None
    model, _, version = ref[len(MODELS):].rpartition("/")
    return (model, version) if model and version else None


def _size(repo, txn, cid: bytes) -> int:
    tree = repo.objects.load(txn, repo.objects.load(txn, cid, COMMIT).tree, TREE)
    return sum(e.size for e in tree.entries if e.kind != LINK)


def models(repo) -> list[dict]:
    """Every model with its number of versions, latest version (by name) and logical size."""
    out: dict[str, dict] = {}
    with repo.db.read() as txn:
        for ref, cid in repo.refs.items(txn, MODELS):
            parts = split_version_ref(ref)
            if parts is None:
                continue
            model, version = parts
            entry = out.setdefault(model, {"model": model, "versions": 0, "latest": None, "logical_bytes": 0})
            entry["versions"] += 1
            entry["logical_bytes"] += _size(repo, txn, cid)
            if entry["latest"] is None or version > entry["latest"]:
                entry["latest"] = version
    return [out[k] for k in sorted(out)]


def versions(repo, model: str) -> list[dict]:
    """The named versions of ``model``: id, time, author, message, size, state, tags."""
    prefix = f"{MODELS}{check_model(model)}/"
    tags: dict[bytes, list[str]] = {}
    rows = []
    with repo.db.read() as txn:
        for ref, cid in repo.refs.items(txn, "tags/"):
            tags.setdefault(cid, []).append(ref[len("tags/"):])
        for ref, cid in repo.refs.items(txn, prefix):
            version = ref[len(prefix):]
            if "/" in version:
                continue  # a version of a model whose name goes on (models/<model>/<more>/<version>)
            c = repo.objects.load(txn, cid, COMMIT)
            rows.append({"version": version, "id": cid.hex(), "time": c.time, "author": c.author,
                         "message": c.message, "size": _size(repo, txn, cid), "tags": sorted(tags.get(cid, []))})
    if not rows:
        raise NotFound(f"no versions of model {model}")
    for row in rows:
        row["state"] = notes.read(repo, bytes.fromhex(row["id"])).get("state", "LIVE")
    return sorted(rows, key=lambda r: r["version"])


def alias_ref(model: str, alias: str) -> str:
    return check_ref_name(f"aliases/{check_model(model)}/{alias}")


def aliases(repo, model: str) -> dict[str, str]:
    """alias -> the version it names (its name when it is one of the model's versions)."""
    prefix = f"aliases/{check_model(model)}/"
    by_id = {cid: ref.rsplit("/", 1)[1] for ref, cid in repo.list_refs(f"{MODELS}{model}/")}
    return {ref[len(prefix):]: by_id.get(cid, cid.hex()) for ref, cid in repo.list_refs(prefix)}


def model_meta_ref(model: str) -> str:
    return check_ref_name(f"modelmeta/{check_model(model)}")
