"""The entry point: every parameter documented, every failure one line and its exit code."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading

import typer

from .base import app, state

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

    from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CasregError, StoreUnavailable

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
            from ..db import describe_lmdb_error
            _fail(describe_lmdb_error(exc, state.store or "store"), StoreUnavailable.exit_code)
        if state.debug:
            raise
        _fail(f"internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              "rerun with --debug for the traceback and report it", EXIT_INTERNAL)


def run() -> None:
    """The program's entry point (``casreg``, ``python -m casreg.cli``): ``main``, then exit without
    the interpreter's teardown, which frees every object a finished command made: 30-40 ms after
    any command, more after a long listing, and nothing left to do. What the teardown would do
    that matters is done first: the atexit functions (temporary directories' finalizers among
    them), logging's handlers and stdout/stderr flushed. While another thread is still alive the
    normal exit runs instead (it waits for that thread)."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        if threading.active_count() > 1 or not isinstance(exc.code, (int, type(None))):
            raise
        code = exc.code or 0
    atexit._run_exitfuncs()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: leave it to the normal exit, as main() would have
        sys.exit(code)
    os._exit(code)


class _LevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "casreg: " if record.levelno < logging.WARNING else "casreg: warning: "
        return prefix + record.getMessage()


def _fail(message: str, code: int) -> None:
    print(f"casreg: error: {message}", file=sys.stderr)
    sys.exit(code)
