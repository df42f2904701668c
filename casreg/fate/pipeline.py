"""FATE's ``Pipeline`` protobuf message, read and written from the wire format (no generated code),
and the change FATE-Flow's deploy makes to it.

``Pipeline`` (FATE-Flow 1.x ``protobuf/proto/pipeline.proto``, unchanged from 1.8 to 1.11):
1 inference_dsl, 2 train_dsl, 3 train_runtime_conf, 9 roles, 13 runtime_conf_on_party, 14 parent_info
(bytes, each UTF-8 JSON); 4 fate_version, 5 model_id, 6 model_version, 11 initiator_role (string);
7 parent (bool); 8 loaded_times, 10 work_mode, 12 initiator_party_id (int32). Every length is
checked against the data, so a file that lies raises WireError, never reads past its end.
"""

from __future__ import annotations

import base64
import json
from typing import Any

# where a version keeps the message: 1.9+ only as the pipeline component's model, 1.8 also at its root
PIPELINE_PATHS = ("variables/data/pipeline/pipeline/Pipeline", "pipeline.pb")

BYTES = {1: "inference_dsl", 2: "train_dsl", 3: "train_runtime_conf", 9: "roles", 13: "runtime_conf_on_party",
         14: "parent_info"}
TEXT = {4: "fate_version", 5: "model_id", 6: "model_version", 11: "initiator_role"}
NUMBER = {7: "parent", 8: "loaded_times", 10: "work_mode", 12: "initiator_party_id"}


class WireError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def decode_pipeline(data: bytes) -> dict[str, Any]:
    """The fields of a ``Pipeline`` message (unknown fields skipped; WireError if malformed)."""
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number} runs past the end")
            value, pos = data[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise WireError(f"field {number}: wire type {wire}")
        if pos > len(data):
            raise WireError("truncated field")
        if number in BYTES and isinstance(value, bytes):
            out[BYTES[number]] = value
        elif number in TEXT and isinstance(value, bytes):
            out[TEXT[number]] = value.decode("utf-8", "replace")
        elif number in NUMBER and isinstance(value, int):
            out[NUMBER[number]] = value - (1 << 64) if value >= 1 << 63 else value
    return out


def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


FIELDS = {**BYTES, **TEXT, **NUMBER}


def encode_pipeline(fields: dict[str, Any]) -> bytes:
    """The message of ``fields`` as protobuf's serializer writes it: field-number order, proto3
    defaults (empty, 0, False) left out."""
    out = bytearray()
    for number in sorted(FIELDS):
        value = fields.get(FIELDS[number])
        if not value:
            continue
        if number in NUMBER:
            out += _encode_varint(number << 3) + _encode_varint(int(value))
        else:
            data = value.encode() if isinstance(value, str) else bytes(value)
            out += _encode_varint(number << 3 | 2) + _encode_varint(len(data)) + data
    return bytes(out)


def _json_bytes(value: Any) -> bytes:
    """What FATE's ``json_dumps(obj, byte=True)`` writes (Python's default separators)."""
    return json.dumps(value).encode()


def _newer_than_1_5(version: str) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")[:3]) > (1, 5, 0)
    except ValueError:
        return False


def deployed(fields: dict[str, Any], model_id: str, parent_version: str, child_version: str) -> dict[str, Any]:
    """``fields`` as FATE-Flow 1.11's deploy changes them for the child version: its
    ``model_version``, the model version inside ``train_runtime_conf``, and for FATE after 1.5.0
    ``runtime_conf_on_party``'s, ``parent`` False and ``parent_info`` naming the parent."""
    out = dict(fields, model_version=child_version)
    conf = json_field(fields.get("train_runtime_conf"))
    if isinstance(conf, dict) and isinstance(conf.get("job_parameters"), dict):
        params = conf["job_parameters"]
        if isinstance(params.get("common"), dict):
            params["common"]["model_version"] = child_version
        else:
            params["model_version"] = child_version
        out["train_runtime_conf"] = _json_bytes(conf)
    if _newer_than_1_5(str(fields.get("fate_version", ""))):
        party = json_field(fields.get("runtime_conf_on_party"))
        if isinstance(party, dict) and isinstance(party.get("job_parameters"), dict):
            party["job_parameters"]["model_version"] = child_version
            out["runtime_conf_on_party"] = _json_bytes(party)
        out["parent"] = 0
        out["parent_info"] = _json_bytes({"parent_model_id": model_id, "parent_model_version": parent_version})
    return out


def json_field(value: Any) -> Any:
    """A bytes field's JSON, or None when it is empty or not JSON (FATE's own fields are JSON)."""
    try:
        return json.loads(value) if isinstance(value, (bytes, str)) and value else None
    except (ValueError, UnicodeDecodeError):
        return None


CAMEL = {"inference_dsl": "inferenceDsl", "train_dsl": "trainDsl", "train_runtime_conf": "trainRuntimeConf",
         "fate_version": "fateVersion", "model_id": "modelId", "model_version": "modelVersion", "parent": "parent",
         "loaded_times": "loadedTimes", "roles": "roles", "work_mode": "workMode", "initiator_role": "initiatorRole",
         "initiator_party_id": "initiatorPartyId", "runtime_conf_on_party": "runtimeConfOnParty",
         "parent_info": "parentInfo"}


def as_json(fields: dict[str, Any], like: bytes | None = None) -> bytes:
    """``Pipeline.json`` beside the message: protobuf's ``MessageToDict`` with defaults included
    (lowerCamelCase keys, bytes as base64), in the key order of ``like`` (the parent's) if given."""
    doc: dict[str, Any] = {}
    for name, key in CAMEL.items():
        value = fields.get(name)
        if name in BYTES.values():
            doc[key] = base64.b64encode(value or b"").decode()
        elif name == "parent":
            doc[key] = bool(value)
        elif name in NUMBER.values():
            doc[key] = int(value or 0)
        else:
            doc[key] = value or ""
    order = json_field(like)
    if isinstance(order, dict):
        doc = {**{k: doc[k] for k in order if k in doc}, **doc}
    return json.dumps(doc).encode()
