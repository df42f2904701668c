"""FATE-Flow 1.x models in and out: ``model_local_cache`` layout, archives, checkpoint steps.

Names follow FATE's model registry so FATE users recognise them:
- pipeline model: ``models/<party_model_id>/<model_version>``
- checkpoint:     ``checkpoints/<party_model_id>/<model_version>/<component>/<step_index>#<step_name>``
where ``party_model_id`` is ``<role>#<party_id>#<model_id>``.

A pipeline version is the whole version directory as FATE keeps it (``define/``, ``pipeline.pb``,
``variables/``, ``checkpoint/`` ...), so ``fate export`` writes it back byte-identical, file by file;
each checkpoint step also gets its own ref (sharing every object with the version).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field

from .archive import extract_zip
from .errors import CasregError, Corrupt, NotFound, UnsafePath
from .ignore import literal
from .refs import check_ref_name
from .safepath import join_inside

ROLES = ("guest", "host", "arbiter", "local")
_NAME = re.compile(r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*$")  # one file name, not hidden, no controls
_VERSION = re.compile(r"^[0-9A-Za-z_-][0-9A-Za-z_.-]*$")
_STEP = re.compile(r"^(\d+)#([^/]+)$")
VERSION_MARKERS = ("define", "variables", "pipeline.pb", "checkpoint", "run_parameters")


def is_party_model_id(value) -> bool:
    """``<role>#<party_id>#<model_id>``: a known role, and ids that are each one plain file name
    (FATE 2.x stores a version under ``<model_id>/<version>/<role>/<party_id>``)."""
    parts = value.split("#", 2) if isinstance(value, str) else []
    return len(parts) == 3 and parts[0] in ROLES and all(_NAME.match(p) for p in parts[1:])


def check_party_model_id(value: str) -> str:
    if not is_party_model_id(value):
        raise CasregError(f"not a FATE party model id: {value!r} (expected <role>#<party_id>#<model_id>, "
                          f"role one of {', '.join(ROLES)}, ids plain names)")
    return value


def check_version(value: str) -> str:
    if not isinstance(value, str) or not _VERSION.match(value):
        raise CasregError(f"not a FATE model version: {value!r} (letters, digits, '_', '-' and '.', "
                          f"not starting with '.')")
    return value


def pipeline_ref(party_model_id: str, version: str) -> str:
    return check_ref_name(f"models/{check_party_model_id(party_model_id)}/{check_version(version)}")


def checkpoint_ref(party_model_id: str, version: str, component: str, step_index: int, step_name: str) -> str:
    return check_ref_name(f"checkpoints/{check_party_model_id(party_model_id)}/{check_version(version)}/"
                          f"{component}/{int(step_index)}#{step_name}")


@dataclass
class ImportReport:
    versions: dict[str, bytes] = field(default_factory=dict)      # ref -> commit id
    checkpoints: dict[str, bytes] = field(default_factory=dict)   # ref -> commit id
    unchanged: list[str] = field(default_factory=list)            # refs already holding this content
    new_stored_bytes: int = 0
    problems: list[str] = field(default_factory=list)             # checkpoints refused, with why

    def to_json(self) -> dict:
        return {"versions": {k: v.hex() for k, v in self.versions.items()},
                "checkpoints": {k: v.hex() for k, v in self.checkpoints.items()},
                "unchanged": self.unchanged, "new_stored_bytes": self.new_stored_bytes, "problems": self.problems}


def _is_version_dir(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, m)) for m in VERSION_MARKERS)


def _no_symlink_dir(path: str) -> str:
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
        if os.path.isdir(_no_symlink_dir(os.path.join(parent, name))):
            found.append((name, join_inside(parent, name)))
    return found


def find_versions(source: str) -> list[tuple[str, str, str]]:
    """(party_model_id, model_version, path) of every FATE model version under ``source``: a
    model_local_cache directory, one party model directory, or one version directory."""
    source = os.path.abspath(source)
    if _is_version_dir(source):
        party = os.path.basename(os.path.dirname(source))
        return [(check_party_model_id(party), check_version(os.path.basename(source)), source)]
    parties = [source] if is_party_model_id(os.path.basename(source)) else [
        path for _, path in _dirs(source, (d for d in sorted(os.listdir(source)) if is_party_model_id(d)))]
    found = []
    for party in parties:
        for version, path in _dirs(party, sorted(os.listdir(party))):
            if _is_version_dir(path):
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
                m = _STEP.match(step)
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
            actual = _digest(path, "sha1")
        except OSError:
            return f"model file missing: {os.path.basename(path)}"
        if actual != model.get("sha1"):
            return f"{os.path.basename(path)} has SHA-1 {actual}, database.yaml says {model.get('sha1')}"
    return None


def _digest(path: str, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_archive_name(path: str) -> tuple[str, str]:
    """(party_model_id, model_version) from FATE's archive name ``<party_model_id>_<model_version>.zip``."""
    stem = os.path.basename(path)[:-4] if path.endswith(".zip") else os.path.basename(path)
    party, sep, version = stem.rpartition("_")
    if not sep:
        raise CasregError(f"{os.path.basename(path)} is not named like a FATE archive "
                          f"(<role>#<party_id>#<model_id>_<model_version>.zip)")
    return check_party_model_id(party), check_version(version)


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


