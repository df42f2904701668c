"""A checkpoint step deployed as a new pipeline version, the way FATE-Flow 1.11's deploy makes one.

The new version is the parent's files with: the step's models in
``variables/data/<component>/<alias>/`` (``<name>.pb`` renamed ``<name>``; ``<name>.json`` and
``database.yaml`` beside them, dot-files left out), no ``checkpoint/`` directory, and the
``Pipeline`` message (``variables/data/pipeline/pipeline/Pipeline``, ``Pipeline.json`` beside it,
and a 1.8 root ``pipeline.pb``) rewritten for the child version (``pipeline.deployed``). Only the
rewritten files, trees and a commit are new: every other file is shared with the parent and the
step.
"""

from __future__ import annotations

import io
import os
import tempfile

from ..errors import CasregError, NotFound
from ..objects.encoding import FILE, TREE, Tree, TreeEntry
from ..refs import check_ref_name
from .checkpoints import find_checkpoint
from .names import pipeline_ref
from .pipeline import PIPELINE_PATHS, WireError, as_json, decode_pipeline, deployed, encode_pipeline

PIPELINE = PIPELINE_PATHS[0]
NOT_INHERITED = ("fate_archive_sha256", "fate_archive_sha1", "expires_at")


def _read(repo, version: bytes, path: str) -> bytes | None:
    out = io.BytesIO()
    try:
        repo.cat(f"{version.hex()}:{path}", out)
    except NotFound:
        return None
    return out.getvalue()


def _rewritten(repo, base_id: bytes, party_model_id: str, version: str, new_version: str) -> dict[str, bytes]:
    """path -> new content of the parent's Pipeline files."""
    out: dict[str, bytes] = {}
    model_id = party_model_id.split("#", 2)[2]
    for path in PIPELINE_PATHS:
        data = _read(repo, base_id, path)
        if data is None:
            continue
        try:
            fields = decode_pipeline(data)
        except WireError as exc:
            raise CasregError(f"cannot deploy: {path} of {version} is not a FATE Pipeline message ({exc})") from None
        if encode_pipeline(fields) != data:
            raise CasregError(f"cannot deploy: {path} of {version} holds fields casreg does not know; "
                              "rewriting it would lose them")
        child = deployed(fields, model_id, version, new_version)
        out[path] = encode_pipeline(child)
        if path == PIPELINE:
            old_json = _read(repo, base_id, f"{PIPELINE}.json")
            if old_json is not None:
                out[f"{PIPELINE}.json"] = as_json(child, like=old_json)
    return out


def deploy_checkpoint(repo, party_model_id: str, version: str, component: str, step: str, new_version: str,
                      *, alias: str = "model") -> bytes:
    """Create ``models/<party_model_id>/<new_version>`` from checkpoint ``step`` (index or name)
    of ``component``; returns the new version's id. The name must be new."""
    base_ref = pipeline_ref(party_model_id, version)
    step_ref = find_checkpoint(repo, party_model_id, version, component, step)
    target = pipeline_ref(party_model_id, new_version)
    check_ref_name(alias)
    base_id = repo.resolve(base_ref)
    base = repo.read_commit(base_id)
    with repo.db.read() as txn:
        step_tree = repo.objects.load(txn, repo.read_commit(repo.resolve(step_ref)).tree, TREE)
    files = [TreeEntry(e.name[:-3] if e.name.endswith(".pb") else e.name, FILE, e.mode, e.size, id=e.id)
             for e in step_tree.entries if e.kind == FILE and not e.name.startswith(".")]
    if not any(e.name != "database.yaml" for e in files):
        raise CasregError(f"{step_ref} holds no model files")
    with repo.protected_from_gc(), tempfile.TemporaryDirectory(prefix="casreg-deploy-") as tmp:
        staged: dict = {}
        folder = repo._stage(staged, TREE, Tree(files).encode())
        edits: dict = {f"variables/data/{component}/{alias}": TreeEntry(alias, "tree", 0o755,
                                                                      sum(f.size for f in files), id=folder),
                       "checkpoint": None}
        paths = {}
        for n, (path, data) in enumerate(_rewritten(repo, base_id, party_model_id, version, new_version).items()):
            paths[path] = os.path.join(tmp, str(n))
            with open(paths[path], "wb") as f:
                f.write(data)
        edits.update(repo.stage_files(paths, staged))
        tree_id, _ = repo.tree_edit(base.tree, edits, staged)
        meta = {k: v for k, v in base.meta.items() if k not in NOT_INHERITED}
        meta.update(model_version=new_version, deployed_from=step_ref, fate_parent=False)
        return repo.commit_tree(tree_id, target, staged=staged, parents=[base_id], meta=meta,
                                message=f"deploy {step_ref}", expected=None)
