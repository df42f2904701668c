"""The one checked join for paths built from stored or received data (metadata, archive members,
model ids, file names in a database.yaml): every such path in casreg goes through ``join_inside``."""

from __future__ import annotations

import os

from .errors import UnsafePath


def join_inside(base: str, *parts: str) -> str:
    """``base/part/...``, refusing any part that is not one plain name (empty, ``.``, ``..``,
    absolute, or holding ``/``, ``\\`` or NUL), and any result that a symlink leads out of ``base``."""
    for part in parts:
        if (not isinstance(part, str) or part in ("", ".", "..") or os.path.isabs(part)
                or any(ch in part for ch in "/\\\0")):
            raise UnsafePath(f"unsafe path component {part!r} under {base}: not a single file name")
    path = os.path.join(base, *parts)
    root, real = os.path.realpath(base), os.path.realpath(path)
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        raise UnsafePath(f"{path} leads outside {base} through a symlink (to {real})")
    return path
