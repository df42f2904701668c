"""Benchmarks (see README.md). ``installed_bytecode`` gives the children what an install has."""

from __future__ import annotations

import compileall
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def installed_bytecode() -> None:
    """Compile casreg's modules to bytecode, as ``pip install`` does (and a first run would, were
    PYTHONDONTWRITEBYTECODE not set, as it is on these VMs): every child process the benchmarks
    time then starts as it does on a user's machine, not by compiling ~100 modules from source
    (~35 ms a process here). borg's Debian package and the peers' wheels come compiled too."""
    if not compileall.compile_dir(os.path.join(ROOT, "casreg"), quiet=1):
        sys.exit("benchmarks: cannot compile casreg's modules to bytecode")
