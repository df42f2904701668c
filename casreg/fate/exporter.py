"""A version back in FATE's form: its directory layout (1.x or 2.x), or FATE's archive."""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass

from .. import notes, ziplayout
from ..errors import CasregError, Corrupt, UnsafePath
from ..safepath import join_inside
from .layout import file_digests
from .names import LAYOUTS, check_party_model_id, check_version


def _name(value) -> str:
    """A FATE name from metadata: text, or a number typed from it (``--meta model_version=2024``)."""
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""


@dataclass
class Exported:
    """What ``export`` wrote: a directory, or an archive with its digests (FATE-Flow 1.9+ records
    the SHA-256 and checks it on restore; 1.7/1.8 keep the SHA-1 in ``<archive>.sha1``).
    ``identical``: the archive is the one the version was imported from, bit for bit."""
    path: str
    sha256: str | None = None
    sha1: str | None = None
    identical: bool = False

    def to_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "sha1": self.sha1, "identical": self.identical}


def export(repo, spec: str, dest: str, *, force: bool = False, fresh: bool = False) -> Exported:
    """Write a version back in FATE's layout: a directory, or FATE's archive form for ``*.zip``:
    the archive the version was imported from, rebuilt bit for bit from its layout, or (none
    kept, or ``fresh``) a new one packed the way FATE-Flow packs it."""
    meta = repo.metadata(spec)
    if not dest.endswith(".zip"):
        if _name(meta.get("fate_layout")) == "2":  # back under <model_id>/<version>/<role>/<party_id>/
            try:
                role, party_id, model_id = check_party_model_id(_name(meta.get("party_model_id"))).split("#", 2)
                version = check_version(_name(meta.get("model_version")))
            except CasregError as exc:
                raise UnsafePath(f"cannot export {spec}: its metadata names no FATE 2.x location: {exc}") from None
            dest = join_inside(dest, model_id, version, role, party_id)
        repo.checkout(spec, dest, force=force)
        return Exported(os.path.abspath(dest))
    if os.path.exists(dest) and not force:
        raise CasregError(f"{dest} exists; use --force to replace it")
    version = repo.resolve(spec)
    layout = None if fresh else _layout(repo, version, meta)
    root = _name(meta.get("fate_archive_root")) if layout is not None else ""
    with tempfile.TemporaryDirectory(prefix="casreg-fate-", dir=os.path.dirname(os.path.abspath(dest))) as tmp:
        tree = os.path.join(tmp, "tree")
        repo.checkout(version.hex(), tree)
        partial = os.path.join(tmp, "archive.zip")
        if layout is not None:
            def open_file(member: str):
                if not member.startswith(root):
                    return None
                path = os.path.join(tree, member[len(root):])
                return open(path, "rb") if os.path.isfile(path) and not os.path.islink(path) else None
            with open(partial, "wb") as out:
                ziplayout.rebuild(layout, open_file, out)
        else:
            _pack(spec, tree, partial)
        digests = file_digests(partial, "sha256", "sha1")
        if layout is not None and digests["sha256"] != layout.sha256:
            raise Corrupt(f"the archive rebuilt from {spec}'s layout has SHA-256 {digests['sha256']}, not "
                          f"{layout.sha256}; use --fresh for a newly packed archive")
        os.replace(partial, dest)
    return Exported(os.path.abspath(dest), digests["sha256"], digests["sha1"], identical=layout is not None)


def _layout(repo, version: bytes, meta: dict) -> ziplayout.Layout | None:
    """The layout of the archive ``version`` (whose metadata is ``meta``) was last imported from,
    if one was kept."""
    sha256 = _name(meta.get("fate_archive_sha256"))
    buf = io.BytesIO()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not notes.attachment(repo, version, LAYOUTS + sha256, buf):
        return None
    layout = ziplayout.Layout.decode(buf.getvalue())
    if layout.sha256 != sha256:
        raise Corrupt(f"the archive layout kept for {version.hex()[:12]} describes {layout.sha256}, not {sha256}")
    return layout


def _pack(spec: str, tree: str, partial: str) -> None:
    """A new archive of ``tree`` as FATE-Flow packs one (``shutil.make_archive``: deflated,
    directory entries, parents before children; names sorted here, times those of the checkout)."""
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