def import_source(repo, source: str, *, force: bool = False, progress=None) -> ImportReport:
    """Import a FATE model_local_cache / party dir / version dir / archive .zip (FATE 1.x), or a
    FATE 2.x model storage directory, into the store."""
    if not os.path.exists(source):
        raise CasregError(f"no such file or directory: {source}")
    if os.path.isdir(source):
        _no_symlink_dir(os.path.abspath(source))
    if os.path.isdir(source) and not _is_version_dir(source):
        v2 = find_v2_outputs(source)
        if v2:
            return _import_versions(repo, v2, force, progress, layout="2")
    if os.path.isfile(source):
        party, version = parse_archive_name(source)
        with tempfile.TemporaryDirectory(prefix="casreg-fate-") as tmp:
            target = join_inside(tmp, party, version)
            os.makedirs(target)
            extract_zip(source, target)
            return _import_versions(repo, [(party, version, target)], force, progress)
    return _import_versions(repo, find_versions(source), force, progress)


def _import_versions(repo, versions, force: bool, progress, layout: str = "1") -> ImportReport:
    report = ImportReport()
    # every name is checked (it must make a legal ref) before anything is stored
    plan = [(party, version, path, pipeline_ref(party, version),
             [(*step, checkpoint_ref(party, version, *step[:3])) for step in checkpoint_steps(path)])
            for party, version, path in versions]
    for party, version, path, ref, steps in plan:
        meta = {"framework": "fate", "party_model_id": party, "model_version": version, "fate_layout": layout}
        problems = {step_ref: check_checkpoint(step_dir, index, name) for _, index, name, step_dir, step_ref in steps}
        refused = [literal(os.path.relpath(step_dir, path), directory=True)  # nor in the version
                   for *_, step_dir, step_ref in steps if problems[step_ref]]
        result = repo.commit(path, ref, message=f"fate import {party} {version}", meta=meta, force=force,
                             unchanged_ok=True, progress=progress, exclude=refused)
        _record(report, report.versions, ref, result)
        for component, index, name, step_dir, step_ref in steps:
            if problems[step_ref]:
                report.problems.append(f"{step_ref}: {problems[step_ref]}")
                continue
            step_meta = dict(meta, component=component, step_index=str(index), step_name=name)
            result = repo.commit(step_dir, step_ref, message=f"fate checkpoint {component} {index}#{name}",
                                 meta=step_meta, force=force, unchanged_ok=True)
            _record(report, report.checkpoints, step_ref, result)
    return report


def _record(report: ImportReport, into: dict, ref: str, result) -> None:
    into[ref] = result.id
    report.new_stored_bytes += result.new_stored_bytes
    if not result.moved:
        report.unchanged.append(ref)


def _name(value) -> str:
    """A FATE name from metadata: text, or a number typed from it (``--meta model_version=2024``)."""
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""


