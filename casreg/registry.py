"""``casreg.Registry``: the model-registry API (what the CLI calls), on top of the store.

Everything is a ref, so every change is compare-and-swap and lands in the reflog:
- versions ``models/<party_model_id>/<version>``, checkpoints ``checkpoints/.../<step_index>#<step_name>``;
- tags ``tags/<name>`` (description in the tag's reflog entry, as FATE-Flow's ``flow tag``);
- aliases ``aliases/<party_model_id>/<alias>`` (e.g. ``production``), moved with ``expect_old``;
- model-level metadata ``modelmeta/<party_model_id>``: a commit of the empty tree whose metadata
  map holds description, author, framework, custom properties and state;
- a version's metadata and state change beside it (``notes``: ``notes/<version id>``), so
  its id, tags and aliases stay; a model's metadata is a chain of its own (same tree, old one as parent).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from . import catalog, notes
from .errors import AlreadyExists, InvalidInput, NotFound
from .metadata import matches
from .objects.encoding import TREE, Tree
from .refs import ANY, check_ref_name
from .repo import STORE_DIR, CommitResult, Repository, default_author

if TYPE_CHECKING:  # the fate package is imported by the methods that use it (start-up time)
    from . import fate

log = logging.getLogger("casreg")

STATES = ("LIVE", "ARCHIVED")


class Registry(Repository):
    def __init__(self, path: str, *, readonly: bool = False):
        """``path``: a store directory, or a project directory holding ``.casreg``."""
        store = os.path.join(path, STORE_DIR)
        super().__init__(store if os.path.isdir(store) else path, readonly=readonly)

    # -- auto-sync (FATE's enable_model_store): the API does it, so every face does the same --------
    def commit(self, path: str, ref: str, **options) -> CommitResult:
        """``Repository.commit``, then, with auto-sync on, a push of ``ref`` to the default remote
        (in ``result.pushed``)."""
        from .remotes import ops
        result = super().commit(path, ref, **options)
        if result.moved:
            result.pushed = ops.auto_push(self, ref) or []
        return result

    def wants_fetch(self, spec: str) -> bool:
        """True when auto-sync is on and ``spec`` must first be fetched from the default remote."""
        from .remotes import ops
        return ops.wants_fetch(self, spec)

    def checkout(self, spec: str, dest: str, **options) -> bytes:
        """``Repository.checkout``; with auto-sync on, a version not here is pulled first."""
        from .remotes import ops
        if self.wants_fetch(spec):
            remote = ops.auto_fetch(self, spec)
            log.info("fetched %s from %s", spec.partition(":")[0], remote)
        return super().checkout(spec, dest, **options)

    # -- FATE ----------------------------------------------------------------------------------------
    def fate_import(self, source: str, *, force: bool = False, recorded: dict | None = None,
                    ttl: float | None = None, progress=None) -> fate.ImportReport:
        """Import FATE models (see ``fate.import_source``); ``recorded``: the digests FATE recorded
        for an archive (``sha256``, ``sha1``), checked before anything is stored; ``ttl``: FATE's
        ``ex``, seconds after which the new versions' names expire (``retention.expire``).

        FATE-Flow hashes the zip it packaged (``shutil.make_archive``, mtimes and all) and checks
        that file before unpacking it; a directory has no such bytes, and a zip built from it
        would not be FATE's, so ``recorded`` with a directory is refused (InvalidInput)."""
        import time

        from . import fate
        from .retention import EXPIRES_KEY
        if ttl is not None and not ttl > 0:
            raise InvalidInput(f"a time to live is a number of seconds above 0, not {ttl}")
        if recorded and os.path.isdir(source):
            raise InvalidInput(f"{source} is a directory: recorded digests apply to an archive (FATE-Flow "
                               f"hashes the zip it packaged); import the .zip FATE-Flow made")
        meta = {EXPIRES_KEY: int(time.time() + ttl)} if ttl else None
        if recorded and os.path.isfile(source):
            return fate.import_archive(self, source, recorded=recorded, force=force, meta=meta, progress=progress)
        return fate.import_source(self, source, force=force, meta=meta, progress=progress)

    def fate_import_store(self, *, fate_config: str | None = None, url: str | None = None,
                          only: list[str] | tuple = (), force: bool = False, progress=None) -> fate.ImportReport:
        """Import what FATE-Flow stored in its model store (a service_conf.yaml or a store URL):
        every model, or the party model ids / ``<party_model_id>/<version>`` in ``only``."""
        from .fate import stores
        with stores.open_store(fate_config, url) as store:
            return stores.import_store(self, store, only=only, force=force, progress=progress)

    def fate_store(self, spec: str, *, fate_config: str | None = None, url: str | None = None,
                   layout: str | None = None, force: bool = False):
        """Write a FATE version into FATE-Flow's model store in FATE's own format, so FATE-Flow's
        restore and load find it (``fate.stores.store_version``)."""
        from .fate import stores
        with stores.open_store(fate_config, url) as store:
            return stores.store_version(self, spec, store, layout=layout, force=force)

    def fate_export(self, spec: str, dest: str, *, force: bool = False, fresh: bool = False) -> fate.Exported:
        from . import fate
        return fate.export(self, spec, dest, force=force, fresh=fresh)

    # -- the catalog: models, versions, aliases (any model name) ---------------------------------
    def models(self, where: dict | None = None) -> list[dict]:
        """Every model; with ``where`` (``metadata.matches``), those whose own metadata or one of
        whose versions' metadata matches."""
        rows = catalog.models(self)
        for row in rows:
            meta = self.model_meta(row["model"])
            row["state"] = meta.get("state", "LIVE")
            row["description"] = meta.get("description", "")
        if where:
            rows = [row for row in rows if matches(self.model_meta(row["model"]), where)
                    or (row["versions"] and self.versions(row["model"], where))]
        return rows

    def versions(self, model: str, where: dict | None = None) -> list[dict]:
        """The named versions of ``model``, a dict each; with ``where``, those whose metadata matches."""
        return self.version_table(model, where).rows()

    def version_table(self, model: str, where: dict | None = None) -> catalog.VersionTable:
        """``versions`` as columns (``catalog.VersionTable``: what a listing of many versions formats)."""
        table = catalog.version_table(self, model)
        if where:
            table = table.select([i for i, cid in enumerate(table.id)
                                  if matches(notes.read(self, bytes.fromhex(cid)), where)])
        return table

    def checkpoints(self, party_model_id: str, version: str) -> list[dict]:
        from . import fate
        return fate.list_checkpoints(self, party_model_id, version)

    def checkpoint_get(self, party_model_id: str, version: str, component: str, step: str, dest: str,
                       *, force: bool = False) -> str:
        from . import fate
        ref = fate.find_checkpoint(self, party_model_id, version, component, step)
        self.checkout(ref, dest, force=force)
        return ref

    def deploy_checkpoint(self, party_model_id: str, version: str, component: str, step: str,
                          new_version: str, *, alias: str = "model") -> bytes:
        """A new pipeline version from a checkpoint step, as FATE-Flow's deploy makes one
        (``fate.deploy``): the step's models in ``variables/data/<component>/<alias>/``, the
        Pipeline message rewritten for the new version, every other file shared."""
        from .fate.deploy import deploy_checkpoint
        return deploy_checkpoint(self, party_model_id, version, component, step, new_version, alias=alias)

    # -- tags and aliases ---------------------------------------------------------------------------
    def tag(self, name: str, target: str, *, description: str = "", force: bool = False) -> bytes:
        ref = check_ref_name(f"tags/{name}")
        new = self.resolve(target)
        with self.db.read() as txn:
            exists = self.refs.get(txn, ref) is not None
        if exists and not force:
            raise AlreadyExists(f"tag {name} already exists; use --force to move it")
        self.db.write(lambda txn: self.refs.set_if_equals(txn, ref, ANY if force else None, new,
                                                           who=default_author(), message=f"tag: {description}"))
        return new

    def tags(self) -> list[dict]:
        rows = []
        for ref, cid in self.list_refs("tags/"):
            last = self.reflog(ref)[0]
            description = last["message"][len("tag: "):] if last["message"].startswith("tag: ") else ""
            rows.append({"name": ref[len("tags/"):], "target": cid.hex(), "description": description})
        return rows

    def set_alias(self, model: str, alias: str, version: str, *, expect_old: str | None = None,
                  force: bool = False) -> bytes:
        """Point ``aliases/<model>/<alias>`` at a version: one of the model's version names, or
        any version spec."""
        target = catalog.version_ref(model, version)
        if not dict(self.list_refs(target)).get(target):
            target = version
        return self.update_ref(catalog.alias_ref(model, alias), target, expect_old=expect_old,
                               force=force, message=f"alias {alias} -> {version}")

    def aliases(self, model: str) -> dict[str, str]:
        return catalog.aliases(self, model)

    # -- metadata and state -------------------------------------------------------------------------
    def model_meta(self, model: str) -> dict:
        # the ref itself, not resolve(): a miss there suggests close names, a scan of every ref
        with self.db.read() as txn:
            chain = self.refs.get(txn, catalog.model_meta_ref(model))
        return dict(self.read_commit(chain).meta) if chain is not None else {}

    def set_model_meta(self, model: str, updates: dict, *, remove: list[str] | tuple = ()) -> bytes:
        if not catalog.model_exists(self, catalog.check_model(model)):
            raise NotFound(f"no versions of model {model}")
        ref = catalog.model_meta_ref(model)
        try:
            return self.amend_chain(ref, updates, remove=remove)
        except NotFound:
            staged: dict = {}
            empty = self._stage(staged, TREE, Tree([]).encode())
            meta = {k: v for k, v in updates.items() if k not in set(remove)}
            return self.commit_tree(empty, ref, staged=staged, meta=meta, expected=None, message="model metadata")

    def set_state(self, spec: str, state: str, *, model: bool = False) -> bytes:
        state = state.upper()
        if state not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}")
        return self.set_model_meta(spec, {"state": state}) if model else self.set_meta(spec, {"state": state})

    # -- delete / restore ---------------------------------------------------------------------------
    def delete_version(self, ref: str) -> bytes:
        """Remove a version's ref; it stays restorable from the reflog until ``gc``."""
        return self.delete_ref(ref)

    # -- retention ---------------------------------------------------------------------------------
    def retain(self, model: str, policy, *, dry_run: bool = False, save: bool = False, remote: str | None = None):
        """Delete the names of ``model``'s versions ``policy`` (a ``retention.Policy``) does not
        keep; with ``save`` the policy is kept with the model and applied by every ``gc``."""
        from . import retention
        policy.check()
        if save and not dry_run:
            self.set_model_meta(model, {retention.POLICY_KEY: policy.to_json()})
        return retention.apply(self, model, policy, dry_run=dry_run, remote=remote)

    def gc(self, dry_run: bool = False, prune: str | None = None, compact: bool | None = None) -> dict:
        """``Repository.gc``, after the names of expired versions are deleted and every saved
        retention policy (``retain --save``) is applied."""
        from . import retention
        expired = retention.expire(self, dry_run=dry_run)
        applied = {model: retention.apply(self, model, policy, dry_run=dry_run).to_json()
                   for model, policy in retention.saved_policies(self).items()}
        result = super().gc(dry_run=dry_run, prune=prune, compact=compact)
        if applied:
            result["retention"] = applied
        if expired:
            result["expired"] = expired
        return result

    def gc_remote(self, remote: str, *, dry_run: bool = False, grace: str | None = None,
                  compact: bool | None = None):
        """Delete what no ref of ``remote`` reaches, safe beside other sites' pushes
        (``remotes/gc.py``): a ``RemoteGcResult``. ``grace`` (default 1d) must exceed the longest
        push; ``now`` deletes at once what no ref reaches (unsafe while others push)."""
        from .remotes import ops
        return ops.gc_remote(self, remote, dry_run=dry_run, grace=grace, compact=compact)

    def restore_version(self, ref: str) -> bytes:
        """Bring back a deleted ref to where it pointed before its deletion."""
        newest = self.reflog(ref)[0]
        if newest["new"] is not None or not newest["old"]:
            raise InvalidInput(f"{ref} is not deleted")
        with self.db.read() as txn:
            if not self.objects.has(txn, bytes.fromhex(newest["old"])):
                raise NotFound(f"{ref} was garbage-collected; it cannot be restored")
        return self.update_ref(ref, newest["old"], expect_old="none", message="restore")

    # -- remotes ------------------------------------------------------------------------------------
    def push(self, remote: str, refs: list[str], *, all_refs: bool = False, force: bool = False, progress=None):
        from .remotes import ops
        return ops.push_refs(self, remote, refs, all_refs=all_refs, force=force, progress=progress)

    def fetch(self, remote: str, refs: list[str] | None = None, progress=None):
        from .remotes import ops
        return ops.fetch_refs(self, remote, refs, progress=progress)

    def pull(self, remote: str, ref: str, *, force: bool = False, progress=None):
        from .remotes import ops
        return ops.pull_ref(self, remote, ref, force=force, progress=progress)


    # -- browsing: pages by catalog id, footprints, ranged file reads (casreg serve's REST API) -------
    def model_page(self, *, offset: int = 0, limit: int = 50, query: str = "") -> dict:
        from . import browse
        return browse.model_page(self, offset=offset, limit=limit, query=query)

    def model_detail(self, model: str) -> dict:
        from . import browse
        return browse.model_detail(self, model)

    def version_page(self, model: str, *, offset: int = 0, limit: int = 50) -> dict:
        """``model``'s versions newest first, a page at a time (``browse.version_page``)."""
        from . import browse
        return browse.version_page(self, model, offset=offset, limit=limit)

    def version_detail(self, ref: str) -> dict:
        from . import browse
        return browse.version_detail(self, ref)

    def version_history(self, ref: str) -> dict:
        from . import browse
        return browse.version_history(self, ref)

    def model_of_id(self, number: int | str) -> str:
        from . import browse
        return browse.model_of_id(self, number)

    def version_of_id(self, number: int | str) -> str:
        from . import browse
        return browse.version_of_id(self, number)

    def model_id(self, model: str) -> int:
        from . import browse
        return browse.model_id(self, model)

    def footprint(self, spec: str, baseline: str | None = None):
        """``footprint.Footprint`` of a version (``new_*`` against ``baseline``)."""
        from .footprint import footprint
        return footprint(self, self.resolve(spec), self.resolve(baseline) if baseline else None)

    def file_info(self, spec: str, path: str):
        """``fileread.FileInfo`` of one file of a version."""
        from . import fileread
        return fileread.file_info(self, spec, path)

    def read_range(self, content_id: bytes, start: int = 0, stop: int | None = None, **options):
        """Bytes ``[start, stop)`` of a file by its content id, in pieces (``fileread.read_range``)."""
        from . import fileread
        return fileread.read_range(self, content_id, start, stop, **options)

    def delete_tag(self, name: str) -> bytes:
        return self.delete_ref(check_ref_name(f"tags/{name}"))

    def delete_alias(self, model: str, alias: str) -> bytes:
        return self.delete_ref(catalog.alias_ref(model, alias))

    # -- FATE-Serving: service ids bound to versions, published over gRPC (fate/publish.py) -----------
    def serving_bind(self, service_id: str, model: str, version: str, *, expect_old: str | None = None) -> bytes:
        """Point ``serving/<service_id>`` at FATE version ``model``/``version`` (compare-and-swap)."""
        from .fate import publish
        return publish.bind(self, service_id, model, version, expect_old=expect_old)

    def serving_unbind(self, service_id: str, *, expect_old: str | None = None) -> bytes:
        from .fate import publish
        return publish.unbind(self, service_id, expect_old=expect_old)

    def serving_list(self) -> list[dict]:
        from .fate import publish
        return publish.bindings(self)

    def serving_history(self, service_id: str) -> list[dict]:
        from .fate import publish
        return publish.history(self, service_id)

    def serving_publish(self, service_id: str, servings: list[str], *, transfer_url: str | None = None,
                        timeout: float = 30.0):
        """publishLoad then publishBind of the bound version to FATE-Serving (``fate.publish.publish``)."""
        from .fate import publish
        return publish.publish(self, service_id, servings, transfer_url=transfer_url, timeout=timeout)


__all__ = ["Registry", "STATES"]
