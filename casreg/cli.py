"""The ``casreg`` command: a thin layer over ``casreg.repo.Repository``.

Heavy modules (lmdb, zstd, blake3, rich) are imported inside commands so ``casreg --help`` is fast.
Every failure a user can cause ends as one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import List, Optional

import typer

from .metadata import parse_pairs

app = typer.Typer(
    name="casreg", no_args_is_help=True, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Content-addressed registry for ML models and checkpoints.",
)

STORE_OPTION = typer.Option(None, "--store", envvar="CASREG_STORE",
                            help="Store directory (default: .casreg here or in a parent).")
JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


class _State:
    store: Optional[str] = None
    debug: bool = bool(os.environ.get("CASREG_DEBUG"))
    quiet: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        from . import __version__
        print(f"casreg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(store: Optional[str] = STORE_OPTION,
          debug: bool = typer.Option(False, "--debug", envvar="CASREG_DEBUG",
                                     help="Print a traceback for unexpected errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print casreg's version and exit."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Also say what casreg does underneath "
                                                                      "(retries, skipped refs)."),
          quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars and no notes; results "
                                                                  "and errors only.")) -> None:
    state.store = store
    state.debug = debug
    state.quiet = quiet
    logging.getLogger("casreg").setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


def _repo(readonly: bool = False):
    from .registry import Registry
    return Registry.open(state.store, readonly=readonly)


def _progress(enabled: bool = True):
    from . import progress
    if enabled and not state.quiet and sys.stderr.isatty():
        return progress.RichProgress()
    return progress.NULL


def _emit(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, allow_nan=False))  # strict RFC 8259


def _value(named: dict, as_json: bool) -> None:
    """One setting: ``{"name": value}`` with ``--json``, else the value alone."""
    if as_json:
        _emit(named)
    else:
        print(*named.values())


def _table(rows: list, as_json: bool, columns: list[tuple[str, object]], *, json_rows=None) -> None:
    """A listing: JSON with ``--json`` (``json_rows`` if given, else ``rows``), else a table with a
    header, one column per ``(HEADER, row -> text)``; numbers are right-aligned."""
    if as_json:
        _emit(rows if json_rows is None else json_rows)
        return
    if not rows:
        return  # nothing listed prints nothing, as git does
    from rich.console import Console
    from rich.table import Table
    table = Table(box=None, pad_edge=False, header_style="bold", show_header=True)
    cells = [[fn(row) for _, fn in columns] for row in rows]  # type: ignore[operator]
    for n, (header, _) in enumerate(columns):
        numeric = bool(cells) and all(isinstance(c[n], int) for c in cells)
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for row_cells in cells:
        table.add_row(*(str(c) for c in row_cells))
    console = Console(width=None if sys.stdout.isatty() else 1 << 12, highlight=False)
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _pairs(mapping: dict, as_json: bool, headers: tuple[str, str]) -> None:
    """A name -> value listing, by name: JSON with ``--json``, else a two-column table."""
    _table(sorted(mapping.items()), as_json, [(headers[0], lambda kv: kv[0]), (headers[1], lambda kv: kv[1])],
           json_rows=mapping)


def _when(timestamp: float) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@app.command()
def init(path: Optional[str] = typer.Argument(None, help="Where to create the store (default: ./.casreg)."),
         codec: str = typer.Option("zstd", "--codec", help="zstd; grouped (byte-grouped floats: smaller); or delta "
                                                          "(grouped, and new checkpoint versions as XOR deltas: smallest)")
         ) -> None:
    """Create a new store."""
    from .repo import STORE_DIR, Repository
    target = path or state.store or os.path.join(os.getcwd(), STORE_DIR)
    repo = Repository.init(target, codec_name=codec)
    print(f"initialised casreg store at {repo.path}")


@app.command("codec")
def codec_cmd(name: Optional[str] = typer.Argument(None, help="zstd, grouped or delta (see `casreg init`); "
                                                             "none: print the current one."),
              as_json: bool = JSON_OPTION) -> None:
    """The codec of later commits: print it, or switch it (stored objects keep their form)."""
    with _repo(readonly=name is None) as repo:
        if name is not None:
            repo.set_codec(name)
        current = repo.codec_name
    _value({"codec": current}, as_json)


@app.command("gc-grace")
def gc_grace_cmd(duration: Optional[str] = typer.Argument(None, metavar="DURATION",
                                                          help="now, 14d, 2w, never; none: print it."),
                 as_json: bool = JSON_OPTION) -> None:
    """How long gc keeps versions no ref reaches (the reflog's grace period): print or set it."""
    with _repo(readonly=duration is None) as repo:
        if duration is not None:
            repo.set_gc_grace(duration)
        grace = repo.gc_grace
    _value({"gc_grace": grace}, as_json)


@app.command()
def commit(
    path: str = typer.Argument(..., help="File or directory to store."),
    ref: str = typer.Option(..., "--ref", "-r", help="Ref to point at the new version."),
    message: str = typer.Option("", "--message", "-m"),
    meta: List[str] = typer.Option([], "--meta", metavar="KEY=VALUE",
                                   help="Metadata (repeatable): VALUE is JSON if it parses, else text."),
    parent: List[str] = typer.Option([], "--parent", "-p", help="Parent version (repeatable)."),
    author: Optional[str] = typer.Option(None, "--author"),
    force: bool = typer.Option(False, "--force", "-f",
                               help="Rewrite REF: the new version's parents are only those given."),
    expect_old: Optional[str] = typer.Option(None, "--expect-old",
                                             help="Update only if the ref is at this version ('none': absent)."),
    exclude: List[str] = typer.Option([], "--exclude", "-x", metavar="PATTERN",
                                      help="Leave out paths matching PATTERN (gitignore syntax; repeatable; "
                                           "added to the directory's .casregignore)."),
    include: List[str] = typer.Option([], "--include", "-i", metavar="PATTERN",
                                      help="Store only files matching PATTERN (repeatable)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Store a file or directory as a new version on top of REF (its current version is the parent)."""
    with _repo() as repo:
        result = repo.commit(path, ref, message=message, parents=parent, meta=parse_pairs(meta),
                             author=author, force=force, expect_old=expect_old, exclude=exclude,
                             include=include, progress=_progress(not as_json))
    if as_json:
        _emit({"ref": ref, **result.to_json()})
    else:
        print(f"{ref} -> {result.id.hex()} ({human(result.logical_bytes)}, "
              f"{result.new_chunks} new chunks, {human(result.new_stored_bytes)} stored)"
              + ("" if result.moved else "; unchanged, no new version"))
        for p in result.pushed:
            print(f"pushed {p.ref}: {p.objects_sent} objects, {human(p.bytes_sent)}")


@app.command()
def log(ref: str = typer.Argument(..., metavar="REF", help="A version: ref, tag, alias or id prefix."),
        max_count: Optional[int] = typer.Option(None, "--max-count", "-n", metavar="N", min=1,
                                                help="Show only the newest N versions."),
        oneline: bool = typer.Option(False, "--oneline", help="One line per version: short id, date, message."),
        as_json: bool = JSON_OPTION) -> None:
    """History of a version, newest first."""
    with _repo(readonly=True) as repo:
        entries = repo.log(ref, max_count)
    if as_json:
        _emit([v.to_json() for v in entries])
        return
    for cid, c in entries:
        if oneline:
            print(f"{cid.hex()[:12]} {_when(c.time)} {c.message}".rstrip())
            continue
        print(f"version {cid.hex()}")
        print(f"Author: {c.author}\nDate:   {_when(c.time)}")
        for key, value in sorted(c.meta.items()):
            print(f"Meta:   {key}={json.dumps(value) if not isinstance(value, str) else value}")
        print(f"\n    {c.message}\n" if c.message else "")


@app.command()
def diff(old: str = typer.Argument(..., metavar="OLD", help="A version: ref, tag, alias or id prefix."),
         new: str = typer.Argument(..., metavar="NEW", help="The version to compare it with."),
         as_json: bool = JSON_OPTION) -> None:
    """Files added, removed and changed from OLD to NEW, and how many of NEW's bytes are new."""
    with _repo(readonly=True) as repo:
        result = repo.diff(old, new)
    if as_json:
        _emit(result.to_json())
        return
    marks = {"added": "A", "removed": "D", "changed": "M"}
    _table(result.changes, False, [("", lambda c: marks[c.change]), ("OLD SIZE", lambda c: _size_or_dash(c.old_size)),
                                   ("NEW SIZE", lambda c: _size_or_dash(c.new_size)), ("PATH", lambda c: c.path)])
    counts = result.to_json()["counts"]
    print(f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed; "
          f"{human(result.new_bytes)} new")


def _size_or_dash(size: int | None) -> str:
    return "-" if size is None else human(size)


@app.command()
def status(directory: str = typer.Argument(..., metavar="DIR", help="The directory to compare."),
           version: str = typer.Argument(..., metavar="VERSION", help="A version: ref, tag, alias or id prefix."),
           as_json: bool = JSON_OPTION) -> None:
    """How DIR differs from VERSION (what committing it would change); exit 1 if it differs."""
    with _repo(readonly=True) as repo:
        result = repo.status(directory, version)
    if as_json:
        _emit(result.to_json())
    else:
        for mark, paths in (("A", result.added), ("D", result.removed), ("M", result.changed)):
            for path in paths:
                print(f"{mark} {path}")
        print(f"{len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} changed, "
              f"{result.unchanged} unchanged")
    if not result.clean:
        raise typer.Exit(1)


@app.command()
def ls(spec: str = typer.Argument(..., help="REF or REF:PATH"), as_json: bool = JSON_OPTION) -> None:
    """Files of a version with their sizes."""
    with _repo(readonly=True) as repo:
        rows = repo.ls(spec)
    _table(rows, as_json, [("MODE", lambda r: oct(r["mode"])[2:]), ("SIZE", lambda r: r["size"]),
                           ("PATH", lambda r: r["path"] + (f" -> {r['target']}" if r["kind"] == "link" else ""))])


@app.command()
def cat(spec: str = typer.Argument(..., help="REF:PATH")) -> None:
    """Write one file of a version to standard output."""
    with _repo(readonly=True) as repo:
        repo.cat(spec, sys.stdout.buffer)
    sys.stdout.buffer.flush()


@app.command()
def checkout(spec: str, dest: str,
             force: bool = typer.Option(False, "--force", "-f",
                                        help="Write into a non-empty destination (other files stay)."),
             clean: bool = typer.Option(False, "--clean",
                                        help="With --force: also remove files the version lacks.")) -> None:
    """Restore a version into DEST, byte-identical (with auto-sync on, fetched first if not here)."""
    with _repo(readonly=True) as repo:
        fetch_first = repo.wants_fetch(spec)
    with _repo(readonly=not fetch_first) as repo:
        cid = repo.checkout(spec, dest, force=force, clean=clean, progress=_progress())
    print(f"checked out {cid.hex()[:12]} into {os.path.abspath(dest)}")


@app.command()
def show(spec: str, as_json: bool = JSON_OPTION) -> None:
    """One version: its id, tree, parents and metadata."""
    with _repo(readonly=True) as repo:
        data = repo.show(spec)
    if as_json:
        _emit(data)
        return
    print(f"version {data['id']}\ntree    {data['tree']}")
    for parent in data["parents"]:
        print(f"parent  {parent}")
    print(f"author  {data['author']}\ndate    {_when(data['time'])}")
    if data["message"]:
        print(f"message {data['message']}")
    for key, value in sorted(data["meta"].items()):
        print(f"meta    {key} = {json.dumps(value, ensure_ascii=False)}")
    if data["meta_changes"]:
        print(f"        ({data['meta_changes']} metadata changes since the commit: casreg meta log)")


@app.command()
def refs(prefix: str = typer.Argument("", help="Only refs starting with this."), as_json: bool = JSON_OPTION) -> None:
    """List refs."""
    with _repo(readonly=True) as repo:
        rows = repo.list_refs(prefix)
    _pairs({name: cid.hex() for name, cid in rows}, as_json, ("REF", "VERSION"))


@app.command()
def reflog(ref: str, as_json: bool = JSON_OPTION) -> None:
    """Every move of a ref, newest first (deleted refs too)."""
    with _repo(readonly=True) as repo:
        entries = repo.reflog(ref)
    _table(entries, as_json, [("OLD", lambda e: (e["old"] or "-")[:12]), ("NEW", lambda e: (e["new"] or "-")[:12]),
                              ("WHEN", lambda e: _when(e["time"])), ("WHO", lambda e: e["who"]),
                              ("MESSAGE", lambda e: e["message"])])


@app.command("update-ref")
def update_ref(ref: str, target: str,
               force: bool = typer.Option(False, "--force", "-f"),
               expect_old: Optional[str] = typer.Option(None, "--expect-old")) -> None:
    """Point REF at TARGET (compare-and-swap with --expect-old)."""
    with _repo() as repo:
        cid = repo.update_ref(ref, target, force=force, expect_old=expect_old)
    print(f"{ref} -> {cid.hex()}")


@app.command("delete-ref")
def delete_ref(ref: str, expect_old: Optional[str] = typer.Option(None, "--expect-old")) -> None:
    """Remove REF (recorded in the reflog; its objects stay until gc)."""
    with _repo() as repo:
        old = repo.delete_ref(ref, expect_old=expect_old)
    print(f"deleted {ref} (was {old.hex()})")


@app.command()
def stats(as_json: bool = JSON_OPTION) -> None:
    """Logical and stored bytes, dedup and compression ratios, object counts."""
    with _repo(readonly=True) as repo:
        s = repo.stats()
    if as_json:
        _emit(s)
        return
    print(f"refs:              {s['refs']}  versions: {s['versions']}")
    print(f"logical bytes:     {human(s['logical_bytes'])} ({s['logical_bytes']})")
    print(f"unique chunk data: {human(s['unique_chunk_bytes'])}  dedup ratio: {s['dedup_ratio']}x")
    print(f"stored bytes:      {human(s['stored_bytes'])}  compression ratio: {s['compression_ratio']}x")
    print(f"total ratio:       {s['total_ratio']}x (logical / stored)")
    print(f"on disk:           {human(s['disk_bytes'])} (the whole store directory: store file "
          f"{human(s['disk_store_file_bytes'])}, caches {human(s['disk_cache_bytes'])})")
    print("by codec:          " + ", ".join(f"{k} {human(v)}" for k, v in sorted(s["stored_bytes_by_codec"].items())))
    print("objects:           " + ", ".join(f"{k} {v}" for k, v in s["objects"].items()))
    if s["keyframe_cache_bytes"]:
        print(f"keyframe cache:    {human(s['keyframe_cache_bytes'])} (decoded delta bases; safe to delete)")
    if s["damaged_chunks"]:
        print(f"damaged chunks:    {s['damaged_chunks']} (headers unreadable; `casreg verify --full` names them)")


@app.command()
def verify(full: bool = typer.Option(False, "--full", help="Decompress and re-hash every object."),
           remote: Optional[str] = typer.Option(None, "--remote", help="Check this remote instead."),
           as_json: bool = JSON_OPTION) -> None:
    """Check that every object reachable from a ref is present and intact."""
    with _repo(readonly=True) as repo:
        if remote:
            from .remotes import ops
            problems = ops.verify(repo, remote, full=full)
        else:
            problems = repo.verify(full=full, progress=_progress(not as_json))
    if as_json:
        _emit({"ok": not problems, "problems": problems})
    else:
        for p in problems:
            print(f"{p['problem']}: {p['kind']} {p.get('ref') or p['id']}")
        print(("remote OK" if remote else "store OK") if not problems else f"{len(problems)} problem(s) found")
        if problems and not remote:
            print("versions fetched from a remote heal with `casreg fetch --repair REMOTE`", file=sys.stderr)
    if problems:
        raise typer.Exit(1)


@app.command()
def gc(dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
       prune: Optional[str] = typer.Option(None, "--prune", metavar="DURATION",
                                           help="Keep what the reflog reached within DURATION (now, 14d, 2w, "
                                                "never; default: the store's gc.prune, 14d)."),
       compact: Optional[bool] = typer.Option(None, "--compact/--no-compact",
                                              help="Shrink the store file afterwards (default: when gc freed "
                                                   "64 MiB or a tenth of it)."),
       as_json: bool = JSON_OPTION) -> None:
    """Delete objects that no ref reaches and no recent reflog entry names; give the space back."""
    with _repo(readonly=dry_run) as repo:
        r = repo.gc(dry_run=dry_run, prune=prune, compact=compact)
    if as_json:
        _emit(r)
        return
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {r['deleted_objects']} objects ({human(r['deleted_bytes'])}), kept {r['kept_objects']}")
    if r.get("compacted"):
        print(f"store file {human(r['file_bytes_before'])} -> {human(r['file_bytes_after'])}")
    elif r.get("compaction_skipped"):
        print("store file not compacted: another process has the store open; run gc --compact later",
              file=sys.stderr)


remote_app = typer.Typer(help="Manage remotes (COS, MySQL, Redis, another store).", no_args_is_help=True)
app.add_typer(remote_app, name="remote")


@remote_app.command("add")
def remote_add(name: str, url: Optional[str] = typer.Argument(None, help="redis://, mysql://, cos://, file://"),
               fate_config: Optional[str] = typer.Option(None, "--fate-config",
                                                         help="FATE service_conf.yaml with model_store_address.")) -> None:
    """Add a remote (secrets: environment variables or --fate-config, never the URL)."""
    from .errors import CasregError
    from .remotes import ops
    from .remotes.config import from_fate_config
    secrets = None
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
    from .remotes import ops
    with _repo(readonly=True) as repo:
        cfg = ops.config(repo)
        rows = [cfg.public(n) for n in cfg.names()]
    _table(rows, as_json, [("NAME", lambda r: r["name"] + (" (default)" if r["default"] else "")),
                           ("URL", lambda r: r["url"])])


@remote_app.command("show")
def remote_show(name: str, as_json: bool = typer.Option(True, "--json", help="Print JSON (the only form).")
                ) -> None:
    """One remote: URL without secrets, where its secrets come from."""
    from .remotes import ops
    with _repo(readonly=True) as repo:
        _emit(ops.config(repo).public(name))


@remote_app.command("remove")
def remote_remove(name: str) -> None:
    """Forget a remote (its tracking refs stay until deleted)."""
    from .remotes import ops
    with _repo() as repo:
        ops.config(repo).remove(name)
    print(f"removed remote {name}")


@remote_app.command("default")
def remote_default(name: str, auto_sync: Optional[bool] = typer.Option(
        None, "--auto-sync/--no-auto-sync", help="checkout fetches missing versions, commit pushes new ones")) -> None:
    """Set the default remote (and FATE-style auto-sync)."""
    from .remotes import ops
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
    from .remotes import ops
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
    from .remotes import ops
    with _repo() as repo:
        result = ops.fetch_refs(repo, remote, refs or None, repair=repair, progress=_progress(not as_json))
    if as_json:
        _emit(result.to_json())
    else:
        print(f"fetched {len(result.refs)} refs: {result.objects_received} objects, {human(result.bytes_received)}")


@app.command()
def pull(remote: str, ref: str, force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Fetch REF and fast-forward the local ref to it."""
    from .remotes import ops
    with _repo() as repo:
        old, new = ops.pull_ref(repo, remote, ref, force=force, progress=_progress())
    if old == new:
        print(f"{ref}: up to date")
    else:
        print(f"{ref}: {old.hex()[:12] if old else 'new'} -> {new.hex()[:12]}")


@app.command()
def clone(url: str, path: str) -> None:
    """A new store at PATH (PATH/.casreg) holding every ref of URL."""
    from .remotes import ops
    repo = ops.clone(url, path, progress=_progress())
    n = len(repo.list_refs())
    repo.close()
    print(f"cloned {n} refs into {repo.path}")


@app.command("ls-remote")
def ls_remote(remote: str, as_json: bool = JSON_OPTION) -> None:
    """Refs on a remote."""
    from .remotes import ops
    with _repo(readonly=True) as repo:
        refs_ = ops.ls_remote(repo, remote)
    _pairs({name: cid.hex() for name, cid in refs_.items()}, as_json, ("REF", "VERSION"))


fate_app = typer.Typer(help="FATE-Flow models: import and export model_local_cache trees and archives.",
                       no_args_is_help=True)
app.add_typer(fate_app, name="fate")
checkpoint_app = typer.Typer(help="FATE checkpoints (like `flow checkpoint list/get`).", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")


@fate_app.command("import")
def fate_import(source: str = typer.Argument(..., help="model_local_cache dir, party dir, version dir or FATE .zip"),
                force: bool = typer.Option(False, "--force", "-f", help="Replace versions whose content differs."),
                as_json: bool = JSON_OPTION) -> None:
    """One pipeline version per model version, one ref per checkpoint step; shared chunks stored once."""
    with _repo() as repo:
        report = repo.fate_import(source, force=force, progress=_progress(not as_json))
    if as_json:
        _emit(report.to_json())
    else:
        for ref in {**report.versions, **report.checkpoints}:
            print(f"{'unchanged' if ref in report.unchanged else 'imported '} {ref}")
        print(f"{human(report.new_stored_bytes)} new data stored")
        for problem in report.problems:
            print(f"casreg: refused checkpoint {problem}", file=sys.stderr)
    if report.problems:
        raise typer.Exit(1)


@fate_app.command("export")
def fate_export(ref: str, dest: str = typer.Argument(..., help="directory, or FILE.zip for FATE's archive form"),
                force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Write a version back in FATE's layout (prints the archive's SHA-256 for a .zip)."""
    with _repo(readonly=True) as repo:
        digest = repo.fate_export(ref, dest, force=force)
    print(f"sha256 {digest}  {dest}" if digest else f"exported {ref} into {os.path.abspath(dest)}")


@app.command()
def models(as_json: bool = JSON_OPTION) -> None:
    """Every model (models/<model>/<version>): versions, latest, logical size."""
    with _repo(readonly=True) as repo:
        rows = repo.models()
    _table(rows, as_json, [("MODEL", lambda r: r["model"]), ("STATE", lambda r: r["state"]),
                           ("VERSIONS", lambda r: r["versions"]), ("LATEST", lambda r: r["latest"]),
                           ("SIZE", lambda r: human(r["logical_bytes"])), ("DESCRIPTION", lambda r: r["description"])])


@app.command()
def versions(model: str, as_json: bool = JSON_OPTION) -> None:
    """Versions of a model (any name; FATE party model ids too) with time, author, size."""
    with _repo(readonly=True) as repo:
        rows = repo.versions(model)
    _table(rows, as_json, [("VERSION", lambda r: r["version"]), ("STATE", lambda r: r["state"]),
                           ("DATE", lambda r: _when(r["time"])), ("AUTHOR", lambda r: r["author"]),
                           ("SIZE", lambda r: human(r["size"])), ("TAGS", lambda r: ", ".join(r["tags"])),
                           ("MESSAGE", lambda r: r["message"])])


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


# Help for the parameters whose command does not give its own: one text per name, the same everywhere.
PARAMETER_HELP = {
    "spec": "A version: ref, tag, alias, model/version or id prefix (6+ hex digits).",
    "dest": "The directory to write into.",
    "ref": "A ref name, e.g. models/mlp/v2 or tags/golden.",
    "refs": "Ref names (all of the remote's when none are given).",
    "target": "A version: ref, tag, alias or id prefix.",
    "name": "The name.",
    "remote": "A remote's name (see casreg remote list).",
    "url": "redis://, mysql://, cos://, s3:// or file:// URL (no passwords: see README).",
    "path": "Where the new store goes (a project directory, or its .casreg).",
    "model": "A model name (a FATE party model id is one).",
    "version": "A version name of the model.",
    "component": "A FATE component name, e.g. hetero_lr_0.",
    "step": "A checkpoint step: step_index#step_name, or either.",
    "alias": "An alias name, e.g. production.",
    "message": "What this version is (shown by log).",
    "author": "Who made it (default: $CASREG_AUTHOR or user@host).",
    "force": "Do it even if it is not a fast-forward or the name exists.",
    "expect_old": "Only if the ref is at this version now (compare-and-swap; 'none': absent).",
    "port": "TCP port to listen on.",
}


def _document(command) -> None:
    """Give every parameter help text and every argument an upper-case metavar (click tree)."""
    for param in command.params:
        if param.param_type_name == "option" and not param.help and param.name in PARAMETER_HELP:
            param.help = PARAMETER_HELP[param.name]
        elif param.param_type_name == "argument":
            if not getattr(param, "help", None) and param.name in PARAMETER_HELP:
                param.help = PARAMETER_HELP[param.name]
            if param.metavar is None and param.name:
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
    for sub_command in getattr(command, "commands", {}).values():
        _document(sub_command)


def main() -> None:
    """Entry point: run the app; every failure ends as one line and its exit code (errors.py)."""

    from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CasregError, StoreUnavailable

    said = logging.StreamHandler()  # notes (auto-sync fetched ...) and what casreg skipped but could go on without
    said.setFormatter(_LevelFormatter())
    logging.getLogger("casreg").addHandler(said)
    logging.getLogger("casreg").setLevel(logging.INFO)
    command = typer.main.get_command(app)
    _document(command)
    try:
        command(prog_name="casreg")
    except CasregError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("casreg: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}", 1)
    except Exception as exc:
        if type(exc).__module__.split(".")[0] == "lmdb":
            from .db import describe_lmdb_error
            _fail(describe_lmdb_error(exc, state.store or "store"), StoreUnavailable.exit_code)
        if state.debug:
            raise
        _fail(f"internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              "rerun with --debug for the traceback and report it", EXIT_INTERNAL)


class _LevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "casreg: " if record.levelno < logging.WARNING else "casreg: warning: "
        return prefix + record.getMessage()


def _fail(message: str, code: int) -> None:
    print(f"casreg: error: {message}", file=sys.stderr)
    sys.exit(code)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (another than loopback needs a token)."),
          port: int = typer.Option(8080, "--port", min=0, max=65535),
          read_only: bool = typer.Option(False, "--read-only", help="Refuse every write (403)."),
          token_file: Optional[str] = typer.Option(None, "--token-file", metavar="FILE",
                                                   help="Writes need Authorization: Bearer <the file's token>."),
          max_body: int = typer.Option(1 << 20, "--max-body", metavar="BYTES", min=1,
                                       help="Largest request body taken.")) -> None:
    """Serve the store over HTTP: Kubeflow Model Registry's REST API, FATE-Serving's model transfer."""
    try:
        import uvicorn

        from .server import check_bind, create_app, read_token
    except ImportError as exc:
        from .errors import CasregError
        raise CasregError(f"casreg serve needs {exc.name}: pip install 'casreg[serve]'") from None
    token = read_token(token_file) if token_file else None
    check_bind(host, token)
    with _repo(readonly=read_only) as repo:
        application = create_app(repo, read_only=read_only, token=token, max_body=max_body)
        print(f"casreg: serving {repo.path} on http://{host}:{port} ({'read-only' if read_only else 'read-write'}"
              f"{', writes need the token' if token else ''})", file=sys.stderr, flush=True)
        uvicorn.run(application, host=host, port=port, log_level="warning", server_header=False)

if __name__ == "__main__":
    main()
