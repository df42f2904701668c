"""Kubeflow Model Registry's REST API (the part its Python client ``model-registry`` uses), under
``/api/model_registry/v1/`` and the older ``/api/model_registry/v1alpha3/``.

What is what:
- RegisteredModel = a catalog model (``models/<name>/...``); its description, owner, state,
  externalId and custom properties are the model's metadata (``modelmeta/<name>``).
- ModelVersion = a named version ``models/<name>/<version>``; its description, author, state,
  externalId and custom properties are the version's metadata (notes: the version's id stays).
  A version created here, before any file, is a version of the empty tree.
- ModelArtifact = the version's files: one per version, with the version's id. A version with
  files has ``uri`` ``casreg://<model>/<version>`` (names URL-quoted) and the custom properties
  ``casreg_uri`` and ``casreg_download_url`` (this server's file listing); an artifact registered
  by a client (an external ``uri``: s3://, oci://...) is kept in the version's metadata key
  ``model_artifact`` and its ``uri`` wins.
- ids: the numbers of ``catalog.ids`` (a counter kept in the store: stable across restarts,
  never reused). Times: epoch milliseconds as strings (commit and metadata-change times).
- customProperties: ``MetadataStringValue``/``IntValue``/``DoubleValue``/``BoolValue`` are the
  JSON string, integer, number and boolean of casreg metadata; any other value (null, a list, an
  object, an integer past the API's 9 digits) is a ``MetadataStructValue`` (base64 of its JSON).
  A PATCH with customProperties replaces the scalar ones; a struct-valued key it does not name
  stays, and so does one it sends back as the string of its own base64 (the official client
  reads a struct value as that string, and returns it so on update).
- Lists: ``pageSize`` (default 100, at most 1000), ``orderBy`` ID / NAME / CREATE_TIME /
  LAST_UPDATE_TIME, ``sortOrder`` ASC / DESC, ``nextPageToken`` (an offset; "" on the last page).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Callable, Optional
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from .. import catalog, notes
from ..errors import InvalidInput, NotFound
from ..metadata import check_value
from ..registry import STATES, Registry
from .app import Store, store, writer

PREFIXES = ("/api/model_registry/v1", "/api/model_registry/v1alpha3")
MODEL_FIELDS = {"description": "description", "owner": "owner", "state": "state", "externalId": "external_id"}
VERSION_FIELDS = {"description": "description", "author": "author", "state": "state", "externalId": "external_id"}
ARTIFACT_KEY = "model_artifact"
ARTIFACT_FIELDS = ("name", "uri", "description", "externalId", "state", "modelFormatName", "modelFormatVersion",
                   "storageKey", "storagePath", "serviceAccountName", "modelSourceKind", "modelSourceClass",
                   "modelSourceGroup", "modelSourceId", "modelSourceName")
ARTIFACT_STATES = ("UNKNOWN", "PENDING", "LIVE", "MARKED_FOR_DELETION", "DELETED", "ABANDONED", "REFERENCE")
SYNTHETIC = ("casreg_uri", "casreg_download_url")  # computed, never stored
MAX_PAGE = 1000
INT_DIGITS = 9  # the API's MetadataIntValue: ^-?([1-9][0-9]{0,8}|0)$


# -- typed custom properties <-> casreg metadata ---------------------------------------------------
def to_property(value: Any) -> dict:
    if isinstance(value, bool):
        return {"metadataType": "MetadataBoolValue", "bool_value": value}
    if isinstance(value, int) and len(str(abs(value))) <= INT_DIGITS:
        return {"metadataType": "MetadataIntValue", "int_value": str(value)}
    if isinstance(value, float):
        return {"metadataType": "MetadataDoubleValue", "double_value": value}
    if isinstance(value, str):
        return {"metadataType": "MetadataStringValue", "string_value": value}
    return {"metadataType": "MetadataStructValue",
            "struct_value": base64.b64encode(json.dumps(value, sort_keys=True).encode()).decode()}


def from_property(key: str, prop: Any) -> Any:
    if not isinstance(prop, dict):
        raise InvalidInput(f"customProperties.{key}: a typed value ({{\"metadataType\": ...}})")
    kind = prop.get("metadataType")
    try:
        if kind == "MetadataStringValue" and isinstance(prop.get("string_value"), str):
            return prop["string_value"]
        if kind == "MetadataBoolValue" and isinstance(prop.get("bool_value"), bool):
            return prop["bool_value"]
        if kind == "MetadataIntValue" and isinstance(prop.get("int_value"), (str, int)) \
                and not isinstance(prop.get("int_value"), bool):
            return int(prop["int_value"])
        if kind == "MetadataDoubleValue" and isinstance(prop.get("double_value"), (int, float)) \
                and not isinstance(prop.get("double_value"), bool):
            return check_value(float(prop["double_value"]), key)
        if kind == "MetadataStructValue" and isinstance(prop.get("struct_value"), str):
            return check_value(json.loads(base64.b64decode(prop["struct_value"], validate=True)), key)
    except (ValueError, binascii.Error):
        pass
    raise InvalidInput(f"customProperties.{key}: not a valid {kind or 'typed value'} "
                       "(MetadataStringValue, IntValue, DoubleValue, BoolValue or StructValue)")


def properties_of(meta: dict, reserved) -> dict:
    return {k: to_property(v) for k, v in sorted(meta.items()) if k not in reserved}


def meta_from_properties(props: dict | None, reserved) -> dict:
    out = {}
    for key, prop in (props or {}).items():
        if key in reserved:
            raise InvalidInput(f"customProperties.{key}: {key} is a field of its own here")
        if key not in SYNTHETIC:
            out[key] = from_property(key, prop)
    return out


def replaced(current: dict, props: dict | None, reserved) -> tuple[dict, list[str]]:
    """(updates, removals) for a PATCH whose customProperties replace the scalar ones."""
    updates = meta_from_properties(props, reserved)
    for key, value in list(updates.items()):
        if key in current and to_property(current[key]).get("struct_value") == value:
            del updates[key]  # the official client echoes a struct value back as its base64 string
    scalar = (str, int, float, bool)
    gone = [k for k, v in current.items() if k not in reserved and k not in updates and isinstance(v, scalar)]
    return updates, gone


def fields_from(body: dict, mapping: dict) -> dict:
    out = {}
    for api_name, key in mapping.items():
        value = body.get(api_name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{api_name}: a string")
        if key == "state" and value not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}")
        out[key] = value
    return out


def ms(seconds: float) -> str:
    return str(int(seconds * 1000))


# -- bodies (what the client sends; unknown fields are ignored, as the server's OpenAPI allows) ----
class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    customProperties: Optional[dict[str, Any]] = None
    description: Optional[str] = None
    externalId: Optional[str] = None
    state: Optional[str] = None

    def fields(self) -> dict:
        return self.model_dump(exclude_none=True)


class RegisteredModelBody(_Body):
    name: Optional[str] = None
    owner: Optional[str] = None


class ModelVersionBody(_Body):
    name: Optional[str] = None
    author: Optional[str] = None
    registeredModelId: Optional[str] = None


class ModelArtifactBody(_Body):
    artifactType: Optional[str] = Field(default="model-artifact")
    name: Optional[str] = None
    uri: Optional[str] = None
    modelFormatName: Optional[str] = None
    modelFormatVersion: Optional[str] = None
    storageKey: Optional[str] = None
    storagePath: Optional[str] = None
    serviceAccountName: Optional[str] = None


# -- the catalog as the API's resources ------------------------------------------------------------
class View:
    """One request's look at the store: the id table, and the resources built from the catalog."""

    def __init__(self, repo: Registry, base_url: str):
        self.repo, self.base_url = repo, base_url
        self.ids = catalog.ids(repo)
        self.by_id = {str(n): key for key, n in self.ids.items()}

    # ids
    def model_name(self, rid: str) -> str:
        key = self.by_id.get(rid, "")
        if not key.startswith("modelmeta/") or not catalog.model_exists(self.repo, key[len("modelmeta/"):]):
            raise NotFound(f"no registered model with id {rid}")
        return key[len("modelmeta/"):]

    def version_ref(self, vid: str) -> str:
        key = self.by_id.get(vid, "")
        if not key.startswith(catalog.MODELS) or not dict(self.repo.list_refs(key)).get(key):
            raise NotFound(f"no model version with id {vid}")
        return key

    def model_id(self, model: str) -> str:
        return str(self.ids[f"modelmeta/{model}"])

    # registered models
    def model(self, name: str) -> dict:
        meta = self.repo.model_meta(name)
        times = [row["time"] for row in catalog.versions(self.repo, name, registered_ok=True)]
        if dict(self.repo.list_refs(catalog.model_meta_ref(name))):
            chain = self.repo.log(catalog.model_meta_ref(name))
            times += [chain[-1].commit.time, chain[0].commit.time]
        out = {"id": self.model_id(name), "name": name, "state": meta.get("state", "LIVE"),
               "createTimeSinceEpoch": ms(min(times)), "lastUpdateTimeSinceEpoch": ms(max(times)),
               "customProperties": properties_of(meta, MODEL_FIELDS.values())}
        for api_name, key in MODEL_FIELDS.items():
            if key != "state" and isinstance(meta.get(key), str):
                out[api_name] = meta[key]
        return out

    def models(self) -> list[dict]:
        return [self.model(row["model"]) for row in catalog.models(self.repo)]

    # model versions
    def version(self, ref: str) -> dict:
        model, name = catalog.split_version_ref(ref)  # type: ignore[misc]
        vid = self.repo.resolve(ref)
        commit = self.repo.read_commit(vid)
        meta = notes.read(self.repo, vid)
        changes = notes.history(self.repo, vid)
        out = {"id": str(self.ids[ref]), "name": name, "registeredModelId": self.model_id(model),
               "state": meta.get("state", "LIVE"), "author": meta.get("author") or commit.author,
               "createTimeSinceEpoch": ms(commit.time),
               "lastUpdateTimeSinceEpoch": ms(changes[0].time if changes else commit.time),
               "customProperties": properties_of(meta, [*VERSION_FIELDS.values(), ARTIFACT_KEY])}
        for api_name, key in VERSION_FIELDS.items():
            if key not in ("state", "author") and isinstance(meta.get(key), str):
                out[api_name] = meta[key]
        if "description" not in out and commit.message:
            out["description"] = commit.message
        return out

    def version_refs(self, model: str | None = None) -> list[str]:
        models = [model] if model is not None else [row["model"] for row in catalog.models(self.repo)]
        return [catalog.version_ref(m, row["version"]) for m in models
                for row in catalog.versions(self.repo, m, registered_ok=True)]

    # model artifacts
    def artifact(self, ref: str, *, missing_ok: bool = False) -> dict | None:
        model, version = catalog.split_version_ref(ref)  # type: ignore[misc]
        vid = self.repo.resolve(ref)
        meta = notes.read(self.repo, vid)
        registered = meta.get(ARTIFACT_KEY) if isinstance(meta.get(ARTIFACT_KEY), dict) else None
        has_files = not catalog.is_empty(self.repo, vid)
        if registered is None and not has_files:
            if missing_ok:
                return None
            raise NotFound(f"model version {self.ids[ref]} has no artifact (no files, none registered)")
        registered = dict(registered or {})
        version_view = self.version(ref)
        out: dict[str, Any] = {"id": version_view["id"], "artifactType": "model-artifact", "name": model,
                               "state": "LIVE" if has_files else "UNKNOWN",
                               "createTimeSinceEpoch": version_view["createTimeSinceEpoch"],
                               "lastUpdateTimeSinceEpoch": version_view["lastUpdateTimeSinceEpoch"]}
        out.update({k: v for k, v in registered.items() if k in ARTIFACT_FIELDS and isinstance(v, str)})
        props = registered.get("customProperties")
        out["customProperties"] = properties_of(props if isinstance(props, dict) else {}, ())
        if has_files:
            uri = f"casreg://{quote(model, safe='/')}/{quote(version, safe='')}"
            out.setdefault("uri", uri)
            out["customProperties"]["casreg_uri"] = to_property(uri)
            out["customProperties"]["casreg_download_url"] = to_property(
                f"{self.base_url}api/casreg/v1/versions/{version_view['id']}/files")
        return out


