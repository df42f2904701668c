"""Commands on remotes: remote add/list/show/remove/default, push, fetch, pull, clone, ls-remote."""

from __future__ import annotations

from typing import List, Optional

import typer

from .base import JSON_OPTION, _emit, _pairs, _progress, _repo, _table, app, human

remote_app = typer.Typer(help="Manage remotes (COS, MySQL, Redis, another store).", no_args_is_help=True)
app.add_typer(remote_app, name="remote")


@remote_app.command("add")
def remote_add(name: str, url: Optional[str] = typer.Argument(None, help="redis://, mysql://, cos://, file://"),
               fate_config: Optional[str] = typer.Option(None, "--fate-config",
                                                         help="FATE-Flow's service_conf.yaml (its model store, 1.x or 2.x): "
                                                              "casreg's own objects on FATE's server (needs "
                                                              "--casreg-format)."),
               casreg_format: bool = typer.Option(False, "--casreg-format",
                                                  help="With --fate-config: yes, keep casreg's own format on "
                                                       "FATE's model-store server, beside FATE's models.")) -> None:
    """Add a remote (secrets: environment variables or --fate-config, never the URL)."""
    from ..errors import CasregError, InvalidInput
    from ..remotes import ops
    from ..remotes.config import from_fate_config
    secrets = None
    if fate_config and not casreg_format:
        raise InvalidInput("a casreg remote keeps casreg's format, which FATE-Flow cannot read: to read the "
                           "models FATE-Flow stored use `casreg fate import --fate-config`, to give FATE-Flow a "
                           "version use `casreg fate store`; add --casreg-format to keep casreg's own objects "
                           "on FATE's server anyway")
    if fate_config and url:
        raise InvalidInput("give a URL or --fate-config, not both (the config names the server)")
    if fate_config:
        url, secrets = from_fate_config(fate_config)
    if not url:
        raise CasregError("give a URL or --fate-config")
    with _repo() as repo:
        ops.config(repo).add(name, url, secrets)
    print(f"added remote {name}")


@remote_app.command("list")
def remote_list(as_json: bool = JSON_OPTION) -> None:
    """List remotes (secrets are never printed)."""
    from ..remotes import ops
    with _repo(readonly=True) as repo:
        cfg = ops.config(repo)
        rows = [cfg.public(n) for n in cfg.names()]
    _table(rows, as_json, [("NAME", lambda r: r["name"] + (" (default)" if r["default"] else "")),
                           ("URL", lambda r: r["url"])])


@remote_app.command("show")
def remote_show(name: str, as_json: bool = typer.Option(True, "--json", help="Print JSON (the only form).")
                ) -> None:
    """One remote: URL without secrets, where its secrets come from."""
    from ..remotes import ops
    with _repo(readonly=True) as repo:
        _emit(ops.config(repo).public(name))


@remote_app.command("remove")
def remote_remove(name: str) -> None:
    """Forget a remote (its tracking refs stay until deleted)."""
    from ..remotes import ops
    with _repo() as repo:
        ops.config(repo).remove(name)
    print(f"removed remote {name}")


@remote_app.command("default")
def remote_default(name: str, auto_sync: Optional[bool] = typer.Option(
        None, "--auto-sync/--no-auto-sync", help="checkout fetches missing versions, commit pushes new ones")) -> None:
    """Set the default remote (and FATE-style auto-sync)."""
    from ..remotes import ops
    with _repo() as repo:
        cfg = ops.config(repo)
        cfg.set_default(name)
        if auto_sync is not None:
            cfg.set_auto_sync(auto_sync)
    print(f"default remote: {name}{'' if auto_sync is None else f', auto-sync {auto_sync}'}")


@app.command()
def push(remote: str = typer.Argument(..., metavar="REMOTE"),
         refs: List[str] = typer.Argument(None, metavar="REF...", help="Refs to push (their metadata goes along)."),
         all_refs: bool = typer.Option(False, "--all", help="Push every version, checkpoint, tag, alias and "
                                                            "metadata ref (not scratch or remote-tracking refs)."),
         force: bool = typer.Option(False, "--force", "-f", help="Allow a non-fast-forward update."),
         delete: bool = typer.Option(False, "--delete", "-d", help="Delete the REFs on the remote instead."),
         as_json: bool = JSON_OPTION) -> None:
    """Send refs and only the objects the remote lacks; the remote ref moves last (CAS)."""
    from ..remotes import ops
    if delete:
        with _repo() as repo:
            gone = {ref: ops.delete_remote_ref(repo, remote, ref).hex() for ref in refs or []}
        if not gone:
            raise typer.BadParameter("name the refs to delete")
        _pairs(gone, as_json, ("DELETED", "WAS"))
        return
    with _repo(readonly=True) as repo:
        results = ops.push_refs(repo, remote, refs or [], all_refs=all_refs, force=force,
                                progress=_progress(not as_json))
    if as_json:
        _emit([r.to_json() for r in results])
        return
    for r in results:
        if r.up_to_date:
            print(f"{r.ref}: up to date")
        else:
            print(f"{r.ref}: {(r.old.hex()[:12] if r.old else 'new')} -> {r.new.hex()[:12]} "
                  f"({r.objects_sent} objects, {human(r.bytes_sent)})")


@app.command()
def fetch(remote: str, refs: List[str] = typer.Argument(None), as_json: bool = JSON_OPTION,
          repair: bool = typer.Option(False, "--repair",
                                      help="Also walk versions already here and fetch what they lack.")) -> None:
    """Bring remote refs into remotes/<remote>/..., with every object they need, verified."""
    from ..remotes import ops
    with _repo() as repo:
        result = ops.fetch_refs(repo, remote, refs or None, repair=repair, progress=_progress(not as_json))
    if as_json:
        _emit(result.to_json())
    else:
        print(f"fetched {len(result.refs)} refs: {result.objects_received} objects, {human(result.bytes_received)}")


@app.command()
def pull(remote: str, ref: str, force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Fetch REF and fast-forward the local ref to it."""
    from ..remotes import ops
    with _repo() as repo:
        old, new = ops.pull_ref(repo, remote, ref, force=force, progress=_progress())
    if old == new:
        print(f"{ref}: up to date")
    else:
        print(f"{ref}: {old.hex()[:12] if old else 'new'} -> {new.hex()[:12]}")


@app.command()
def clone(url: str, path: str) -> None:
    """A new store at PATH (PATH/.casreg) holding every ref of URL."""
    from ..remotes import ops
    repo = ops.clone(url, path, progress=_progress())
    n = len(repo.list_refs())
    repo.close()
    print(f"cloned {n} refs into {repo.path}")


@app.command("ls-remote")
def ls_remote(remote: str, as_json: bool = JSON_OPTION) -> None:
    """Refs on a remote."""
    from ..remotes import ops
    with _repo(readonly=True) as repo:
        refs_ = ops.ls_remote(repo, remote)
    _pairs({name: cid.hex() for name, cid in refs_.items()}, as_json, ("REF", "VERSION"))
