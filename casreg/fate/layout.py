"""Where FATE keeps a model on disk: ``model_local_cache`` (1.x), checkpoint steps, FATE 2.x
model storage, and the checks FATE makes of a checkpoint step."""

from __future__ import annotations

import hashlib
import os

from ..errors import CasregError, UnsafePath
from ..safepath import join_inside
from .names import ROLES, STEP, check_party_model_id, check_version, is_party_model_id

VERSION_MARKERS = ("define", "variables", "pipeline.pb", "checkpoint", "run_parameters")


def is_version_dir(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, m)) for m in VERSION_MARKERS)


def no_symlink_dir(path: str) -> str:
    """``path``, refused if it is a symlink to a directory: a version stored through one would be a
    lone link, and a layout walked through one would take files from wherever it points."""
    if os.path.islink(path) and os.path.isdir(path):
        raise CasregError(f"{path} is a symlink (to {os.path.realpath(path)}); fate import does not follow "
                          f"symlinked directories: give the real path")
    return path


def _dirs(parent: str, names) -> list[tuple[str, str]]:
    """(name, path) of those of ``names`` that are directories in ``parent`` (other entries are
    no part of a FATE layout and are left alone; a symlink to a file is one of them)."""
    found = []
    for name in names:
        if os.path.isdir(no_symlink_dir(os.path.join(parent, name))):
            found.append((name, join_inside(parent, name)))
    return found


def find_versions(source: str) -> list[tuple[str, str, str]]:
    """(party_model_id, model_version, path) of every FATE model version under ``source``: a
    model_local_cache directory, one party model directory, or one version directory."""
    source = os.path.abspath(source)
    if is_version_dir(source):
        party = os.path.basename(os.path.dirname(source))
        return [(check_party_model_id(party), check_version(os.path.basename(source)), source)]
    parties = [source] if is_party_model_id(os.path.basename(source)) else [
        path for _, path in _dirs(source, (d for d in sorted(os.listdir(source)) if is_party_model_id(d)))]
    found = []
    for party in parties:
        for version, path in _dirs(party, sorted(os.listdir(party))):
            if is_version_dir(path):
                found.append((os.path.basename(party), check_version(version), path))
    if not found:
        raise CasregError(f"{source} is not a FATE layout (no <role>#<party_id>#<model_id>/<version>/ "
                          f"with define/, variables/ or checkpoint/)")
    return found


def checkpoint_steps(version_dir: str) -> list[tuple[str, int, str, str]]:
    """(component, step_index, step_name, path) of every checkpoint step of a version."""
    steps = []
    for _, root in _dirs(version_dir, ["checkpoint"]):
        for component, component_dir in _dirs(root, sorted(os.listdir(root))):
            for step, path in _dirs(component_dir, sorted(os.listdir(component_dir))):
                m = STEP.match(step)
                if m:
                    steps.append((component, int(m.group(1)), m.group(2), path))
    return sorted(steps, key=lambda s: (s[0], s[1]))


def check_checkpoint(step_dir: str, step_index: int, step_name: str) -> str | None:
    """Why a checkpoint step does not match its database.yaml (None if it does), as FATE checks it."""
    import yaml
    db = os.path.join(step_dir, "database.yaml")
    try:
        with open(db, encoding="utf8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        return f"cannot read database.yaml: {exc}"
    if not isinstance(data, dict) or data.get("step_index") != step_index or data.get("step_name") != step_name:
        return "database.yaml names another step"
    entries = data.get("models") or {}
    if not isinstance(entries, dict) or not all(isinstance(m, dict) for m in entries.values()):
        return "database.yaml: models is not a mapping of name -> {filename, sha1}"
    for name, model in entries.items():
        try:
            path = join_inside(step_dir, model.get("filename", f"{name}.pb"))
        except UnsafePath as exc:
            return f"database.yaml names a model file outside the step ({exc})"
        try:
            actual = file_digest(path, "sha1")
        except OSError:
            return f"model file missing: {os.path.basename(path)}"
        if actual != model.get("sha1"):
            return f"{os.path.basename(path)} has SHA-1 {actual}, database.yaml says {model.get('sha1')}"
        try:  # FATE 1.10+ writes the model as JSON beside it, and Checkpoint.read requires it
            beside = join_inside(step_dir, f"{name}.json")
        except UnsafePath as exc:
            return f"database.yaml names a model outside the step ({exc})"
        if not os.path.isfile(beside):
            return f"model file missing: {name}.json (FATE's Checkpoint.read needs it beside {name}.pb)"
    return None


def file_digest(path: str, algorithm: str) -> str:
    return file_digests(path, algorithm)[algorithm]


def file_digests(path: str, *algorithms: str) -> dict[str, str]:
    """algorithm -> hex digest of the file at ``path``, every algorithm in one read."""
    digests = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            for digest in digests.values():
                digest.update(block)
    return {a: d.hexdigest() for a, d in digests.items()}


def find_v2_outputs(source: str) -> list[tuple[str, str, str]]:
    """FATE 2.x model storage: ``<model_id>/<model_version>/<role>/<party_id>/<task_name>/<output_key>``
    (one tar per task output). Returns (party_model_id, model_version, party dir) for each party."""
    found = []
    for model_id, model_dir in _dirs(source, sorted(os.listdir(source))):
        for version, version_dir in _dirs(model_dir, sorted(os.listdir(model_dir))):
            for role, role_dir in _dirs(version_dir, sorted(set(ROLES) & set(os.listdir(version_dir)))):
                for party_id, party_dir in _dirs(role_dir, sorted(os.listdir(role_dir))):
                    if "#" in party_id:
                        raise CasregError(f"not a FATE party id: {party_id!r} ({party_dir}; ids hold no '#')")
                    found.append((check_party_model_id(f"{role}#{party_id}#{model_id}"), check_version(version),
                                  party_dir))
    return found


