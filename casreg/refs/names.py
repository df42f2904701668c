"""The one function that decides whether a ref name is legal (after git's check-ref-format).

Accepted: every name FATE produces, e.g. ``models/guest#9999#guest-9999#host-10000#model/2020...``
and checkpoint steps such as ``3#step_3``. Rejected: empty components, ``..``, control characters,
spaces and ``~^:?*[\\``, a leading or trailing ``/``, a component starting with ``.`` or ending
with ``.lock``, a trailing ``.``, ``@{``, the name ``@`` and names over 400 bytes.
"""

from __future__ import annotations

from ..errors import InvalidInput

MAX_REF_BYTES = 400
_FORBIDDEN = set(" ~^:?*[\\") | {chr(c) for c in range(0x20)} | {"\x7f"}


def check_ref_name(name: str) -> str:
    """Return ``name`` if it is a legal ref name, else raise a one-line InvalidInput."""
    problem = _ref_name_problem(name)
    if problem:
        raise InvalidInput(f"invalid ref name {name!r}: {problem}")
    return name


def _ref_name_problem(name) -> str | None:
    if not isinstance(name, str) or not name:
        return "empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_REF_BYTES:
        return f"longer than {MAX_REF_BYTES} bytes"
    bad = sorted({ch for ch in name if ch in _FORBIDDEN})
    if bad:
        return "contains " + ", ".join(repr(ch) for ch in bad)
    if name == "@" or "@{" in name:
        return "contains '@{' or is '@'"
    if name.startswith("/") or name.endswith("/"):
        return "starts or ends with '/'"
    if ".." in name:
        return "contains '..'"
    if name.endswith("."):
        return "ends with '.'"
    for part in name.split("/"):
        if not part:
            return "contains an empty component ('//')"
        if part.startswith("."):
            return f"component {part!r} starts with '.'"
        if part.endswith(".lock"):
            return f"component {part!r} ends with '.lock'"
    return None
