"""Commands that look after a store: stats, verify, gc (also of a remote)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..errors import InvalidInput, StoreUnavailable
from .base import JSON_OPTION, _emit, _progress, _repo, app, human


@app.command()
def stats(full: bool = typer.Option(False, "--full", help="Read every object and walk every version "
                                     "(reachable objects, damaged chunk headers) instead of the counters."),
          as_json: bool = JSON_OPTION) -> None:
    """Logical and stored bytes, dedup and compression ratios, object counts."""
    try:  # --full also starts the counters of a store older than them, if it can write
        opened = _repo(readonly=not full)
    except StoreUnavailable:
        opened = _repo(readonly=True)
    with opened as repo:
        s = repo.stats(full=full)
    if s["counted"] == "walk" and not full:
        print("casreg: this store keeps no object counters yet, so every object was read; "
              "`casreg stats --full` once starts them", file=sys.stderr)
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
    if "reachable_objects" in s:
        print("reachable:         " + ", ".join(f"{k} {v}" for k, v in s["reachable_objects"].items())
              + " (the rest is kept by the reflog until gc, or unreferenced)")
    if s["keyframe_cache_bytes"]:
        print(f"keyframe cache:    {human(s['keyframe_cache_bytes'])} (decoded delta bases; safe to delete)")
    if s.get("counters_match") is False:
        print("counters:          differ from this count (the store was changed behind casreg's back; "
              "`casreg verify --full` checks every object)")
    if s["damaged_chunks"]:
        print(f"damaged chunks:    {s['damaged_chunks']} (headers unreadable; `casreg verify --full` names them)")


@app.command()
def verify(full: bool = typer.Option(False, "--full", help="Decompress and re-hash every object."),
           remote: Optional[str] = typer.Option(None, "--remote", help="Check this remote instead."),
           as_json: bool = JSON_OPTION) -> None:
    """Check that every object reachable from a ref is present and intact."""
    with _repo(readonly=True) as repo:
        if remote:
            from ..remotes import ops
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
       remote: Optional[str] = typer.Option(None, "--remote", metavar="NAME",
                                            help="Collect this remote instead: what none of its refs reaches."),
       grace: Optional[str] = typer.Option(None, "--grace", metavar="DURATION",
                                           help="With --remote: keep what was uploaded or condemned within "
                                                "DURATION (default 1d; longer than any push takes; now: no wait)."),
       as_json: bool = JSON_OPTION) -> None:
    """Delete objects that no ref reaches and no recent reflog entry names; give the space back."""
    if remote:
        _gc_remote(remote, dry_run, grace, compact, as_json)
        return
    if grace is not None:
        raise InvalidInput("--grace goes with --remote (the local grace period is --prune)")
    with _repo(readonly=dry_run) as repo:
        r = repo.gc(dry_run=dry_run, prune=prune, compact=compact)
    if as_json:
        _emit(r)
        return
    for ref in r.get("expired", []):
        print(f"{'would expire' if dry_run else 'expired'} {ref}")
    verb = "would delete" if dry_run else "deleted"
    print(f"{verb} {r['deleted_objects']} objects ({human(r['deleted_bytes'])}), kept {r['kept_objects']}")
    if r.get("compacted"):
        print(f"store file {human(r['file_bytes_before'])} -> {human(r['file_bytes_after'])}")
    elif r.get("compaction_skipped"):
        print("store file not compacted: another process has the store open; run gc --compact later",
              file=sys.stderr)


def _gc_remote(remote: str, dry_run: bool, grace: Optional[str], compact: Optional[bool], as_json: bool) -> None:
    with _repo(readonly=True) as repo:
        r = repo.gc_remote(remote, dry_run=dry_run, grace=grace, compact=compact)
    if as_json:
        _emit(r.to_json())
        return
    if dry_run:
        print(f"would delete up to {r.deletable_objects} objects ({human(r.deletable_bytes)}) and condemn "
              f"{r.condemned_objects}; {r.reachable_objects} reachable from {r.refs} refs")
    else:
        print(f"deleted {r.deleted_objects} objects ({human(r.deleted_bytes)}), condemned {r.condemned_objects}; "
              f"{r.reachable_objects} reachable from {r.refs} refs")
    if r.young_objects or r.waiting_objects:
        print(f"kept for now: {r.young_objects} uploaded and {r.waiting_objects} condemned within the grace "
              "period (a later gc --remote takes them)", file=sys.stderr)
