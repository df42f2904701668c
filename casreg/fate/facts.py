"""What FATE itself says about a model version, as metadata ``models`` / ``versions --where`` can
filter on: its roles and parties, initiator, components, job, FATE version.

Read from the version's own files, never trusted: the ``Pipeline`` protobuf (``PIPELINE_PATHS``,
decoded here from the wire format with bounds on every length, so no generated code is needed)
and ``define/define_meta.yaml``. A file that does not parse gives no facts, not an error: the
files are stored as they are either way.
"""

from __future__ import annotations

import os
from typing import Any

from .pipeline import PIPELINE_PATHS, WireError, decode_pipeline, json_field

MAX_PIPELINE = 64 << 20


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
    for rel in PIPELINE_PATHS:
        path = os.path.join(version_dir, rel)
        if os.path.isfile(path) and not os.path.islink(path) and os.path.getsize(path) <= MAX_PIPELINE:
            try:
                with open(path, "rb") as f:
                    pipeline = decode_pipeline(f.read())
                break
            except WireError:
                pipeline = {}
    conf = json_field(pipeline.get("train_runtime_conf")) or {}
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
    roles = _parties(json_field(pipeline.get("roles"))) or _parties(conf.get("role"))
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
