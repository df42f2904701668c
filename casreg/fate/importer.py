"""FATE models into the store: one version per model version, one ref per checkpoint step
(sharing every object with the version), refused steps reported and left out."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

from .. import notes, ziplayout
from ..archive import extract_zip
from ..errors import CasregError, Corrupt, InvalidInput
from ..ignore import literal
from ..safepath import join_inside
from .facts import version_facts
from .layout import (
    check_checkpoint,
    checkpoint_steps,
    file_digests,
    find_v2_outputs,
    find_versions,
    is_version_dir,
    no_symlink_dir,
)
from .names import LAYOUTS, ROLES, checkpoint_ref, component_ref, parse_archive_name, pipeline_ref

RECORDED_DIGESTS = ("sha256", "sha1")  # FATE-Flow 1.9+ records an archive's SHA-256, 1.7/1.8's COS a SHA-1


@dataclass
class ImportReport:
    versions: dict[str, bytes] = field(default_factory=dict)      # ref -> commit id
    checkpoints: dict[str, bytes] = field(default_factory=dict)   # ref -> commit id
    unchanged: list[str] = field(default_factory=list)            # refs already holding this content
    new_stored_bytes: int = 0
    problems: list[str] = field(default_factory=list)             # checkpoints refused, with why
    archives: dict[str, dict] = field(default_factory=dict)       # ref -> the archive kept: sha256, layout cost

    def to_json(self) -> dict:
        return {"versions": {k: v.hex() for k, v in self.versions.items()},
                "checkpoints": {k: v.hex() for k, v in self.checkpoints.items()},
                "unchanged": self.unchanged, "new_stored_bytes": self.new_stored_bytes, "problems": self.problems,
                "archives": self.archives}


def import_source(repo, source: str, *, force: bool = False, meta: dict | None = None,
                  progress=None) -> ImportReport:
    """Import a FATE model_local_cache / party dir / version dir / archive .zip (FATE 1.x), or a
    FATE 2.x model storage directory, into the store; ``meta``: more metadata for every version
    it creates (``expires_at`` for FATE's ``ex``, see ``retention``)."""
    if not os.path.exists(source):
        raise CasregError(f"no such file or directory: {source}")
    if os.path.isdir(source):
        no_symlink_dir(os.path.abspath(source))
    if os.path.isdir(source) and not is_version_dir(source):
        v2 = find_v2_outputs(source)
        if v2:
            return _import_versions(repo, v2, force, progress, layout="2", extra=meta)
    if os.path.isfile(source):
        return import_archive(repo, source, force=force, meta=meta, progress=progress)
    return _import_versions(repo, find_versions(source), force, progress, extra=meta)


def import_archive(repo, archive: str, *, name: str | None = None, recorded: dict | None = None,
                   force: bool = False, meta: dict | None = None, progress=None,
                   report: ImportReport | None = None) -> ImportReport:
    """Import one FATE archive (a pipeline model's zip, or a 1.9+ component's), named as FATE names
    it (``name``, default the file's), and keep its layout so ``fate export`` rebuilds it bit for
    bit. ``recorded`` holds the digests FATE recorded for it (``sha256``, ``sha1``): an archive
    that does not match them is refused before anything is stored."""
    report = report if report is not None else ImportReport()
    name = name or os.path.basename(archive)
    unknown = sorted(set(recorded or {}) - set(RECORDED_DIGESTS))
    if unknown:
        raise InvalidInput(f"{name}: FATE records no {unknown[0]} digest (it records {', '.join(RECORDED_DIGESTS)})")
    digests = file_digests(archive, *RECORDED_DIGESTS)
    for algorithm, expected in (recorded or {}).items():
        if expected and expected.lower() != digests[algorithm]:
            raise Corrupt(f"{name}: {algorithm.upper()} {digests[algorithm]}, FATE recorded {expected}")
    members = _members(archive)
    if is_v2_archive(members):
        return _import_v2_archive(repo, archive, name, digests, force=force, meta=meta, progress=progress,
                                  report=report)
    component = archive_component(members)
    party, version = parse_archive_name(name, component)
    with tempfile.TemporaryDirectory(prefix="casreg-fate-") as tmp:
        target = join_inside(tmp, party, version)
        os.makedirs(target)
        extract_zip(archive, target)
        if component is None:
            _import_versions(repo, [(party, version, target)], force, progress, report=report, extra=meta)
            ref = pipeline_ref(party, version)
            if any(p.startswith(f"checkpoints/{party}/{version}/") for p in report.problems):
                report.problems.append(f"{ref}: archive not kept bit for bit (it holds refused checkpoint steps)")
                return report
        else:
            ref = component_ref(party, version, component)
            facts = {"framework": "fate", "party_model_id": party, "model_version": version, "fate_layout": "1",
                     "fate_kind": "component", "component": component, **(meta or {})}
            result = repo.commit(target, ref, message=f"fate import {party} {version} {component}", meta=facts,
                                 force=force, unchanged_ok=True, progress=progress)
            _record(report, report.versions, ref, result)
        _keep_layout(repo, report, ref, archive, target, digests)
    return report


def is_v2_archive(members: list[str]) -> bool:
    """Whether a zip of these member names is a FATE 2.x export zip: every file at a storage key
    ``<model_id>/<model_version>/<role>/<party_id>/<task_name>/<output_key>``."""
    files = [n for n in members if not n.endswith("/")]
    return bool(files) and all(len(parts) >= 6 and parts[2] in ROLES for parts in (n.split("/") for n in files))


def _import_v2_archive(repo, archive: str, name: str, digests: dict, *, force: bool, meta: dict | None,
                       progress, report: ImportReport) -> ImportReport:
    """A FATE 2.x export zip (``<model_id>_<model_version>_<role>_<party_id>.zip``): one version
    per party it holds, each keeping the archive's layout when it is the only one."""
    with tempfile.TemporaryDirectory(prefix="casreg-fate-") as tmp:
        extract_zip(archive, tmp)
        found = find_v2_outputs(tmp)
        if not found:
            raise CasregError(f"{name}: no <model_id>/<model_version>/<role>/<party_id>/ in this FATE 2.x archive")
        stem = name[:-4] if name.endswith(".zip") else name
        expected = {f"{p.split('#', 2)[2]}_{v}_{p.split('#', 2)[0]}_{p.split('#', 2)[1]}" for p, v, _ in found}
        if len(found) == 1 and stem not in expected:
            raise CasregError(f"{name} holds {found[0][0]} {found[0][1]} but is not named "
                              f"{expected.pop()}.zip")
        _import_versions(repo, found, force, progress, layout="2", report=report, extra=meta)
        if len(found) == 1:
            party, version, path = found[0]
            role, party_id, model_id = party.split("#", 2)
            _keep_layout(repo, report, pipeline_ref(party, version), archive, path, digests,
                         root=f"{model_id}/{version}/{role}/{party_id}/")
    return report


def _members(archive: str) -> list[str]:
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise Corrupt(f"{os.path.basename(archive)} is not a valid zip archive: {exc}") from None


def archive_component(members: list[str]) -> str | None:
    """From a zip's member names: the component a FATE 1.9+ component archive holds (only ``variables/data/<component>/`` and
    ``checkpoint/<component>/``), or None for a pipeline model's archive."""
    found = set()
    for member in members:
        parts = member.split("/")
        if parts[:2] == ["variables", "data"] and len(parts) > 2 and parts[2]:
            found.add(parts[2])
        elif parts[0] == "checkpoint" and len(parts) > 1 and parts[1]:
            found.add(parts[1])
        elif member not in ("variables/", "variables/data/", "checkpoint/"):
            return None
    return found.pop() if len(found) == 1 else None


def _keep_layout(repo, report: ImportReport, ref: str, archive: str, extracted: str, digests: dict,
                 root: str = "") -> None:
    """Attach the archive's layout to the version ``ref`` names (once per archive); the
    version's files are the archive's members under ``root``."""
    version = repo.resolve(ref)
    path = f"{LAYOUTS}{digests['sha256']}"
    meta = notes.read(repo, version)
    if meta.get("fate_archive_sha256") == digests["sha256"] and notes.attachment(repo, version, path, io.BytesIO()):
        report.archives[ref] = {"sha256": digests["sha256"], "unchanged": True}
        return
    files = {row["path"] for row in repo.ls(version.hex()) if row["kind"] == "file"}

    def open_file(member: str):
        inside = member[len(root):] if member.startswith(root) else ""
        return open(os.path.join(extracted, inside), "rb") if inside in files else None
    layout = ziplayout.describe(archive, open_file)
    with tempfile.NamedTemporaryFile(prefix="casreg-layout-") as f:
        f.write(layout.encode())
        f.flush()
        notes.attach(repo, version, {path: f.name}, message=f"fate: layout of archive {digests['sha256'][:12]}",
                     updates={"fate_archive_sha256": digests["sha256"], "fate_archive_sha1": digests["sha1"],
                              **({"fate_archive_root": root} if root else {})})
    report.archives[ref] = {"sha256": digests["sha256"], "sha1": digests["sha1"], "archive_bytes": layout.size,
                            "layout_bytes": len(layout.encode()), "verbatim_bytes": layout.kept_bytes}


def _import_versions(repo, versions, force: bool, progress, layout: str = "1",
                     report: ImportReport | None = None, extra: dict | None = None) -> ImportReport:
    report = report if report is not None else ImportReport()
    # every name is checked (it must make a legal ref) before anything is stored
    plan = [(party, version, path, pipeline_ref(party, version),
             [(*step, checkpoint_ref(party, version, *step[:3])) for step in checkpoint_steps(path)])
            for party, version, path in versions]
    for party, version, path, ref, steps in plan:
        role, party_id, _ = party.split("#", 2)
        meta = {"framework": "fate", "party_model_id": party, "model_version": version, "fate_layout": layout,
                "role": role, "party_id": party_id, **(version_facts(path) if layout == "1" else {}), **(extra or {})}
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


