"""FATE's names: party model ids, model versions, checkpoint steps, and the refs casreg gives them.

- pipeline model: ``models/<party_model_id>/<model_version>``
- checkpoint:     ``checkpoints/<party_model_id>/<model_version>/<component>/<step_index>#<step_name>``
where ``party_model_id`` is ``<role>#<party_id>#<model_id>``.
"""

from __future__ import annotations

import os
import re

from ..errors import CasregError
from ..refs import check_ref_name

ROLES = ("guest", "host", "arbiter", "local")
NAME = re.compile(r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*$")  # one file name, not hidden, no controls
VERSION = re.compile(r"^[0-9A-Za-z_-][0-9A-Za-z_.-]*$")
LAYOUTS = "fate/archives/"   # a version's attachments: the layout of each archive it came from, by SHA-256
STEP = re.compile(r"^(\d+)#([^/]+)$")


def is_party_model_id(value) -> bool:
    """``<role>#<party_id>#<model_id>``: a known role, and ids that are each one plain file name
    (FATE 2.x stores a version under ``<model_id>/<version>/<role>/<party_id>``)."""
    parts = value.split("#", 2) if isinstance(value, str) else []
    return len(parts) == 3 and parts[0] in ROLES and all(NAME.match(p) for p in parts[1:])


def check_party_model_id(value: str) -> str:
    if not is_party_model_id(value):
        raise CasregError(f"not a FATE party model id: {value!r} (expected <role>#<party_id>#<model_id>, "
                          f"role one of {', '.join(ROLES)}, ids plain names)")
    return value


def check_version(value: str) -> str:
    if not isinstance(value, str) or not VERSION.match(value):
        raise CasregError(f"not a FATE model version: {value!r} (letters, digits, '_', '-' and '.', "
                          f"not starting with '.')")
    return value


def pipeline_ref(party_model_id: str, version: str) -> str:
    return check_ref_name(f"models/{check_party_model_id(party_model_id)}/{check_version(version)}")


def checkpoint_ref(party_model_id: str, version: str, component: str, step_index: int, step_name: str) -> str:
    return check_ref_name(f"checkpoints/{check_party_model_id(party_model_id)}/{check_version(version)}/"
                          f"{component}/{int(step_index)}#{step_name}")


def component_ref(party_model_id: str, version: str, component: str) -> str:
    if not isinstance(component, str) or not NAME.match(component):
        raise CasregError(f"not a FATE component name: {component!r}")
    return check_ref_name(f"components/{check_party_model_id(party_model_id)}/{check_version(version)}/{component}")


def parse_archive_name(path: str, component: str | None = None) -> tuple[str, str]:
    """(party_model_id, model_version) from FATE's archive name ``<party_model_id>_<model_version>.zip``
    (``..._<component>.zip`` for a 1.9+ component archive)."""
    stem = os.path.basename(path)[:-4] if path.endswith(".zip") else os.path.basename(path)
    if component is not None:
        if not stem.endswith(f"_{component}"):
            raise CasregError(f"{os.path.basename(path)} holds component {component} but is not named "
                              f"<party_model_id>_<model_version>_{component}.zip")
        stem = stem[:-len(component) - 1]
    party, sep, version = stem.rpartition("_")
    if not sep:
        raise CasregError(f"{os.path.basename(path)} is not named like a FATE archive "
                          f"(<role>#<party_id>#<model_id>_<model_version>.zip)")
    return check_party_model_id(party), check_version(version)


