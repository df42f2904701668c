"""FATE-Serving service ids: which model version each one serves, and telling a serving-server so.

A binding is the ref ``serving/<service_id>`` naming a FATE pipeline version (the commit that
``models/<party_model_id>/<model_version>`` names), moved by compare-and-swap like an alias, every
move in its reflog (``casreg reflog serving/<service_id>``), pushed by ``push --all`` and fetched
like any ref. One ref per service id, so one service id serves one version at a time.

``publish`` does what FATE-Flow 1.11's ``flow model load`` and ``flow model bind`` do
(``fate_flow/pipelined_model/publish_model.py``): ``publishLoad`` with every party's
role -> party id -> ``namespace`` (party model id) / ``tableName`` (model version), this party as
``local``, ``loadType`` FATEFLOW and ``filePath`` the transfer URL FATE-Serving POSTs to (a
``casreg serve``; empty: its own ``model.transfer.url``), then ``publishBind`` with the service id
and the initiator's model, as FATE-Flow sends it. Roles and initiator come from the version's
own ``Pipeline`` (its ``train_runtime_conf``), checked before use; replies are bounded and
reduced to one line.
"""

from __future__ import annotations

import io
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from ..errors import Corrupt, InvalidInput, NotFound, RefConflict, RemoteError, RemoteRefused, RemoteUnreachable
from ..refs import check_ref_name
from .names import NAME, ROLES, VERSION, is_party_model_id, pipeline_ref
from .pipeline import PIPELINE_PATHS, WireError, decode_pipeline, json_field

PREFIX = "serving/"
TRANSFER_PATH = "/v1/model/transfer"
LOAD_TYPE = "FATEFLOW"
MAX_REPLY = 4 << 20          # FATE-Flow takes any size; a PublishResponse is a few hundred bytes
MAX_PIPELINE = 64 << 20
SERVING = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def binding_ref(service_id: str) -> str:
    if not isinstance(service_id, str) or not NAME.match(service_id) or len(service_id) > 200:
        raise InvalidInput(f"not a service id: {service_id!r} (one plain name: no '/', no control "
                           f"characters, not starting with '.')")
    return check_ref_name(PREFIX + service_id)


def _names(repo) -> dict[bytes, list[tuple[str, str]]]:
    """commit id -> the (party model id, version) of every FATE version ref naming it."""
    out: dict[bytes, list[tuple[str, str]]] = {}
    for ref, cid in repo.list_refs("models/"):
        model, _, version = ref[len("models/"):].rpartition("/")
        if is_party_model_id(model) and VERSION.match(version):
            out.setdefault(cid, []).append((model, version))
    return out


def _version_spec(repo, model: str, version: str | None) -> str | None:
    """An ``--expect-old`` value as a spec: a version name of ``model``, else any spec ('none': unbound)."""
    if version is None or version in ("", "none"):
        return version
    ref = f"models/{model}/{version}"
    return ref if dict(repo.list_refs(ref)).get(ref) else version


def bind(repo, service_id: str, model: str, version: str, *, expect_old: str | None = None) -> bytes:
    """Point ``serving/<service_id>`` at FATE version ``model`` (a party model id) / ``version``:
    from wherever it is now (compare-and-swap from what was read), or only from ``expect_old``
    (a version name of ``model``, any version spec, or 'none': not bound yet). Returns the id."""
    ref = binding_ref(service_id)
    if not is_party_model_id(model) or not VERSION.match(version or ""):
        raise InvalidInput(f"not a FATE model version: {model!r} {version!r} (a party model id "
                           f"<role>#<party_id>#<model_id> and a model version)")
    target = pipeline_ref(model, version)
    if not dict(repo.list_refs(target)).get(target):
        raise NotFound(f"no version {version} of model {model} (casreg fate import it first)")
    current = dict(repo.list_refs(ref)).get(ref)
    spec = (current.hex() if current else "none") if expect_old is None else _version_spec(repo, model, expect_old)
    try:
        return repo.update_ref(ref, target, expect_old=spec, message=f"serving bind {model} {version}")
    except RefConflict:
        now = dict(repo.list_refs(ref)).get(ref)
        raise RefConflict(f"service id {service_id} serves {_name(repo, now)}, not "
                          f"{expect_old if expect_old is not None else _name(repo, current)}") from None


def _name(repo, cid: bytes | None, names: dict | None = None) -> str:
    named = (names if names is not None else _names(repo)).get(cid, []) if cid else []
    return "nothing" if cid is None else f"{named[0][0]}/{named[0][1]}" if len(named) == 1 else cid.hex()[:12]


def unbind(repo, service_id: str, *, expect_old: str | None = None) -> bytes:
    """Remove ``serving/<service_id>`` (only if it names ``expect_old``, when given); the old id."""
    ref = binding_ref(service_id)
    current = dict(repo.list_refs(ref)).get(ref)
    if current is None:
        raise NotFound(f"service id {service_id} is not bound")
    names = _names(repo).get(current, [])
    spec = _version_spec(repo, names[0][0], expect_old) if names and expect_old else expect_old
    try:
        return repo.delete_ref(ref, expect_old=spec)
    except RefConflict:
        raise RefConflict(f"service id {service_id} serves {_name(repo, current)}, not {expect_old}") from None