# -- paging ----------------------------------------------------------------------------------------
ORDER_KEYS: dict[str, Callable[[dict], Any]] = {
              "ID": lambda r: int(r["id"]), "NAME": lambda r: (r.get("name") or "", int(r["id"])),
              "CREATE_TIME": lambda r: (int(r["createTimeSinceEpoch"]), int(r["id"])),
              "LAST_UPDATE_TIME": lambda r: (int(r["lastUpdateTimeSinceEpoch"]), int(r["id"]))}


class Paging:
    def __init__(self, pageSize: Optional[str] = None, orderBy: Optional[str] = None,
                 sortOrder: Optional[str] = None, nextPageToken: Optional[str] = None,
                 filterQuery: Optional[str] = None):
        try:
            self.size = min(int(pageSize), MAX_PAGE) if pageSize else 100
            self.offset = int(base64.urlsafe_b64decode(nextPageToken.encode()).decode()) if nextPageToken else 0
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidInput("pageSize is a number; nextPageToken one this server gave") from None
        if self.size < 1 or self.offset < 0:
            raise InvalidInput("pageSize must be at least 1")
        self.order = (orderBy or "ID").upper()
        if self.order not in ORDER_KEYS:
            raise InvalidInput(f"orderBy must be one of {', '.join(ORDER_KEYS)}")
        self.descending = (sortOrder or "ASC").upper() == "DESC"
        if (sortOrder or "ASC").upper() not in ("ASC", "DESC"):
            raise InvalidInput("sortOrder must be ASC or DESC")
        if filterQuery:
            raise InvalidInput("filterQuery is not supported by casreg serve yet")

    def page(self, items: list[dict]) -> dict:
        items = sorted(items, key=ORDER_KEYS[self.order], reverse=self.descending)
        chunk = items[self.offset:self.offset + self.size]
        end = self.offset + len(chunk)
        token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
        return {"items": chunk, "nextPageToken": token, "pageSize": self.size, "size": len(chunk)}


