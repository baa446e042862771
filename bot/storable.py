"""Text the databases can keep: PostgreSQL refuses NUL in text, and no driver encodes a lone surrogate.

JSON lets anyone send both ("\\u0000", "\\ud800"); let through, they fail at the
INSERT (a 500 the platform retries forever) or later in a handler. Inputs that
hold them are refused where they come in.
"""
from __future__ import annotations

from typing import Any

UNSTORABLE = "holds a character that cannot be stored (NUL or a lone UTF-16 surrogate)"


def storable(value: Any) -> bool:
    """False if any string in `value` (walking dicts and lists, keys too) holds NUL or a lone surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(storable(v) for v in value)
    return True
