"""Metadata values: one rule for every way in (``commit --meta``, ``meta set``, the Python API,
an HTTP body): a value is JSON when the text parses as strict JSON, else the text itself.

So ``lr=0.1`` is a number, ``tags=["a","b"]`` a list, ``ok=true`` a boolean, while ``sha=0123456``,
``zip=007`` and ``run=1_000`` stay strings exactly as typed (none of them is JSON). NaN and the
infinities are refused: they are not JSON, and every ``--json`` output is strict RFC 8259 JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable

from .errors import InvalidInput

_NOT_NUMBERS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def _refuse_constant(name: str) -> Any:
    raise InvalidInput(f"{name} is not a JSON number; quote it to store it as text")


def parse_value(text: str) -> Any:
    """The value ``text`` means: strict JSON if it parses as such, else the string."""
    if text.strip().lower() in _NOT_NUMBERS:
        raise InvalidInput(f"{text!r} is not a finite number; metadata values must be valid JSON or text "
                           "(write '\"nan\"' to store the word)")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return text
    return check_value(value)


def check_value(value: Any, key: str = "") -> Any:
    """``value`` if it is a JSON value with finite numbers only, else InvalidInput."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"metadata {key or 'value'}: {value} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(f"metadata {key or 'value'}: keys must be strings")
            check_value(v, f"{key}.{k}" if key else k)
    elif isinstance(value, list):
        for v in value:
            check_value(v, key)
    elif not (value is None or isinstance(value, (str, bool, int, float))):
        raise InvalidInput(f"metadata {key or 'value'}: {type(value).__name__} is not a JSON value")
    return value


def parse_pairs(items: Iterable[str]) -> dict[str, Any]:
    """``key=value`` arguments, each value typed by ``parse_value``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"metadata takes key=value, got {item!r}")
        out[key] = parse_value(text)
    return out


def check_map(meta: dict | None) -> dict[str, Any]:
    """A metadata map checked key by key (what the Python API takes)."""
    meta = dict(meta or {})
    for key, value in meta.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"metadata keys are non-empty strings, got {key!r}")
        check_value(value, key)
    return meta


def matches(meta: dict, where: dict[str, Any]) -> bool:
    """Whether ``meta`` has every ``key=value`` of ``where``: a dotted key goes into nested maps
    (``roles.host``), a list matches when it holds the value, and a number matches its text
    (``party_id=9999`` finds 9999 and "9999")."""
    for key, expected in where.items():
        actual: Any = meta
        for part in key.split("."):
            if not isinstance(actual, dict) or part not in actual:
                return False
            actual = actual[part]
        candidates = actual if isinstance(actual, list) else [actual]
        if not any(_same(c, expected) for c in candidates) and not _same(actual, expected):
            return False
    return True


def _same(actual: Any, expected: Any) -> bool:
    if actual == expected and type(actual) is not bool and type(expected) is not bool:
        return True
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    scalar = (str, int, float)
    return isinstance(actual, scalar) and isinstance(expected, scalar) and str(actual) == str(expected)
