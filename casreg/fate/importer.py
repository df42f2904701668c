"""FATE models into the store: one version per model version, one ref per checkpoint step
(sharing every object with the version), refused steps reported and left out."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from ..archive import extract_zip
from ..errors import CasregError
from ..ignore import literal
from ..safepath import join_inside
from .layout import check_checkpoint, checkpoint_steps, find_v2_outputs, find_versions, is_version_dir, no_symlink_dir
from .names import checkpoint_ref, parse_archive_name, pipeline_ref


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


def import_source(repo, source: str, *, force: bool = False, progress=None) -> ImportReport:
    """Import a FATE model_local_cache / party dir / version dir / archive .zip (FATE 1.x), or a
    FATE 2.x model storage directory, into the store."""
    if not os.path.exists(source):
        raise CasregError(f"no such file or directory: {source}")
    if os.path.isdir(source):
        no_symlink_dir(os.path.abspath(source))
    if os.path.isdir(source) and not is_version_dir(source):
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