def _row(service_id: str, cid: bytes, names: dict) -> dict:
    named = names.get(cid, [])
    return {"service_id": service_id, "id": cid.hex(), "model": named[0][0] if len(named) == 1 else None,
            "version": named[0][1] if len(named) == 1 else None,
            "names": [f"{m}/{v}" for m, v in named]}


def bindings(repo) -> list[dict]:
    """Every service id with the version it serves: ``model``/``version`` when exactly one FATE
    version ref names it (else None, and ``names`` lists them all)."""
    names = _names(repo)
    return [_row(ref[len(PREFIX):], cid, names) for ref, cid in repo.list_refs(PREFIX)]


def history(repo, service_id: str) -> list[dict]:
    """The moves of ``serving/<service_id>``, newest first: time, who, old and new version."""
    names = _names(repo)

    def name(hexid):
        return _name(repo, bytes.fromhex(hexid), names) if hexid else None
    return [{"time": e["time"], "who": e["who"], "old": name(e["old"]), "new": name(e["new"]),
             "message": e["message"]} for e in repo.reflog(binding_ref(service_id))]


# -- publish ------------------------------------------------------------------------------------------
@dataclass
class Parties:
    """What a PublishRequest says about the federation, from the version's Pipeline."""
    model_id: str                    # FATE's model id: party model ids are <role>#<party_id>#<model_id>
    version: str
    local: tuple[str, str]           # this party: the version's party model id
    initiator: tuple[str, str]
    roles: dict[str, list[str]]      # role -> party ids, as the job's runtime conf lists them

    def party_model_id(self, role: str, party: str) -> str:
        return f"{role}#{party}#{self.model_id}"


@dataclass
class Published:
    service_id: str
    model: str
    version: str
    file_path: str
    servings: list[str] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)   # {serving, call, status, message}

    def to_json(self) -> dict:
        return {"service_id": self.service_id, "model": self.model, "version": self.version,
                "file_path": self.file_path, "servings": self.servings, "replies": self.replies}


def _party(value: Any) -> str | None:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    return text if NAME.match(text) and "#" not in text else None


def parties(repo, model: str, version: str) -> Parties:
    """The federation of FATE version ``model``/``version`` from its Pipeline (Corrupt if it
    lacks one, or its roles or initiator do not check out)."""
    ref = pipeline_ref(model, version)
    pipeline = None
    for path in PIPELINE_PATHS:
        out = io.BytesIO()
        try:
            repo.cat(f"{ref}:{path}", out)
        except NotFound:
            continue
        if out.tell() > MAX_PIPELINE:
            raise Corrupt(f"{ref}: {path} is larger than a FATE Pipeline message ({out.tell()} bytes)")
        try:
            pipeline = decode_pipeline(out.getvalue())
        except WireError as exc:
            raise Corrupt(f"{ref}: {path} is not a FATE Pipeline message: {exc}") from None
        break
    if pipeline is None:
        raise Corrupt(f"{ref} has no FATE Pipeline ({' or '.join(PIPELINE_PATHS)}): not a pipeline version")
    conf = json_field(pipeline.get("train_runtime_conf"))
    conf = conf if isinstance(conf, dict) else {}
    roles_in = json_field(pipeline.get("roles")) or conf.get("role")
    roles: dict[str, list[str]] = {}
    if isinstance(roles_in, dict):
        for role, ids in roles_in.items():
            checked = [_party(p) for p in ids] if isinstance(ids, list) else [None]
            if role not in ROLES or None in checked:
                raise Corrupt(f"{ref}: the Pipeline's roles are not role -> party ids: {role!r}: {ids!r}"[:300])
            roles[role] = [p for p in checked if p is not None]
    initiator = conf.get("initiator")
    initiator = initiator if isinstance(initiator, dict) else {}
    init_role = pipeline.get("initiator_role") or initiator.get("role")
    init_party = _party(pipeline.get("initiator_party_id") or initiator.get("party_id"))
    local_role, local_party, model_id = model.split("#", 2)
    for what, role, party in (("this party", local_role, local_party), ("the initiator", init_role, init_party)):
        if not isinstance(role, str) or party is None or party not in roles.get(role, []):
            raise Corrupt(_one_line(f"{ref}: the Pipeline does not list {what} ({role} {party}) among its roles"))
    assert isinstance(init_role, str) and init_party is not None
    return Parties(model_id, version, (local_role, local_party), (init_role, init_party), roles)


def load_request(p: Parties, file_path: str):
    """FATE-Flow's ``publish_model.load_model`` request for this party."""
    from .proto import model_service_pb2 as pb
    request = pb.PublishRequest()
    for role, ids in p.roles.items():
        request.role[role].partyId.extend(ids)
    for role, ids in p.roles.items():
        for party in ids:
            info = request.model[role].roleModelInfo[party]
            info.tableName = p.version
            info.namespace = p.party_model_id(role, party)
    request.local.role, request.local.partyId = p.local
    request.loadType = LOAD_TYPE
    request.filePath = file_path
    return request