# -- routes ----------------------------------------------------------------------------------------
def _read(request: Request, s: Store, body):
    base = str(request.base_url)
    return s.run(lambda repo: body(View(repo, base)))


def _create_version(view: View, model: str, body: ModelVersionBody) -> dict:
    if not body.name:
        raise InvalidInput("name: the version's name is required")
    fields = body.fields()
    meta = {**meta_from_properties(body.customProperties, [*VERSION_FIELDS.values(), ARTIFACT_KEY]),
            **{k: v for k, v in fields_from(fields, VERSION_FIELDS).items() if k != "author"}}
    catalog.create_version(view.repo, model, body.name, meta, author=body.author or None,
                           message=body.description or "")
    return View(view.repo, view.base_url).version(catalog.version_ref(model, body.name))


def _update_version(view: View, ref: str, body: dict) -> None:
    current = view.repo.metadata(ref)
    updates = fields_from(body, VERSION_FIELDS)
    remove: list[str] = []
    if body.get("customProperties") is not None:
        props, remove = replaced(current, body["customProperties"], [*VERSION_FIELDS.values(), ARTIFACT_KEY])
        updates.update(props)
    if updates or remove:
        view.repo.set_meta(ref, updates, remove=remove, message="kubeflow: update model version")


def _upsert_artifact(view: View, ref: str, body: dict, *, create: bool) -> bool:
    """Record the artifact's fields in the version's metadata; True if it had none before."""
    if body.get("artifactType", "model-artifact") != "model-artifact":
        raise InvalidInput(f"artifactType {body.get('artifactType')!r}: casreg keeps model artifacts only")
    current = view.repo.metadata(ref).get(ARTIFACT_KEY)
    current = dict(current) if isinstance(current, dict) else {}
    new = not current
    if not create and new and view.artifact(ref, missing_ok=True) is None:
        raise NotFound(f"model artifact {view.ids[ref]} does not exist")
    for key in ARTIFACT_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{key}: a string")
        if key == "state" and value not in ARTIFACT_STATES:
            raise InvalidInput(f"state must be one of {', '.join(ARTIFACT_STATES)}")
        current[key] = value
    if body.get("customProperties") is not None:
        current["customProperties"] = meta_from_properties(body["customProperties"], ())
    view.repo.set_meta(ref, {ARTIFACT_KEY: current}, message="kubeflow: model artifact")
    return new


