"""The ``casreg`` command: a thin layer over ``casreg.Registry`` (parse, call, print), one module
per command group. Heavy modules (lmdb, zstd, numpy, rich) are imported inside commands so that
``casreg --help`` is fast. Every failure a user can cause ends as one line and its exit code.
"""

from . import maintenance, registry, remotes, serve, serving, versions  # noqa: F401  (they register their commands)
from .base import app
from .main import PARAMETER_HELP, _document, main, run

__all__ = ["PARAMETER_HELP", "_document", "app", "main", "run"]
