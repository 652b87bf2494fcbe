"""Reading provider JSON defensively: every value may arrive with the wrong type.

Providers send numbers as strings, JSON as a string or as the object itself, floats where
the docs say int. Parsers read each field through these helpers, which return a usable value
or ``None``/empty and never raise, so a surprising answer is "unrecognised", not a crash.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from typing import Any

MESSAGE_MAX_CHARS = 1000
_INT = re.compile(r"\s*-?\d{1,9}\s*")

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120


def as_int(value: Any) -> int | None:
    """An integer sent as 400, "400" or 400.0; ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    return None


def as_progress(value: Any, scale: float = 1.0) -> int | None:
    """0 to 100 from an int, a float (45.5) or a numeric string, rounded half up.

    ``scale`` turns a fraction into percent (Runway's ``progress`` is 0 to 1: pass 100).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value) * scale
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return max(0, min(100, math.floor(number + 0.5)))


def as_text(value: Any) -> str:
    """A provider message as bounded text, whatever type it arrived as."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else _repr.repr(value)
    return text[:MESSAGE_MAX_CHARS]


def as_str(value: Any) -> str:
    """A string field, stripped; ``""`` for anything that is not a string."""
    return value.strip() if isinstance(value, str) else ""


def short_repr(value: Any) -> str:
    """A bounded, recursion-safe rendering of any JSON value, for logs."""
    return _repr.repr(value)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def json_object(value: Any) -> dict[str, Any]:
    """A field documented as a JSON string holding an object, also seen as the object itself."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    return as_dict(value)


def dig(value: Any, *path: str | int) -> Any:
    """``value[p0][p1]…`` through dicts and lists, ``None`` where any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(step)
    return value


def http_urls(value: Any, depth: int = 0) -> list[str]:
    """http(s) URLs from a list, a single string, or a JSON-array string (KIE does all three)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and depth == 0:
            try:
                return http_urls(json.loads(text), depth + 1)
            except (ValueError, RecursionError):
                return []
        return [text] if text.startswith(("http://", "https://")) else []
    if isinstance(value, list) and depth < 2:
        return [u for item in value for u in http_urls(item, depth + 1)]
    return []


def first_urls(place: dict[str, Any], *fields: str) -> list[str]:
    """URLs of the first field that has any: the order says which output is the video."""
    for name in fields:
        if urls := http_urls(place.get(name)):
            return urls
    return []
