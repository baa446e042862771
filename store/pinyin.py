"""Pinyin keys for people's names, so `@lina` and `@ln` find 李娜."""
from __future__ import annotations

from pypinyin import Style, lazy_pinyin


def name_keys(name: str) -> tuple[str, str]:
    """(full pinyin without tones, initials), both lowercase: 李娜 → ("lina", "ln")."""
    syllables = [s.lower() for s in lazy_pinyin(name, style=Style.NORMAL, errors="default") if s.strip()]
    full = "".join(syllables).replace(" ", "")
    initials = "".join(s[0] for s in syllables if s)
    return full, initials
