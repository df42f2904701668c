"""Commands on versions and refs: init, codec, gc-grace, commit, log, diff, status, ls, cat,
checkout, show, refs, reflog, update-ref, delete-ref."""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

import typer

from ..metadata import parse_pairs
from .base import JSON_OPTION, _emit, _emit_each, _pairs, _print_lines, _progress, _repo, _table, _value, _when, app, human, state


@app.command()
def init(path: Optional[str] = typer.Argument(None, help="Where to create the store (default: ./.casreg)."),
         codec: str = typer.Option("delta", "--codec", help="delta (the default: byte-grouped floats, and new "
                                                           "checkpoint versions as deltas: smallest); grouped; or "
                                                           "zstd (plain zstd -3 for every chunk)")
         ) -> None:
    """Create a new store."""
    from ..repo import STORE_DIR, Repository
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
        if oneline and not as_json:  # what the summaries hold: no commit read
            _print_lines(f"{cid.hex()[:12]} {_when(c.time)} {c.message}".rstrip()
                         for cid, c in repo.iter_history(ref, max_count))
            return
        entries = repo.iter_log(ref, max_count)
        if as_json:
            _emit_each(v.to_json() for v in entries)
            return
        _print_lines(_version_text(cid, c) for cid, c in entries)


def _version_text(cid: bytes, c) -> str:
    meta = "".join(f"Meta:   {key}={json.dumps(value) if not isinstance(value, str) else value}\n"
                   for key, value in sorted(c.meta.items()))
    return (f"version {cid.hex()}\nAuthor: {c.author}\nDate:   {_when(c.time)}\n{meta}"
            + (f"\n    {c.message}\n" if c.message else ""))


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