def export(repo, spec: str, dest: str, *, force: bool = False) -> str | None:
    """Write a version back in FATE's layout: a directory, or FATE's archive form for ``*.zip``
    (returns the archive's SHA-256, which FATE-Flow records and checks on restore)."""
    if not dest.endswith(".zip"):
        meta = repo.read_commit(repo.resolve(spec)).meta
        if _name(meta.get("fate_layout")) == "2":  # back under <model_id>/<version>/<role>/<party_id>/
            try:
                role, party_id, model_id = check_party_model_id(_name(meta.get("party_model_id"))).split("#", 2)
                version = check_version(_name(meta.get("model_version")))
            except CasregError as exc:
                raise UnsafePath(f"cannot export {spec}: its metadata names no FATE 2.x location: {exc}") from None
            dest = join_inside(dest, model_id, version, role, party_id)
        repo.checkout(spec, dest, force=force)
        return None
    if os.path.exists(dest) and not force:
        raise CasregError(f"{dest} exists; use --force to replace it")
    with tempfile.TemporaryDirectory(prefix="casreg-fate-", dir=os.path.dirname(os.path.abspath(dest))) as tmp:
        tree = os.path.join(tmp, "tree")
        repo.checkout(spec, tree)
        partial = os.path.join(tmp, "archive.zip")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for dirpath, dirnames, filenames in os.walk(tree):
                dirnames.sort()
                rel = os.path.relpath(dirpath, tree)
                links = [n for n in dirnames + filenames if os.path.islink(os.path.join(dirpath, n))]
                if links:  # zf.write would store what the link points at, from anywhere on this machine
                    raise UnsafePath(f"cannot export {spec} as a FATE archive: "
                                     f"{os.path.normpath(os.path.join(rel, links[0]))} is a symlink")
                if rel != ".":
                    zf.write(dirpath, rel + "/")
                for f in sorted(filenames):
                    zf.write(os.path.join(dirpath, f), os.path.normpath(os.path.join(rel, f)))
        os.replace(partial, dest)
    return _digest(dest, "sha256")


# -- catalog ---------------------------------------------------------------------------------------
def list_checkpoints(repo, party_model_id: str, version: str) -> list[dict]:
    prefix = f"checkpoints/{check_party_model_id(party_model_id)}/{check_version(version)}/"
    rows = []
    for ref, cid in repo.list_refs(prefix):
        component, _, step = ref[len(prefix):].partition("/")
        m = _STEP.match(step)
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


# -- FATE-Serving ----------------------------------------------------------------------------------
def _model_name(value, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or ":" in value:
        raise Corrupt(f"define/define_meta.yaml: {what} {value!r} is not a plain file name")
    return value


def collect_models(repo, party_model_id: str, version: str) -> dict[str, str]:
    """The models of a pipeline version as FATE-Flow's ``/v1/model/transfer`` gives them to
    FATE-Serving (``PipelinedModel.collect_models(in_bytes=True)``): for every component, model
    alias and model name of ``define/define_meta.yaml``'s ``model_proto``, in its order,
    ``"<component>.<alias>:<name>"`` -> base64 of ``variables/data/<component>/<alias>/<name>``."""
    import base64
    import io

    import yaml
    ref = pipeline_ref(party_model_id, version)

    def read(path: str) -> bytes:
        out = io.BytesIO()
        repo.cat(f"{ref}:{path}", out)
        return out.getvalue()

    try:
        define = yaml.safe_load(read("define/define_meta.yaml"))
    except yaml.YAMLError as exc:
        raise Corrupt(f"{ref}: define/define_meta.yaml does not parse: {exc}") from None
    proto = (define or {}).get("model_proto") or {} if isinstance(define, dict) else None
    if not isinstance(proto, dict) or not all(isinstance(a, dict) and all(isinstance(i, dict) for i in a.values())
                                              for a in proto.values()):
        raise Corrupt(f"{ref}: define/define_meta.yaml: model_proto is not component -> alias -> models")
    models = {}
    for component, aliases in proto.items():
        for alias, index in aliases.items():
            for name in index:
                path = "/".join(_model_name(v, w) for v, w in ((component, "component"), (alias, "alias"),
                                                               (name, "model")))
                models[f"{component}.{alias}:{name}"] = base64.b64encode(read(f"variables/data/{path}")).decode()
    return models
