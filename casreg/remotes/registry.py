"""Which backend serves which URL scheme: each backend module registers its ``Scheme``.

Adding a backend is one new module that ends with ``register(Scheme(...))``, its name in
``BACKEND_MODULES``, and its test registration (``tests/remote_kinds.py``, ``tests/conftest.py``).
Backend modules import their SDK lazily (in the constructor), so every scheme can be registered,
its URLs parsed and its missing SDK reported in one line, whether or not the SDK is installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from ..errors import InvalidURL
    from .base import Backend
    from .config import RemoteURL

# In the order ``parse_url`` names them to the user.
BACKEND_MODULES = ("filestore", "redis_backend", "mysql_backend", "cos_backend", "s3_backend")


@dataclass(frozen=True)
class Scheme:
    """One URL scheme: how to check its URLs and open its backend."""
    name: str                                   # "s3", as in s3://
    open: Callable[..., Backend]                # (url, secrets, *, create, cache_dir) -> Backend
    query_keys: tuple[str, ...] = ()            # the URL query keys it accepts, in the order shown
    # What parse_url cannot check for every scheme: (parsed, netloc, path, bad) -> the RemoteURL to
    # use; ``bad(problem)`` builds the InvalidURL to raise.
    check_url: Optional[Callable[[RemoteURL, str, str, Callable[[str], InvalidURL]], RemoteURL]] = None
    sdk: str | None = None                      # the module the backend imports ("boto3")
    extra: str | None = None                    # the pip extra that installs it ("s3")
    secret_fields: tuple[str, ...] = ()         # CASREG_REMOTE_<NAME>_<FIELD> it reads

    def require_sdk(self) -> None:
        """A one-line error naming the pip extra if the SDK cannot be imported."""
        if not self.sdk:
            return
        try:
            importlib.import_module(self.sdk)
        except ImportError as exc:
            from ..errors import CasregError
            raise CasregError(f"{self.name}:// remotes need the {self.sdk} package ({exc}): "
                              f"pip install 'casreg[{self.extra}]'") from None


_SCHEMES: dict[str, Scheme] = {}
_loaded = False


def register(scheme: Scheme) -> Scheme:
    _SCHEMES[scheme.name] = scheme
    return scheme


def schemes() -> dict[str, Scheme]:
    """Every registered scheme by name, in ``BACKEND_MODULES`` order."""
    global _loaded
    if not _loaded:
        for module in BACKEND_MODULES:
            importlib.import_module(f"{__package__}.{module}")
        rank = {f"{__package__}.{m}": i for i, m in enumerate(BACKEND_MODULES)}
        ordered = sorted(_SCHEMES.values(), key=lambda s: rank.get(s.open.__module__, len(rank)))
        _SCHEMES.clear()
        _SCHEMES.update((s.name, s) for s in ordered)
        _loaded = True
    return _SCHEMES


def secret_fields() -> tuple[str, ...]:
    """Every secret field some scheme reads (``remote show`` reports which are set)."""
    out: list[str] = []
    for scheme in schemes().values():
        out += [f for f in scheme.secret_fields if f not in out]
    return tuple(out)
