"""casreg's own REST API, ``/api/casreg/v1/``: models, versions (paged, newest first), diff,
stats, metadata, state, aliases and tags; a version's files are in files.py.

Every route is one call of a ``Registry`` method under the request lock (``Store.run``); models
and versions are named by catalog ids (numbers) or by query parameters (``/model?name=``,
``/version?model=&version=``), so names holding ``#`` or ``/`` travel untouched. Writes depend on
``writer`` (token, ``--read-only``). The response models below are what ``/openapi.json`` says.
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field

from ..registry import Registry
from .app import Store, store, writer
from .errors import ERRORS, WRITE_ERRORS

PREFIX = "/api/casreg/v1"
TAGS = ["casreg"]
Offset = Query(0, ge=0, le=1 << 40, description="rows to skip")
Limit = Query(50, ge=1, le=500, description="rows to return (at most 500)")


class ModelRow(BaseModel):
    id: int
    model: str
    versions: int
    latest: Optional[str]
    logical_bytes: int
    state: str
    description: str


class ModelPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ModelRow]


class ModelDetail(ModelRow):
    metadata: dict[str, Any]
    aliases: dict[str, str]


class VersionRow(BaseModel):
    id: int
    version: str
    ref: str
    commit: str
    time: int
    author: str
    message: str
    state: str
    size: int = Field(description="logical bytes: the sum of its files' sizes")
    logical_bytes: int
    unique_bytes: int = Field(description="raw bytes of its distinct chunks")
    stored_bytes: int = Field(description="what its distinct chunks take in the store")
    new_bytes: int = Field(description="raw bytes of the chunks the version before it lacks")
    new_stored_bytes: int = Field(description="what those new chunks take in the store")
    dedup_ratio: float
    total_ratio: float
    previous: Optional[str] = Field(description="the version before it (by time), the baseline of new_*")
    tags: list[str]
    aliases: list[str]
    metadata: dict[str, Any]


class VersionPage(BaseModel):
    model: str
    model_id: Optional[int]
    total: int
    offset: int
    limit: int
    items: list[VersionRow]


class VersionDetail(VersionRow):
    model: str
    model_id: Optional[int]
    parents: list[str]
    files: int
    meta_changes: int


class MetadataChange(BaseModel):
    id: str
    time: int
    author: str
    message: str
    meta: dict[str, Any]


class History(BaseModel):
    ref: str
    moves: list[dict[str, Any]]
    metadata: list[MetadataChange]


class FileChange(BaseModel):
    path: str
    change: str
    old_size: Optional[int]
    new_size: Optional[int]


class DiffOut(BaseModel):
    old: str
    new: str
    changes: list[FileChange]
    new_bytes: int
    counts: dict[str, int]


class Metadata(BaseModel):
    metadata: dict[str, Any]


class MetadataPatch(BaseModel):
    set: dict[str, Any] = Field(default_factory=dict, description="keys to set (JSON values)")
    remove: list[str] = Field(default_factory=list, description="keys to remove")


class State(BaseModel):
    state: str = Field(description="LIVE or ARCHIVED")


class Aliases(BaseModel):
    aliases: dict[str, str]


class AliasSet(BaseModel):
    version_id: Optional[int] = Field(None, description="the version's id")
    version: Optional[str] = Field(None, description="else one of the model's version names, or a version spec")
    expect_old: Optional[str] = Field(None, description="the version the alias must name now ('none': unset)")
    force: bool = Field(False, description="move it wherever it is (else an existing alias needs expect_old)")


class Tag(BaseModel):
    name: str
    target: str
    description: str


class TagSet(BaseModel):
    version_id: Optional[int] = Field(None, description="the version's id")
    target: Optional[str] = Field(None, description="else a version spec (name, id prefix)")
    description: str = ""
    force: bool = False


def _target(repo: Registry, version_id: Optional[int], spec: Optional[str]) -> str:
    from ..errors import InvalidInput
    if (version_id is None) == (spec is None):
        raise InvalidInput("give one of version_id and the version's name")
    return repo.version_of_id(version_id) if version_id is not None else str(spec)


def install(app: FastAPI) -> None:
    get: dict[str, Any] = {"tags": TAGS, "responses": ERRORS}
    put: dict[str, Any] = {"tags": TAGS, "responses": WRITE_ERRORS}

    @app.get(f"{PREFIX}/models", summary="Models, by name, a page at a time", **get)
    def models(offset: int = Offset, limit: int = Limit, q: str = Query("", max_length=1000, description="name holds this"),
               s: Store = Depends(store)) -> ModelPage:
        return ModelPage(**s.run(lambda r: r.model_page(offset=offset, limit=limit, query=q)))

    @app.get(f"{PREFIX}/model", summary="One model by name", **get)
    def model_by_name(name: str = Query(..., max_length=1000), s: Store = Depends(store)) -> ModelDetail:
        return ModelDetail(**s.run(lambda r: r.model_detail(name)))

    @app.get(f"{PREFIX}/models/{{mid}}", summary="One model", **get)
    def model(mid: int, s: Store = Depends(store)) -> ModelDetail:
        return ModelDetail(**s.run(lambda r: r.model_detail(r.model_of_id(mid))))

    @app.get(f"{PREFIX}/models/{{mid}}/versions", summary="A model's versions, newest first, a page at a time", **get)
    def versions(mid: int, offset: int = Offset, limit: int = Limit, s: Store = Depends(store)) -> VersionPage:
        return VersionPage(**s.run(lambda r: r.version_page(r.model_of_id(mid), offset=offset, limit=limit)))

    @app.get(f"{PREFIX}/version", summary="One version by model and version name", **get)
    def version_by_name(model: str = Query(..., max_length=1000), version: str = Query(..., max_length=1000),
                        s: Store = Depends(store)) -> VersionDetail:
        from .. import catalog
        return VersionDetail(**s.run(lambda r: r.version_detail(catalog.version_ref(model, version))))

    @app.get(f"{PREFIX}/versions/{{vid}}", summary="One version", **get)
    def version(vid: int, s: Store = Depends(store)) -> VersionDetail:
        return VersionDetail(**s.run(lambda r: r.version_detail(r.version_of_id(vid))))

    @app.get(f"{PREFIX}/versions/{{vid}}/history", summary="Where its name pointed, and its metadata's changes", **get)
    def history(vid: int, s: Store = Depends(store)) -> History:
        return History(**s.run(lambda r: r.version_history(r.version_of_id(vid))))

    @app.get(f"{PREFIX}/diff", summary="Files added, removed, changed from one version to another", **get)
    def diff(old: int = Query(...), new: int = Query(...), s: Store = Depends(store)) -> DiffOut:
        return DiffOut(**s.run(lambda r: r.diff(r.version_of_id(old), r.version_of_id(new)).to_json()))

    @app.get(f"{PREFIX}/stats", summary="The store's counts, sizes and ratios", **get)
    def stats(s: Store = Depends(store)) -> dict[str, Any]:
        return s.run(lambda r: r.stats())

    # -- metadata and state -------------------------------------------------------------------------
    @app.get(f"{PREFIX}/versions/{{vid}}/metadata", summary="A version's metadata", **get)
    def version_meta(vid: int, s: Store = Depends(store)) -> Metadata:
        return Metadata(metadata=s.run(lambda r: r.metadata(r.version_of_id(vid))))

    @app.patch(f"{PREFIX}/versions/{{vid}}/metadata", summary="Set and remove keys of a version's metadata", **put)
    def patch_version_meta(vid: int, body: MetadataPatch, s: Store = Depends(writer)) -> Metadata:
        def run(r: Registry) -> Metadata:
            ref = r.version_of_id(vid)
            r.set_meta(ref, body.set, remove=body.remove)
            return Metadata(metadata=r.metadata(ref))
        return s.run(run)

    @app.get(f"{PREFIX}/models/{{mid}}/metadata", summary="A model's own metadata", **get)
    def model_meta(mid: int, s: Store = Depends(store)) -> Metadata:
        return Metadata(metadata=s.run(lambda r: r.model_meta(r.model_of_id(mid))))

    @app.patch(f"{PREFIX}/models/{{mid}}/metadata", summary="Set and remove keys of a model's metadata", **put)
    def patch_model_meta(mid: int, body: MetadataPatch, s: Store = Depends(writer)) -> Metadata:
        def run(r: Registry) -> Metadata:
            model = r.model_of_id(mid)
            r.set_model_meta(model, body.set, remove=body.remove)
            return Metadata(metadata=r.model_meta(model))
        return s.run(run)

    @app.put(f"{PREFIX}/versions/{{vid}}/state", summary="LIVE or ARCHIVED", **put)
    def version_state(vid: int, body: State, s: Store = Depends(writer)) -> State:
        def run(r: Registry) -> State:
            ref = r.version_of_id(vid)
            r.set_state(ref, body.state)
            return State(state=r.metadata(ref)["state"])
        return s.run(run)

    @app.put(f"{PREFIX}/models/{{mid}}/state", summary="A model's state: LIVE or ARCHIVED", **put)
    def model_state(mid: int, body: State, s: Store = Depends(writer)) -> State:
        def run(r: Registry) -> State:
            model = r.model_of_id(mid)
            r.set_state(model, body.state, model=True)
            return State(state=r.model_meta(model)["state"])
        return s.run(run)

    # -- aliases and tags ---------------------------------------------------------------------------
    @app.get(f"{PREFIX}/models/{{mid}}/aliases", summary="A model's aliases: name -> version", **get)
    def aliases(mid: int, s: Store = Depends(store)) -> Aliases:
        return Aliases(aliases=s.run(lambda r: r.aliases(r.model_of_id(mid))))

    @app.put(f"{PREFIX}/models/{{mid}}/aliases/{{alias}}", summary="Point an alias at a version", **put)
    def set_alias(mid: int, alias: str, body: AliasSet, s: Store = Depends(writer)) -> Aliases:
        def run(r: Registry) -> Aliases:
            model = r.model_of_id(mid)
            r.set_alias(model, alias, _target(r, body.version_id, body.version), expect_old=body.expect_old,
                        force=body.force)
            return Aliases(aliases=r.aliases(model))
        return s.run(run)

    @app.delete(f"{PREFIX}/models/{{mid}}/aliases/{{alias}}", summary="Remove an alias", **put)
    def delete_alias(mid: int, alias: str, s: Store = Depends(writer)) -> Aliases:
        def run(r: Registry) -> Aliases:
            model = r.model_of_id(mid)
            r.delete_alias(model, alias)
            return Aliases(aliases=r.aliases(model))
        return s.run(run)

    @app.get(f"{PREFIX}/tags", summary="Every tag", **get)
    def tags(s: Store = Depends(store)) -> list[Tag]:
        return [Tag(**row) for row in s.run(lambda r: r.tags())]

    @app.put(f"{PREFIX}/tags/{{name:path}}", summary="Tag a version", **put)
    def set_tag(name: str, body: TagSet, s: Store = Depends(writer)) -> Tag:
        def run(r: Registry) -> Tag:
            r.tag(name, _target(r, body.version_id, body.target), description=body.description, force=body.force)
            return next(Tag(**row) for row in r.tags() if row["name"] == name)
        return s.run(run)

    @app.delete(f"{PREFIX}/tags/{{name:path}}", summary="Remove a tag", **put)
    def delete_tag(name: str, s: Store = Depends(writer)) -> list[Tag]:
        def run(r: Registry) -> list[Tag]:
            r.delete_tag(name)
            return [Tag(**row) for row in r.tags()]
        return s.run(run)
