"""The model catalog: models, their named versions and aliases, for any model name.

A model is a name; its versions are the refs ``models/<model>/<version>`` (FATE's party model ids
and model versions are one naming scheme among others: ``models/mlp/v2`` works the same), its
aliases ``aliases/<model>/<alias>`` and its own metadata the chain ``modelmeta/<model>``. Sizes come
from the version summaries written at commit (``objects/summary.py``; a version older than them:
its root tree's entries), so listing never walks a version's files.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import notes
from .errors import AlreadyExists, InvalidInput, NotFound, RefConflict
from .gcpause import paused_gc
from .objects.encoding import COMMIT, TREE, Tree
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
    return repo.objects.summary(txn, cid).logical_bytes


def models(repo) -> list[dict]:
    """Every model with its number of versions, latest version (by name) and logical size; a
    model registered without versions (``create_model``) has 0."""
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
        for ref, _ in repo.refs.items(txn, "modelmeta/"):  # registered, no version yet
            model = ref[len("modelmeta/"):]
            out.setdefault(model, {"model": model, "versions": 0, "latest": None, "logical_bytes": 0})
    return [out[k] for k in sorted(out)]


NO_TAGS: tuple[str, ...] = ()


@dataclass
class VersionTable:
    """The named versions of a model as columns, one list per field in version order: a listing
    of 10^5 versions is formatted a column at a time, without a dict per row (building and then
    reading 10^5 dicts was half of ``casreg versions``); ``rows()`` gives the dicts."""
    version: list[str]
    id: list[str]  # hex
    time: list[float]
    author: list[str]
    message: list[str]
    size: list[int]  # logical bytes
    tags: list[tuple[str, ...]]  # sorted tag names
    state: list[str]

    FIELDS = ("version", "id", "time", "author", "message", "size", "tags", "state")

    def __len__(self) -> int:
        return len(self.version)

    def rows(self) -> list[dict]:
        """One dict per version (its fields; ``tags`` a list)."""
        with paused_gc():
            return [{"version": v, "id": i, "time": t, "author": a, "message": m, "size": n, "tags": list(tags),
                     "state": state}
                    for v, i, t, a, m, n, tags, state in zip(self.version, self.id, self.time, self.author,
                                                             self.message, self.size, self.tags, self.state)]

    def select(self, keep: list[int]) -> VersionTable:
        """The versions at these positions, in that order."""
        return VersionTable(*([column[i] for i in keep] for column in (getattr(self, f) for f in self.FIELDS)))


def version_table(repo, model: str, *, registered_ok: bool = False) -> VersionTable:
    """The named versions of ``model``: name, id, time, author, message, size, tags and state. NotFound
    if it has none, unless ``registered_ok`` and the model is registered (``create_model``)."""
    prefix = f"{MODELS}{check_model(model)}/"
    tags: dict[bytes, list[str]] = {}
    named: list[tuple[bytes, str]] = []  # in version order (the refs' key order)
    annotated: dict[bytes, list[int]] = {}
    with paused_gc(), repo.db.read() as txn:
        for ref, cid in repo.refs.items(txn, "tags/"):
            tags.setdefault(cid, []).append(ref[len("tags/"):])
        for ref, cid in repo.refs.items(txn, prefix):
            version = ref[len(prefix):]
            if "/" not in version:  # else a version of a model whose name goes on (models/<model>/<more>/<v>)
                named.append((cid, version))
        # the versions annotated since: one pass over the notes refs, not a lookup per version
        noted = notes.annotated(repo, txn)
        n = len(named)
        times: list[float] = [0.0] * n
        authors, messages, states = [""] * n, [""] * n, [""] * n
        sizes = [0] * n
        tag_names: list[tuple[str, ...]] = [NO_TAGS] * n
        listed = repo.objects.listed
        # in id order: summaries are keyed by the id, so the lookups walk the B-tree's pages in
        # order instead of at random (few pages: unmapped every 4096); each value goes to its
        # version's place
        for at in repo.db.releasing(sorted(range(n), key=lambda i: named[i][0]), 4096):
            cid = named[at][0]
            times[at], authors[at], messages[at], sizes[at], states[at] = listed(txn, cid)
            if cid in tags:
                tag_names[at] = tuple(sorted(tags[cid]))
            if cid in noted:
                annotated.setdefault(cid, []).append(at)
        table = VersionTable([v for _, v in named], [cid.hex() for cid, _ in named], times, authors, messages,
                             sizes, tag_names, states)
    if not n and not (registered_ok and model_exists(repo, model)):
        raise NotFound(f"no versions of model {model}")
    for cid, places in annotated.items():
        state = notes.read(repo, cid).get("state", "LIVE")
        for at in places:
            states[at] = state
    return table


def versions(repo, model: str, *, registered_ok: bool = False) -> list[dict]:
    """``version_table(...).rows()``: the named versions of ``model``, a dict each."""
    return version_table(repo, model, registered_ok=registered_ok).rows()


def alias_ref(model: str, alias: str) -> str:
    return check_ref_name(f"aliases/{check_model(model)}/{alias}")


def aliases(repo, model: str) -> dict[str, str]:
    """alias -> the version it names (its name when it is one of the model's versions)."""
    prefix = f"aliases/{check_model(model)}/"
    by_id = {cid: ref.rsplit("/", 1)[1] for ref, cid in repo.list_refs(f"{MODELS}{model}/")}
    return {ref[len(prefix):]: by_id.get(cid, cid.hex()) for ref, cid in repo.list_refs(prefix)}


def model_meta_ref(model: str) -> str:
    return check_ref_name(f"modelmeta/{check_model(model)}")


def model_exists(repo, model: str) -> bool:
    """``model`` has a version or a metadata chain (a model registered before its first version)."""
    with repo.db.read() as txn:
        if repo.refs.get(txn, model_meta_ref(model)) is not None:
            return True
        return any((split_version_ref(ref) or ("",))[0] == model for ref, _ in repo.refs.items(txn, f"{MODELS}{model}/"))


def create_model(repo, model: str, meta: dict | None = None, *, author: str | None = None) -> bytes:
    """Register ``model`` before it has any version: its ``modelmeta/<model>`` chain starts here
    (AlreadyExists if the model has versions or metadata already)."""
    if model_exists(repo, model):
        raise AlreadyExists(f"model {model} already exists")
    staged: dict = {}
    empty = repo._stage(staged, TREE, Tree([]).encode())
    try:
        return repo.commit_tree(empty, model_meta_ref(model), staged=staged, meta=meta, expected=None,
                                author=author, message="model created")
    except RefConflict:
        raise AlreadyExists(f"model {model} already exists") from None


def create_version(repo, model: str, version: str, meta: dict | None = None, *, author: str | None = None,
                   message: str = "") -> bytes:
    """A new named version ``models/<model>/<version>`` of the empty tree: a version registered
    before its files (its artifact may name where they live, in its metadata). AlreadyExists if
    the name is taken."""
    if "/" in version:
        raise InvalidInput(f"invalid version name {version!r}: one name, no '/'")
    ref = version_ref(model, version)
    staged: dict = {}
    empty = repo._stage(staged, TREE, Tree([]).encode())
    try:
        return repo.commit_tree(empty, ref, staged=staged, meta=meta, expected=None, author=author,
                                message=message or "version registered")
    except RefConflict:
        raise AlreadyExists(f"version {version} of model {model} already exists") from None


def is_empty(repo, version: bytes) -> bool:
    """True when the version holds no file (registered before its files)."""
    with repo.db.read() as txn:
        return not repo.objects.load(txn, repo.objects.load(txn, version, COMMIT).tree, TREE).entries


# -- ids: small stable numbers for models and versions ------------------------------------------------
# Interfaces such as Kubeflow's Model Registry name things by numbers. Each model and each version
# gets the next number of a counter the first time anyone asks, kept in the chain ``catalog/ids``
# (empty-tree commits whose metadata maps ``modelmeta/<model>`` and ``models/<model>/<version>`` to
# their numbers, plus ``next``). So an id never changes and is never reused (a deleted version
# keeps its number: restored, it is the same), whatever is added or removed around it. The chain
# is this store's own (``push --all`` leaves it out): another store numbers its models itself.
IDS_REF = "catalog/ids"


def id_keys(repo) -> list[str]:
    """The keys ids are given to: ``modelmeta/<model>`` for every model, then every version ref."""
    with repo.db.read() as txn:
        versions = [ref for ref, _ in repo.refs.items(txn, MODELS) if split_version_ref(ref)]
        metas = [ref for ref, _ in repo.refs.items(txn, "modelmeta/")]
    models = {f"modelmeta/{split_version_ref(ref)[0]}" for ref in versions} | set(metas)  # type: ignore[index]
    return sorted(models) + sorted(versions)


def ids(repo) -> dict[str, int]:
    """key -> id of every model and version (see ``id_keys``), numbering the new ones. A store
    opened read-only numbers them in memory only (the same way each time while it is unchanged)."""
    for _ in range(8):
        with repo.db.read() as txn:
            current = repo.refs.get(txn, IDS_REF)
            table = dict(repo.objects.load(txn, current, COMMIT).meta) if current else {}
        following = int(table.pop("next", 1))
        new = [key for key in id_keys(repo) if key not in table]
        if not new:
            return table
        for key in new:
            table[key] = following
            following += 1
        if repo.db.readonly:
            return table
        staged: dict = {}
        empty = repo._stage(staged, TREE, Tree([]).encode())
        try:
            repo.commit_tree(empty, IDS_REF, staged=staged, parents=[current] if current else [],
                             meta={**table, "next": following}, expected=current,
                             message=f"ids: {len(new)} new")
        except RefConflict:
            continue
        return table
    raise RefConflict(f"{IDS_REF} kept changing; try again")
