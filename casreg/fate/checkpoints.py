"""The checkpoint steps of a version, as ``flow checkpoint list/get`` shows them."""

from __future__ import annotations

from ..errors import NotFound
from .names import STEP, check_party_model_id, check_version


def list_checkpoints(repo, party_model_id: str, version: str) -> list[dict]:
    prefix = f"checkpoints/{check_party_model_id(party_model_id)}/{check_version(version)}/"
    rows = []
    for ref, cid in repo.list_refs(prefix):
        component, _, step = ref[len(prefix):].partition("/")
        m = STEP.match(step)
        if m:
            rows.append({"component": component, "step_index": int(m.group(1)), "step_name": m.group(2),
                         "ref": ref, "id": cid.hex()})
    return sorted(rows, key=lambda r: (r["component"], r["step_index"]))


def find_checkpoint(repo, party_model_id: str, version: str, component: str, step: str) -> str:
    """The ref of a checkpoint step named by its index or its name (as ``flow checkpoint get``)."""
    for row in list_checkpoints(repo, party_model_id, version):
        if row["component"] == component and (str(row["step_index"]) == step or row["step_name"] == step):
            return row["ref"]
    raise NotFound(f"no checkpoint {step!r} of {component} in {party_model_id} {version}")


