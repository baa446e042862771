"""Text as people see it: 「20 字以内」 counts what is on the screen, not code points.

A family emoji (👨‍👩‍👧: five code points joined by ZWJ), a flag (🇨🇳: two), a skin
tone (👍🏻) or a letter with combining marks (é typed as e + U+0301) is one 字 to the
person typing it. Clusters follow Unicode's extended grapheme clusters (UAX #29),
segmented by the `regex` module's \\X, after NFC. Zero-width and control characters
that stand alone (a ZWSP pasted from a web page, a BOM, U+0000) show nothing and
count for nothing; a text of only such characters is no text at all.
"""
from __future__ import annotations

import unicodedata

import regex

_CLUSTER = regex.compile(r"\X")
# Cf: format (ZWSP, ZWJ, BOM, LRM…), Cc: controls, Zs/Zl/Zp: separators, Mn alone: a
# stray variation selector or combining mark with nothing to sit on still draws
# nothing by itself in most fonts, but a mark on a base letter is inside its cluster.
_INVISIBLE = {"Cf", "Cc", "Zs", "Zl", "Zp"}


def _is_invisible_cluster(cluster: str) -> bool:
    return all(unicodedata.category(ch) in _INVISIBLE or ch in "\ufe0e\ufe0f" for ch in cluster)


def clusters(text: str) -> list[str]:
    """The visible grapheme clusters of `text` after NFC (spaces count: they are seen as gaps)."""
    out = []
    for c in _CLUSTER.findall(unicodedata.normalize("NFC", text)):
        if c.isspace() or not _is_invisible_cluster(c):
            out.append(c)
    return out


def visible_length(text: str) -> int:
    """How many 字 a person counts in `text`."""
    return len(clusters(text))


def visible_text(text: str) -> str:
    """`text` in NFC without the clusters that show nothing; spaces collapsed and trimmed."""
    return " ".join("".join(clusters(text)).split())


def is_invisible(text: str) -> bool:
    """True when `text` shows nothing at all (empty, spaces, zero-width characters)."""
    return not visible_text(text)
