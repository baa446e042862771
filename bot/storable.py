"""Text the databases can keep: PostgreSQL refuses NUL in text, and no driver encodes a lone surrogate.

JSON lets anyone send both ("\\u0000", "\\ud800"); let through, they fail at the
INSERT (a 500 the platform retries forever) or later in a handler. Inputs that
hold them are refused where they come in.
"""
from __future__ import annotations

import re
from typing import Any

UNSTORABLE = "holds a character that cannot be stored (NUL or a lone UTF-16 surrogate)"


# JSON bodies nest at most this deep (ours nest four levels); deeper is refused at the door,
# before a recursive parser or walker could run out of stack (a 500).
MAX_JSON_DEPTH = 32
# Integers in bodies stay within what every JSON reader and a BIGINT column agree on.
MAX_JSON_INT = 2 ** 53
MAX_QUERY_INT = 2 ** 63 - 1
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, without parsing it (strings skipped)."""
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for b in brackets:
        depth += 1 if b in (0x5B, 0x7B) else -1
        deepest = max(deepest, depth)
    return deepest


def json_problem(value: Any) -> str | None:
    """Why a parsed JSON value cannot be taken (too deep, an integer out of range), or None."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(v, bool):
            continue
        if isinstance(v, int) and not -MAX_JSON_INT <= v <= MAX_JSON_INT:
            return f"holds an integer beyond ±2^53"
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
    return None


def storable(value: Any) -> bool:
    """False if any string in `value` (walking dicts and lists, keys too) holds NUL or a lone surrogate."""
    stack = [value]
    while stack:  # a loop, not recursion: a deep value must not exhaust the stack
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return False
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return True