def bind_request(p: Parties, service_id: str):
    """FATE-Flow's ``publish_model.bind_model_service`` request: the initiator's model."""
    from .proto import model_service_pb2 as pb
    request = pb.PublishRequest()
    request.serviceId = service_id
    for role, ids in p.roles.items():
        request.role[role].partyId.extend(ids)
    role, party = p.initiator
    info = request.model[role].roleModelInfo[party]
    info.tableName = p.version
    info.namespace = p.party_model_id(role, party)
    request.local.role, request.local.partyId = p.initiator
    return request


def check_serving(address: str) -> str:
    m = SERVING.match(address or "")
    if not m or not 0 < int(m.group(2)) < 65536:
        raise InvalidInput(f"not a serving-server address: {address!r} (HOST:PORT)")
    return address


def file_path(transfer_url: str | None) -> str:
    """``filePath`` for a transfer URL: FATE-Serving URL-decodes it, so it goes encoded; a URL
    with no path gets ``/v1/model/transfer``; none: empty (the serving's ``model.transfer.url``)."""
    if not transfer_url:
        return ""
    url = urllib.parse.urlsplit(transfer_url)
    if url.scheme not in ("http", "https") or not url.hostname or url.username or url.password:
        raise InvalidInput(f"not a transfer URL: {transfer_url!r} (http(s)://HOST:PORT[/path], no credentials)")
    try:
        _ = url.port  # urlsplit checks the port only when asked
    except ValueError:
        raise InvalidInput(f"not a transfer URL: {transfer_url!r} (bad port)") from None
    if url.path in ("", "/"):
        url = url._replace(path=TRANSFER_PATH)
    return urllib.parse.quote(urllib.parse.urlunsplit(url), safe=":/?&=@[]!$'()*,;~")


def _one_line(text: str) -> str:
    text = CONTROL.sub(" ", text).strip()
    return text if len(text) <= 300 else text[:300] + "..."


def _call(method, request, serving: str, name: str, timeout: float):
    import grpc
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        detail = _one_line(str(exc.details() if callable(getattr(exc, "details", None)) else exc))
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise RemoteUnreachable(f"FATE-Serving at {serving} did not answer {name} "
                                    f"({code.name.lower()}{': ' + detail if detail else ''})") from None
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise RemoteRefused(f"FATE-Serving at {serving} refused {name}: {detail}") from None
        raise RemoteError(f"{serving} failed {name} ({code.name.lower() if code else 'error'}: {detail}); "
                          f"is it a FATE-Serving serving-server?") from None


def publish(repo, service_id: str, servings: list[str], *, transfer_url: str | None = None,
            timeout: float = 30.0) -> Published:
    """``publishLoad`` then ``publishBind`` of the version ``serving/<service_id>`` names to each
    serving-server (all loads first, as FATE-Flow's load and bind calls): RemoteUnreachable if one
    does not answer, RemoteRefused with FATE-Serving's message if it answers a non-zero statusCode."""
    import grpc

    from . import serving as transfer
    from .proto import model_service_pb2_grpc as pb_grpc
    if not servings:
        raise InvalidInput("name the serving-server to publish to (--serving HOST:PORT)")
    if not timeout > 0:
        raise InvalidInput(f"a timeout is a number of seconds above 0, not {timeout}")
    servings = [check_serving(s) for s in servings]
    path = file_path(transfer_url)
    ref = binding_ref(service_id)
    current = dict(repo.list_refs(ref)).get(ref)
    if current is None:
        raise NotFound(f"service id {service_id} is not bound (casreg serving bind {service_id} MODEL VERSION)")
    named = _names(repo).get(current, [])
    if len(named) != 1:
        raise NotFound(f"{ref} names {current.hex()[:12]}, which " + ("no models/<party_model_id>/<version> ref "
                       "here names" if not named else f"several versions name ({', '.join(map('/'.join, named))})"))
    model, version = named[0]
    fed = parties(repo, model, version)
    transfer.collect_models(repo, model, version)  # what FATE-Serving will ask for is there and readable
    report = Published(service_id, model, version, path, servings)
    options = [("grpc.max_receive_message_length", MAX_REPLY)]
    for name, request in (("publishLoad", load_request(fed, path)), ("publishBind", bind_request(fed, service_id))):
        for serving in servings:
            with grpc.insecure_channel(serving, options=options) as channel:
                stub = pb_grpc.ModelServiceStub(channel)
                reply = _call(getattr(stub, name), request, serving, name, timeout)
            message = _one_line(" ".join(t for t in (reply.message, reply.error) if t))
            if reply.statusCode != 0:
                raise RemoteRefused(f"FATE-Serving at {serving} refused {name} of {model} {version}: "
                                    f"statusCode {reply.statusCode}{': ' + message if message else ''}")
            report.replies.append({"serving": serving, "call": name, "status": reply.statusCode, "message": message})
    return report
