"""FATE-Flow's model stores and the registry: ``fate import`` from one, ``fate store`` into one.

The store formats are ``fatestores``' (FATE's rows, keys and objects, nothing of casreg's); this
module moves archives between them and the registry:

- import: every archive the store lists (or those of the party model ids / versions named) is read,
  checked against the hashes FATE recorded, and imported as an archive file is (``import_archive``:
  kept bit for bit). A FATE 2.x store's task outputs are gathered per party and imported as a 2.x
  version. A damaged entry is reported by name and skipped whole; the others go on. Importing again
  stores nothing and moves no name. A store with ``ex`` (FATE 1.7/1.8's Redis TTL) gives the new
  names ``expires_at`` = now + ex.
- store: a version goes back as FATE-Flow writes it: a 1.x pipeline or component as its archive
  (the imported one, bit for bit, when casreg kept it, so FATE-Flow's recorded SHA-256 matches), a
  2.x version as one object per task output.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from .. import fatestores
from ..errors import CasregError, InvalidInput
from ..safepath import join_inside
from .exporter import _name, export
from .importer import ImportReport, _import_versions, import_archive
from .names import check_party_model_id, check_version


def open_store(fate_config: str | None = None, url: str | None = None) -> fatestores.FateStore:
    """The FATE store a service_conf.yaml or a store URL names (exactly one of the two)."""
    if bool(fate_config) == bool(url):
        raise InvalidInput("name a FATE store: --fate-config service_conf.yaml or a store URL (not both)")
    return fatestores.open_conf(fate_config) if fate_config else fatestores.open_url(str(url))


def _wanted(entry: fatestores.Entry, only: list[str]) -> bool:
    """``only``: party model ids, or ``<party_model_id>/<model_version>``; empty: everything."""
    return not only or any(o in (entry.party_model_id, f"{entry.party_model_id}/{entry.model_version}")
                           for o in only)


def import_store(repo, store: fatestores.FateStore, *, only: list[str] | tuple = (), force: bool = False,
                 progress=None) -> ImportReport:
    report = ImportReport()
    meta = None
    if store.location.ex:
        import time

        from ..retention import EXPIRES_KEY
        meta = {EXPIRES_KEY: int(time.time() + store.location.ex)}
    entries = sorted((e for e in store.entries() if _wanted(e, list(only))), key=lambda e: e.sort_key)
    if only and not entries:
        raise CasregError(f"{store.location} holds none of {', '.join(only)}")
    v2: dict[tuple[str, str], list[fatestores.Archive]] = {}
    with tempfile.TemporaryDirectory(prefix="casreg-fatestore-") as tmp:
        for n, entry in enumerate(entries):
            try:  # a 1.x archive's recorded hashes are checked by import_archive, with its own digests
                archive = store.read(entry)
                if entry.layout == fatestores.LAYOUT_2:
                    archive.check()
            except (CasregError, ValueError) as exc:
                report.problems.append(f"{entry}: {exc}")
                continue
            if entry.layout == fatestores.LAYOUT_2:
                v2.setdefault((entry.party_model_id, entry.model_version), []).append(archive)
                continue
            name = f"{entry.party_model_id}_{entry.model_version}" + (f"_{entry.component}" if entry.component
                                                                     else "") + ".zip"
            path = os.path.join(tmp, f"{n}.zip")
            with open(path, "wb") as f:
                f.write(archive.data)
            try:
                import_archive(repo, path, name=name, recorded={"sha256": archive.recorded_sha256 or "",
                                                                "sha1": archive.recorded_sha1 or ""},
                               force=force, meta=meta, progress=progress, report=report)
            except CasregError as exc:
                report.problems.append(f"{entry}: {exc}")
            finally:
                os.remove(path)
        for n, ((party, version), outputs) in enumerate(sorted(v2.items())):
            party_dir = os.path.join(tmp, "v2", str(n))
            for archive in outputs:
                path = join_inside(party_dir, archive.entry.component or "", archive.entry.output_key or "")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(archive.data)
            try:
                _import_versions(repo, [(party, version, party_dir)], force, progress, layout="2", report=report,
                                 extra=meta)
            except CasregError as exc:
                report.problems.append(f"{party} {version}: {exc}")
    return report


@dataclass
class Stored:
    """What ``store_version`` wrote into a FATE store."""
    ref: str
    entries: list[str] = field(default_factory=list)
    sha256: str | None = None
    identical: bool = False

    def to_json(self) -> dict:
        return {"ref": self.ref, "entries": self.entries, "sha256": self.sha256, "identical": self.identical}


def store_version(repo, spec: str, store: fatestores.FateStore, *, layout: str | None = None,
                  force: bool = False) -> Stored:
    """Write the FATE version ``spec`` names into ``store`` in FATE's own format."""
    meta = repo.metadata(spec)
    try:
        party = check_party_model_id(_name(meta.get("party_model_id")))
        version = check_version(_name(meta.get("model_version")))
    except CasregError as exc:
        raise InvalidInput(f"{spec} is not a FATE version (its metadata names no party model id and "
                           f"version): {exc}") from None
    done = Stored(spec)
    with tempfile.TemporaryDirectory(prefix="casreg-fatestore-") as tmp:
        if _name(meta.get("fate_layout")) == "2":
            tree = os.path.join(tmp, "tree")
            repo.checkout(spec, tree)
            for row in repo.ls(spec):
                task, _, key = row["path"].partition("/")
                if row["kind"] != "file" or not key or "/" in key:
                    continue
                with open(os.path.join(tree, row["path"]), "rb") as f:
                    entry = store.write(party, version, f.read(), component=task, output_key=key,
                                        layout=fatestores.LAYOUT_2, force=force)
                done.entries.append(str(entry))
            return done
        archive = os.path.join(tmp, "archive.zip")
        exported = export(repo, spec, archive)
        component = _name(meta.get("component")) if _name(meta.get("fate_kind")) == "component" else None
        with open(archive, "rb") as f:
            entry = store.write(party, version, f.read(), component=component, layout=layout, force=force)
        done.entries.append(str(entry))
        done.sha256, done.identical = exported.sha256, exported.identical
    return done
