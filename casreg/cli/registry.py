"""Registry commands: fate import/export, models, versions, checkpoints, tags, aliases, metadata,
state, delete and restore."""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer

from ..metadata import parse_pairs
from .base import JSON_OPTION, WHERE_OPTION, _emit, _pairs, _print_columns, _progress, _repo, _table, _when, app, human

fate_app = typer.Typer(help="FATE-Flow models: import and export model_local_cache trees and archives.",
                       no_args_is_help=True)
app.add_typer(fate_app, name="fate")
checkpoint_app = typer.Typer(help="FATE checkpoints (like `flow checkpoint list/get`).", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")


@fate_app.command("import")
def fate_import(source: Optional[str] = typer.Argument(None, help="model_local_cache dir, party dir, version dir "
                                                                  "or FATE .zip"),
                fate_config: Optional[str] = typer.Option(None, "--fate-config", metavar="FILE",
                                                          help="Import from the model store FATE-Flow's "
                                                               "service_conf.yaml names."),
                store_url: Optional[str] = typer.Option(None, "--from", metavar="URL",
                                                        help="Import from a FATE model store: mysql://, redis://, "
                                                             "cos://, file://."),
                only: List[str] = typer.Option([], "--model", metavar="PARTY_MODEL_ID[/VERSION]",
                                               help="With a store: only these (repeatable)."),
                force: bool = typer.Option(False, "--force", "-f", help="Replace versions whose content differs."),
                ttl: Optional[str] = typer.Option(None, "--ttl", metavar="DURATION",
                                                  help="Names expire after DURATION (FATE's ex: 3600s, 7d); "
                                                       "the next gc deletes them."),
                as_json: bool = JSON_OPTION) -> None:
    """One pipeline version per model version, one ref per checkpoint step; shared chunks stored once.
    From a directory or archive, or from FATE-Flow's own model store (MySQL, Redis, COS, 2.x files)."""
    from ..errors import InvalidInput
    from ..timespec import parse_duration
    if (source is not None) + bool(fate_config) + bool(store_url) != 1:
        raise InvalidInput("import from one place: a directory or .zip, --fate-config FILE, or --from URL")
    with _repo() as repo:
        if source is not None:
            report = repo.fate_import(source, force=force, ttl=parse_duration(ttl) if ttl else None,
                                      progress=_progress(not as_json))
        else:
            if ttl:
                raise InvalidInput("--ttl is for a directory or .zip; a FATE store's own ex applies")
            report = repo.fate_import_store(fate_config=fate_config, url=store_url, only=only, force=force,
                                            progress=_progress(not as_json))
    if as_json:
        _emit(report.to_json())
    else:
        for ref in {**report.versions, **report.checkpoints}:
            print(f"{'unchanged' if ref in report.unchanged else 'imported '} {ref}")
        print(f"{human(report.new_stored_bytes)} new data stored")
    for problem in report.problems:
        print(f"casreg: refused {problem}", file=sys.stderr)
    if report.problems:
        raise typer.Exit(1)


@fate_app.command("store")
def fate_store(ref: str,
               fate_config: Optional[str] = typer.Option(None, "--fate-config", metavar="FILE",
                                                         help="The model store FATE-Flow's service_conf.yaml names."),
               store_url: Optional[str] = typer.Option(None, "--to", metavar="URL",
                                                       help="A FATE model store: mysql://, redis://, cos://, file://."),
               layout: Optional[str] = typer.Option(None, "--layout", help="1.7/1.8, 1.9+ or 2.x (default: the "
                                                                            "store's own, else 1.9+)."),
               force: bool = typer.Option(False, "--force", "-f", help="Replace the version FATE holds."),
               as_json: bool = JSON_OPTION) -> None:
    """Write a version into FATE-Flow's model store in FATE's own format (FATE-Flow's restore finds it)."""
    with _repo(readonly=True) as repo:
        done = repo.fate_store(ref, fate_config=fate_config, url=store_url, layout=layout, force=force)
    if as_json:
        _emit(done.to_json())
        return
    for entry in done.entries:
        print(f"stored {entry}")
    if done.sha256:
        print(f"sha256 {done.sha256}{'  (the imported archive, bit for bit)' if done.identical else ''}")


@fate_app.command("export")
def fate_export(ref: str, dest: str = typer.Argument(..., help="directory, or FILE.zip for FATE's archive form"),
                force: bool = typer.Option(False, "--force", "-f"),
                fresh: bool = typer.Option(False, "--fresh", help="Pack a new archive, not the one imported."),
                as_json: bool = JSON_OPTION) -> None:
    """Write a version back in FATE's layout; for a .zip, the archive it was imported from, bit for
    bit (else one packed as FATE-Flow packs it), with its SHA-256 and SHA-1."""
    with _repo(readonly=True) as repo:
        done = repo.fate_export(ref, dest, force=force, fresh=fresh)
    if as_json:
        _emit(done.to_json())
    elif done.sha256:
        print(f"sha256 {done.sha256}  {dest}\nsha1   {done.sha1}  {dest}"
              f"{'  (the imported archive, bit for bit)' if done.identical else ''}")
    else:
        print(f"exported {ref} into {done.path}")


@app.command()
def models(where: list[str] = WHERE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every model (models/<model>/<version>): versions, latest, logical size."""
    with _repo(readonly=True) as repo:
        rows = repo.models(parse_pairs(where))
    _table(rows, as_json, [("MODEL", lambda r: r["model"]), ("STATE", lambda r: r["state"]),
                           ("VERSIONS", lambda r: r["versions"]), ("LATEST", lambda r: r["latest"]),
                           ("SIZE", lambda r: human(r["logical_bytes"])), ("DESCRIPTION", lambda r: r["description"])])


@app.command()
def versions(model: str, where: list[str] = WHERE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Versions of a model (any name; FATE party model ids too) with time, author, size."""
    with _repo(readonly=True) as repo:
        table = repo.version_table(model, parse_pairs(where))
    if as_json:
        _emit(table.rows())
        return
    _print_columns([("VERSION", table.version), ("STATE", table.state), ("DATE", list(map(_when, table.time))),
                    ("AUTHOR", table.author), ("SIZE", list(map(human, table.size))),
                    ("TAGS", list(map(", ".join, table.tags))), ("MESSAGE", table.message)])


@checkpoint_app.command("list")
def checkpoint_list(model: str, version: str, as_json: bool = JSON_OPTION) -> None:
    """Checkpoint steps of a model version."""
    with _repo(readonly=True) as repo:
        rows = repo.checkpoints(model, version)
    _table(rows, as_json, [("COMPONENT", lambda r: r["component"]),
                           ("STEP", lambda r: f"{r['step_index']}#{r['step_name']}"), ("VERSION", lambda r: r["id"][:12])])


@checkpoint_app.command("get")
def checkpoint_get(model: str, version: str, component: str,
                   step: str = typer.Argument(..., help="step index or step name"), dest: str = typer.Argument(...),
                   force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Restore one checkpoint step (by index or name) into DEST."""
    with _repo(readonly=True) as repo:
        ref = repo.checkpoint_get(model, version, component, step, dest, force=force)
    print(f"checked out {ref} into {os.path.abspath(dest)}")


@checkpoint_app.command("deploy")
def checkpoint_deploy(model: str, version: str, component: str, step: str,
                      new_version: str = typer.Option(..., "--new-version", help="Model version to create."),
                      alias: str = typer.Option("model", "--alias", help="variables/data/<component>/<alias>/")) -> None:
    """Make a checkpoint step a new pipeline version (as FATE-Flow's deploy), sharing every byte."""
    with _repo() as repo:
        cid = repo.deploy_checkpoint(model, version, component, step, new_version, alias=alias)
    print(f"models/{model}/{new_version} -> {cid.hex()}")


tag_app = typer.Typer(help="Tags with a description (as FATE-Flow's `flow tag`).", no_args_is_help=True)
app.add_typer(tag_app, name="tag")


@tag_app.command("create")
def tag_create(name: str, target: str, message: str = typer.Option("", "--message", "-m", help="Description."),
               force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Tag a version."""
    with _repo() as repo:
        cid = repo.tag(name, target, description=message, force=force)
    print(f"tags/{name} -> {cid.hex()}")


@tag_app.command("list")
def tag_list(as_json: bool = JSON_OPTION) -> None:
    """Tags, their versions and descriptions."""
    with _repo(readonly=True) as repo:
        rows = repo.tags()
    _table(rows, as_json, [("TAG", lambda r: r["name"]), ("VERSION", lambda r: r["target"][:12]),
                           ("DESCRIPTION", lambda r: r["description"])])


@tag_app.command("delete")
def tag_delete(name: str) -> None:
    """Remove a tag (recorded in the reflog)."""
    with _repo() as repo:
        repo.delete_ref(f"tags/{name}")
    print(f"deleted tag {name}")


alias_app = typer.Typer(help="Aliases such as 'production' pointing at a model version.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")


@alias_app.command("set")
def alias_set(model: str, alias: str, version: str,
              expect_old: Optional[str] = typer.Option(None, "--expect-old", help="Move only from this version id."),
              force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Point an alias at a version (compare-and-swap with --expect-old)."""
    with _repo() as repo:
        cid = repo.set_alias(model, alias, version, expect_old=expect_old, force=force)
    print(f"aliases/{model}/{alias} -> {version} ({cid.hex()[:12]})")


@alias_app.command("list")
def alias_list(model: str, as_json: bool = JSON_OPTION) -> None:
    """Aliases of a model and the versions they name."""
    with _repo(readonly=True) as repo:
        rows = repo.aliases(model)
    _pairs(rows, as_json, ("ALIAS", "VERSION"))


meta_app = typer.Typer(help="Metadata of versions and models, kept beside them (ids never change; every change logged).",
                       no_args_is_help=True)
app.add_typer(meta_app, name="meta")


@meta_app.command("get")
def meta_get(target: str = typer.Argument(..., metavar="TARGET", help="A version, or a model name with --model."),
             model: bool = typer.Option(False, "--model", help="TARGET is a model name."),
             as_json: bool = typer.Option(True, "--json", help="Print JSON (the only form; accepted for symmetry).")
             ) -> None:
    """Print metadata as JSON."""
    with _repo(readonly=True) as repo:
        _emit(repo.model_meta(target) if model else repo.metadata(target))


@meta_app.command("log")
def meta_log(target: str = typer.Argument(..., metavar="VERSION", help="A version: ref, tag, alias or id prefix."),
             as_json: bool = JSON_OPTION) -> None:
    """Every metadata change of a version, newest first (who, when, what)."""
    with _repo(readonly=True) as repo:
        changes = repo.metadata_history(target)
    _table(changes, as_json, [("WHEN", lambda c: _when(c.time)), ("WHO", lambda c: c.author),
                              ("CHANGE", lambda c: c.message)], json_rows=[c.to_json() for c in changes])


@meta_app.command("set")
def meta_set(target: str, items: List[str] = typer.Argument(..., metavar="KEY=VALUE...",
                                                help="VALUE is JSON if it parses (0.1, true, [1]), else text."),
             model: bool = typer.Option(False, "--model", help="TARGET is a model name."),
             unset: List[str] = typer.Option([], "--unset", help="Remove a key (repeatable).")) -> None:
    """Set metadata: description, author, framework, state, any custom property."""
    updates = parse_pairs(items)
    with _repo() as repo:
        if model:
            repo.set_model_meta(target, updates, remove=unset)
        else:
            repo.set_meta(target, updates, remove=unset)
    print(f"updated {target}")


@app.command("state")
def set_state(target: str, value: str = typer.Argument(..., help="LIVE or ARCHIVED"),
              model: bool = typer.Option(False, "--model", help="TARGET is a model name.")) -> None:
    """Mark a version (or a model) LIVE or ARCHIVED."""
    with _repo() as repo:
        repo.set_state(target, value, model=model)
    print(f"{target}: {value.upper()}")


@app.command("delete")
def delete_version(ref: str) -> None:
    """Delete a version's ref (restorable with `casreg restore` until gc)."""
    with _repo() as repo:
        old = repo.delete_version(ref)
    print(f"deleted {ref} (was {old.hex()[:12]}); `casreg restore {ref}` brings it back until gc")


@app.command("restore")
def restore_version(ref: str) -> None:
    """Bring back a deleted ref from the reflog."""
    with _repo() as repo:
        cid = repo.restore_version(ref)
    print(f"restored {ref} -> {cid.hex()[:12]}")


@app.command()
def retain(model: str = typer.Argument(..., help="The model whose versions to thin out."),
           keep_last: Optional[int] = typer.Option(None, "--keep-last", metavar="N", min=0,
                                                   help="Keep the newest N versions."),
           keep_days: Optional[float] = typer.Option(None, "--keep-days", metavar="D", min=0,
                                                     help="Keep versions younger than D days."),
           keep_tagged: bool = typer.Option(False, "--keep-tagged", help="Keep tagged versions."),
           keep_aliased: bool = typer.Option(False, "--keep-aliased", help="Keep versions an alias names."),
           keep_live: bool = typer.Option(False, "--keep-live", help="Keep LIVE (not ARCHIVED) versions."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would go."),
           save: bool = typer.Option(False, "--save", help="Keep the policy with the model: every gc applies it."),
           remote: Optional[str] = typer.Option(None, "--remote", metavar="NAME",
                                                help="Delete the names on remote NAME too (its gc --remote "
                                                     "then reclaims)."),
           as_json: bool = JSON_OPTION) -> None:
    """Delete the names of a model's versions no rule keeps (restorable until gc's grace period ends)."""
    from ..retention import Policy
    policy = Policy(keep_last, keep_days, keep_tagged, keep_aliased, keep_live)
    with _repo(readonly=dry_run) as repo:
        plan = repo.retain(model, policy, dry_run=dry_run, save=save, remote=remote)
    if as_json:
        _emit(plan.to_json())
        return
    rows = [{"version": v, "action": "keep", "why": why} for v, why in plan.keep.items()]
    rows += [{"version": v, "action": ("would delete" if dry_run else "deleted") + (
        f" (and on {remote})" if v in plan.remote_drop else ""), "why": ""} for v in plan.drop]
    _table(rows, False, [("VERSION", lambda r: r["version"]), ("", lambda r: r["action"]), ("WHY", lambda r: r["why"])])