def router() -> APIRouter:
    r = APIRouter(tags=["Kubeflow Model Registry"])

    # registered models ------------------------------------------------------------------------
    @r.get("/registered_models", summary="List registered models")
    def list_models(request: Request, paging: Paging = Depends(), s: Store = Depends(store)) -> dict:
        return _read(request, s, lambda v: paging.page(v.models()))

    @r.post("/registered_models", status_code=201, summary="Create a registered model")
    def create_model(request: Request, body: RegisteredModelBody, s: Store = Depends(writer)) -> dict:
        def run(view: View) -> dict:
            if not body.name:
                raise InvalidInput("name: the model's name is required")
            meta = {**meta_from_properties(body.customProperties, MODEL_FIELDS.values()),
                    **fields_from(body.fields(), MODEL_FIELDS)}
            catalog.create_model(view.repo, catalog.check_model(body.name), meta)
            return View(view.repo, view.base_url).model(body.name)
        return _read(request, s, run)

    @r.get("/registered_models/{rid}", summary="Get a registered model")
    def get_model(request: Request, rid: str, s: Store = Depends(store)) -> dict:
        return _read(request, s, lambda v: v.model(v.model_name(rid)))

    @r.patch("/registered_models/{rid}", summary="Update a registered model")
    def update_model(request: Request, rid: str, body: RegisteredModelBody, s: Store = Depends(writer)) -> dict:
        def run(view: View) -> dict:
            name = view.model_name(rid)
            fields = body.fields()
            updates = fields_from(fields, MODEL_FIELDS)
            remove: list[str] = []
            if body.customProperties is not None:
                props, remove = replaced(view.repo.model_meta(name), body.customProperties, MODEL_FIELDS.values())
                updates.update(props)
            if updates or remove:
                view.repo.set_model_meta(name, updates, remove=remove)
            return View(view.repo, view.base_url).model(name)
        return _read(request, s, run)

    @r.get("/registered_model", summary="Find a registered model by name or externalId")
    def find_model(request: Request, name: Optional[str] = None, externalId: Optional[str] = None,
                   s: Store = Depends(store)) -> dict:
        def run(view: View) -> dict:
            if name is None and externalId is None:
                raise InvalidInput("give name or externalId")
            for row in catalog.models(view.repo):
                if name is not None and row["model"] != name:
                    continue
                found = view.model(row["model"])
                if externalId is None or found.get("externalId") == externalId:
                    return found
            raise NotFound(f"no registered model {name or externalId}")
        return _read(request, s, run)

    @r.get("/registered_models/{rid}/versions", summary="List a registered model's versions")
    def list_model_versions(request: Request, rid: str, paging: Paging = Depends(), s: Store = Depends(store)) -> dict:
        return _read(request, s, lambda v: paging.page([v.version(ref) for ref in v.version_refs(v.model_name(rid))]))

    @r.post("/registered_models/{rid}/versions", status_code=201, summary="Create a version of a registered model")
    def create_model_version(request: Request, rid: str, body: ModelVersionBody, s: Store = Depends(writer)) -> dict:
        return _read(request, s, lambda v: _create_version(v, v.model_name(rid), body))

    # model versions ---------------------------------------------------------------------------
    @r.get("/model_versions", summary="List model versions")
    def list_versions(request: Request, paging: Paging = Depends(), s: Store = Depends(store)) -> dict:
        return _read(request, s, lambda v: paging.page([v.version(ref) for ref in v.version_refs()]))

    @r.post("/model_versions", status_code=201, summary="Create a model version")
    def create_version(request: Request, body: ModelVersionBody, s: Store = Depends(writer)) -> dict:
        def run(view: View) -> dict:
            if not body.registeredModelId:
                raise InvalidInput("registeredModelId is required")
            return _create_version(view, view.model_name(body.registeredModelId), body)
        return _read(request, s, run)

    @r.get("/model_versions/{vid}", summary="Get a model version")
    def get_version(request: Request, vid: str, s: Store = Depends(store)) -> dict:
        return _read(request, s, lambda v: v.version(v.version_ref(vid)))

    @r.patch("/model_versions/{vid}", summary="Update a model version")
    def update_version(request: Request, vid: str, body: ModelVersionBody, s: Store = Depends(writer)) -> dict:
        def run(view: View) -> dict:
            ref = view.version_ref(vid)
            _update_version(view, ref, body.fields())
            return view.version(ref)
        return _read(request, s, run)

    @r.get("/model_version", summary="Find a model version by name and parentResourceId, or externalId")
    def find_version(request: Request, name: Optional[str] = None, parentResourceId: Optional[str] = None,
                     externalId: Optional[str] = None, s: Store = Depends(store)) -> dict:
        def run(view: View) -> dict:
            if externalId is None and (name is None or parentResourceId is None):
                raise InvalidInput("give name and parentResourceId, or externalId")
            refs = view.version_refs(view.model_name(parentResourceId) if parentResourceId else None)
            for ref in refs:
                found = view.version(ref)
                if (name is None or found["name"] == name) and (externalId is None or found.get("externalId") == externalId):
                    return found
            raise NotFound(f"no model version {name or externalId}")
        return _read(request, s, run)

    @r.get("/model_versions/{vid}/artifacts", summary="List a model version's artifacts")
    def list_version_artifacts(request: Request, vid: str, paging: Paging = Depends(), s: Store = Depends(store)) -> dict:
        def run(view: View) -> dict:
            found = view.artifact(view.version_ref(vid), missing_ok=True)
            return paging.page([found] if found else [])
        return _read(request, s, run)

    @r.post("/model_versions/{vid}/artifacts", status_code=201, summary="Create or update a model version's artifact")
    def upsert_version_artifact(request: Request, response: Response, vid: str, body: ModelArtifactBody,
                                s: Store = Depends(writer)) -> dict:
        def run(view: View) -> dict:
            ref = view.version_ref(vid)
            if not _upsert_artifact(view, ref, body.fields(), create=True):
                response.status_code = 200
            return view.artifact(ref)  # type: ignore[return-value]
        return _read(request, s, run)

    # model artifacts --------------------------------------------------------------------------
    @r.get("/model_artifacts", summary="List model artifacts")
    def list_artifacts(request: Request, paging: Paging = Depends(), s: Store = Depends(store)) -> dict:
        def run(view: View) -> dict:
            found = [view.artifact(ref, missing_ok=True) for ref in view.version_refs()]
            return paging.page([a for a in found if a])
        return _read(request, s, run)

    @r.post("/model_artifacts", status_code=201, summary="Create a model artifact (refused: use a version's)")
    def create_artifact(body: ModelArtifactBody, s: Store = Depends(writer)) -> dict:
        raise InvalidInput("an artifact belongs to a model version here: POST model_versions/{id}/artifacts")

    @r.get("/model_artifacts/{aid}", summary="Get a model artifact")
    def get_artifact(request: Request, aid: str, s: Store = Depends(store)) -> dict:
        return _read(request, s, lambda v: v.artifact(_artifact_ref(v, aid)))

    @r.patch("/model_artifacts/{aid}", summary="Update a model artifact")
    def update_artifact(request: Request, aid: str, body: ModelArtifactBody, s: Store = Depends(writer)) -> dict:
        def run(view: View) -> dict:
            ref = _artifact_ref(view, aid)
            _upsert_artifact(view, ref, body.fields(), create=False)
            return view.artifact(ref)  # type: ignore[return-value]
        return _read(request, s, run)

    @r.get("/model_artifact", summary="Find a model artifact by name and parentResourceId, or externalId")
    def find_artifact(request: Request, name: Optional[str] = None, parentResourceId: Optional[str] = None,
                      externalId: Optional[str] = None, s: Store = Depends(store)) -> dict:
        def run(view: View) -> dict:
            if externalId is None and name is None and parentResourceId is None:
                raise InvalidInput("give name and parentResourceId, or externalId")
            refs = [view.version_ref(parentResourceId)] if parentResourceId else view.version_refs()
            for ref in refs:
                found = view.artifact(ref, missing_ok=True)
                if found and (name is None or found["name"] == name) \
                        and (externalId is None or found.get("externalId") == externalId):
                    return found
            raise NotFound(f"no model artifact {name or externalId}")
        return _read(request, s, run)

    return r


def _artifact_ref(view: View, aid: str) -> str:
    try:
        return view.version_ref(aid)
    except NotFound:
        raise NotFound(f"no model artifact with id {aid}") from None


def install(app: FastAPI) -> None:
    routes = router()
    for prefix in PREFIXES:
        app.include_router(routes, prefix=prefix, generate_unique_id_function=_operation_id(prefix))


def _operation_id(prefix: str) -> Callable[[APIRoute], str]:
    """OpenAPI operation ids unique across both prefixes (v1_get_model, v1alpha3_get_model)."""
    return lambda route: f"{prefix.rsplit('/', 1)[1]}_{route.name}"
