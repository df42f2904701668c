"""What FATE itself says about a model version, as metadata ``models`` / ``versions --where`` can
filter on: its roles and parties, initiator, components, job, FATE version.

Read from the version's own files, never trusted: ``pipeline.pb`` (FATE's ``Pipeline`` protobuf,
decoded here from the wire format with bounds on every length, so no generated code is needed)
and ``define/define_meta.yaml``. A file that does not parse gives no facts, not an error: the
files are stored as they are either way.

``Pipeline`` (FATE 1.x ``proto/pipeline.proto``): 1 inference_dsl, 2 train_dsl,
3 train_runtime_conf (JSON bytes), 4 fate_version, 5 model_id, 6 model_version, 7 parent,
8 loaded_times, 9 roles (JSON), 10 work_mode, 11 initiator_role, 12 initiator_party_id,
13 runtime_conf_on_party (JSON), 14 parent_info (JSON).
"""

from __future__ import annotations

import json
import os
from typing import Any

MAX_PIPELINE = 64 << 20
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


def _json(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, (bytes, str)) and value else None
    except (ValueError, UnicodeDecodeError):
        return None


def _parties(roles: Any) -> dict[str, list]:
    """``{"guest": [9999], "host": [10000]}`` from FATE's role map, anything else dropped."""
    if not isinstance(roles, dict):
        return {}
    return {str(role): [p for p in ids if isinstance(p, (int, str)) and not isinstance(p, bool)]
            for role, ids in roles.items() if isinstance(ids, list)}


def version_facts(version_dir: str) -> dict[str, Any]:
    """FATE's facts of the version in ``version_dir`` (a 1.x model_local_cache version)."""
    facts: dict[str, Any] = {}
    pipeline: dict[str, Any] = {}
    path = os.path.join(version_dir, "pipeline.pb")
    if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) <= MAX_PIPELINE:
        try:
            with open(path, "rb") as f:
                pipeline = decode_pipeline(f.read())
        except WireError:
            pipeline = {}
    conf = _json(pipeline.get("train_runtime_conf")) or {}
    conf = conf if isinstance(conf, dict) else {}
    for key in ("fate_version", "model_id", "model_version"):
        if pipeline.get(key):
            facts[{"fate_version": "fate_version", "model_id": "fate_model_id",
                   "model_version": "fate_job_id"}[key]] = pipeline[key]
    initiator = conf.get("initiator")
    initiator = initiator if isinstance(initiator, dict) else {}
    role = pipeline.get("initiator_role") or initiator.get("role")
    party = pipeline.get("initiator_party_id") or initiator.get("party_id")
    if isinstance(role, str) and role:
        facts["initiator_role"] = role
    if isinstance(party, (int, str)) and not isinstance(party, bool) and party != "":
        facts["initiator_party_id"] = party
    roles = _parties(_json(pipeline.get("roles"))) or _parties(conf.get("role"))
    if roles:
        facts["roles"] = roles
        facts["parties"] = sorted({str(p) for ids in roles.values() for p in ids})
    if "parent" in pipeline:
        facts["fate_parent"] = bool(pipeline["parent"])
    facts.update(_define_facts(version_dir))
    return facts


def _define_facts(version_dir: str) -> dict[str, Any]:
    import yaml
    path = os.path.join(version_dir, "define", "define_meta.yaml")
    if not os.path.isfile(path) or os.path.islink(path) or os.path.getsize(path) > MAX_PIPELINE:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            define = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError):
        return {}
    components = define.get("component_define") if isinstance(define, dict) else None
    if not isinstance(components, dict):
        return {}
    modules = {str(name): str(spec.get("module_name")) for name, spec in components.items()
               if isinstance(spec, dict) and isinstance(spec.get("module_name"), str)}
    return {"components": sorted(str(c) for c in components), "modules": sorted(set(modules.values()))}
