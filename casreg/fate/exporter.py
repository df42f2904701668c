"""A version back in FATE's form: its directory layout (1.x or 2.x), or FATE's archive."""

from __future__ import annotations

import os
import tempfile
import zipfile

from ..errors import CasregError, UnsafePath
from ..safepath import join_inside
from .layout import file_digest
from .names import check_party_model_id, check_version


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
    return file_digest(dest, "sha256")


