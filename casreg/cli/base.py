"""What every command group shares: the app, the global options, opening the store, and the
output helpers (JSON, tables, one size and time format)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from typing import Optional

import typer

app = typer.Typer(
    name="casreg", no_args_is_help=True, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Content-addressed registry for ML models and checkpoints.",
)

STORE_OPTION = typer.Option(None, "--store", envvar="CASREG_STORE",
                            help="Store directory (default: .casreg here or in a parent).")
JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")
WHERE_OPTION = typer.Option([], "--where", "-w", help="Only those whose metadata has KEY=VALUE (repeatable; "
                            "a.b looks inside maps, a list matches what it holds).")


class _State:
    store: Optional[str] = None
    debug: bool = bool(os.environ.get("CASREG_DEBUG"))
    quiet: bool = False


state = _State()


def _version(value: bool) -> None:
    if value:
        from .. import __version__
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
    from ..registry import Registry
    return Registry.open(state.store, readonly=readonly)


def _progress(enabled: bool = True):
    from .. import progress
    if enabled and not state.quiet and sys.stderr.isatty():
        return progress.RichProgress()
    return progress.NULL


def _emit(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, allow_nan=False))  # strict RFC 8259


def _emit_each(items) -> None:
    """``_emit`` of a list, printed item by item as ``items`` yields them (the same text)."""
    def pieces():
        first = True
        for item in items:
            body = json.dumps(item, indent=2, sort_keys=True, allow_nan=False).replace("\n", "\n  ")
            yield ("[\n  " if first else ",\n  ") + body
            first = False
        yield "[]\n" if first else "\n]\n"
    _print_lines(pieces(), end="")


def _print_lines(lines, *, end: str = "\n", batch: int = 1024) -> None:
    """``print(line, end=end)`` of each line, written ``batch`` lines at a time (a long listing:
    one write per batch, not per line; still streamed, so ``| head`` stops early; what came
    before an error is written too)."""
    out: list[str] = []
    try:
        for line in lines:
            out.append(line)
            if len(out) == batch:
                sys.stdout.write(end.join(out) + end)
                out.clear()
    finally:  # what came before an error is printed, as print would have
        if out:
            sys.stdout.write(end.join(out) + end)


def _value(named: dict, as_json: bool) -> None:
    """One setting: ``{"name": value}`` with ``--json``, else the value alone."""
    if as_json:
        _emit(named)
    else:
        print(*named.values())


def _table(rows: list, as_json: bool, columns: list[tuple[str, object]], *, json_rows=None) -> None:
    """A listing: JSON with ``--json`` (``json_rows`` if given, else ``rows``), else a table with a
    header (bold on a terminal), one column per ``(HEADER, row -> text)`` (``_print_columns``)."""
    if as_json:
        _emit(rows if json_rows is None else json_rows)
        return
    _print_columns([(header, list(map(fn, rows))) for header, fn in columns])  # type: ignore[call-overload]


def _print_columns(columns: list[tuple[str, list]]) -> None:
    """A table from its columns (``(HEADER, values)``, all of one length): a header (bold on a
    terminal), the columns two spaces apart, numbers right-aligned. Text is printed as it is (no
    markup) and never cut; no rows print nothing, as git does."""
    if not columns or not columns[0][1]:
        return
    from rich.cells import cell_len  # columns line up by terminal cells (wide characters take two)
    specs, cells = [], []
    for header, values in columns:  # a column at a time: one format call per line
        text = set(map(type, values)) == {str}  # the common case, checked without a call per cell
        right = not text and all(isinstance(v, int) for v in values)
        column = [header, *(values if text else map(str, values))]
        if "".join(column).isascii():
            specs.append(f"{{:{'>' if right else '<'}{max(map(len, column))}}}")
        else:
            width = max(map(cell_len, column))
            column = [" " * (width - cell_len(c)) + c if right else c + " " * (width - cell_len(c)) for c in column]
            specs.append("{}")
        cells.append(column)
    lines = list(map(str.rstrip, map("  ".join(specs).format, *cells)))
    if sys.stdout.isatty():
        lines[0] = f"\033[1m{lines[0]}\033[0m"
    print("\n".join(lines))


def _pairs(mapping: dict, as_json: bool, headers: tuple[str, str]) -> None:
    """A name -> value listing, by name: JSON with ``--json``, else a two-column table."""
    _table(sorted(mapping.items()), as_json, [(headers[0], lambda kv: kv[0]), (headers[1], lambda kv: kv[1])],
           json_rows=mapping)


def _when(timestamp: float) -> str:
    """Local time as ISO 8601 with its UTC offset (``datetime.isoformat``'s text, 5x faster;
    versions committed within one minute, as a training run's checkpoints are, format it once)."""
    seconds = int(timestamp)
    minute = _MINUTES.get(seconds // 60)
    if minute is None:
        local = time.localtime(seconds - seconds % 60)
        offset = local.tm_gmtoff or 0
        sign = "-" if offset < 0 else "+"
        hours, minutes = divmod(abs(offset) // 60, 60)
        minute = (time.strftime("%Y-%m-%dT%H:%M:", local), f"{sign}{hours:02d}:{minutes:02d}", offset % 60 == 0)
        if len(_MINUTES) < 65536:
            _MINUTES[seconds // 60] = minute
    if not minute[2]:  # an offset with seconds (old local mean times): the slow way
        local = time.localtime(seconds)
        return time.strftime("%Y-%m-%dT%H:%M:%S", local) + minute[1]
    return minute[0] + _SECONDS[seconds % 60] + minute[1]


_MINUTES: dict[int, tuple[str, str, bool]] = {}  # minute since the epoch -> its local text, offset
_SECONDS = [f"{s:02d}" for s in range(60)]


@functools.lru_cache(maxsize=4096)  # a model's versions are often the same size
def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
