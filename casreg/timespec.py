"""Durations as users write them: ``now``, ``never``, ``90s``, ``15m``, ``12h``, ``14d``, ``2w``
(also ``2.weeks`` and ``2 weeks``, as git's ``--prune`` takes them)."""

from __future__ import annotations

import math
import re

from .errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WORDS = {"sec": "s", "second": "s", "min": "m", "minute": "m", "hour": "h", "day": "d", "week": "w"}
_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)[ .]?([a-z]+?)s?(?:\.ago)?$")


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``never`` is infinite); InvalidInput if it is not a duration."""
    value = text.strip().lower()
    if value == "now":
        return 0.0
    if value == "never":
        return math.inf
    match = _PATTERN.match(value)
    unit = match and _WORDS.get(match.group(2), match.group(2))
    if not match or unit not in _UNITS:
        raise InvalidInput(f"not a duration: {text!r} (use now, never, or a number with s, m, h, d or w: 14d)")
    return float(match.group(1)) * _UNITS[unit]
