"""Which paths of a directory a commit (or status) looks at: ``.casregignore`` and patterns.

``.casregignore`` at the root of the committed directory uses gitignore's syntax (``*.tmp``,
``logs/``, ``/top-only``, ``!keep.tmp``, ``**``; via the ``pathspec`` library), and ``--exclude``
patterns are added to it. With ``--include`` patterns, only files matching one of them are taken
(directories are always entered). The ignore file itself is stored like any file.
"""

from __future__ import annotations

import os

IGNORE_FILE = ".casregignore"


class PathFilter:
    def __init__(self, exclude: list[str] | tuple = (), include: list[str] | tuple = ()):
        self._exclude = _spec(exclude) if exclude else None
        self._include = _spec(include) if include else None

    @classmethod
    def for_directory(cls, root: str, exclude: list[str] | tuple = (), include: list[str] | tuple = ()
                      ) -> PathFilter:
        lines: list[str] = []
        path = os.path.join(root, IGNORE_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        return cls([*lines, *exclude], include)

    def skips(self, rel: str, is_dir: bool) -> bool:
        """True if the path ``rel`` (relative to the root, '/'-separated) is left out."""
        candidate = f"{rel}/" if is_dir else rel
        if self._exclude is not None and self._exclude.match_file(candidate):
            return True
        return not is_dir and self._include is not None and not self._include.match_file(rel)


EVERYTHING = PathFilter()


def literal(rel: str, *, directory: bool = False) -> str:
    """A pattern that matches exactly the path ``rel`` below the root (wildcards escaped)."""
    escaped = "".join(f"\\{c}" if c in "*?[]!#\\ " else c for c in rel.strip("/"))
    return f"/{escaped}/" if directory else f"/{escaped}"


def _spec(lines):
    import pathspec  # imported when a pattern is given: most commands never need it (start-up time)
    return pathspec.GitIgnoreSpec.from_lines(list(lines))
