"""A typed answer to an open card: 「接受」「确认」「不是他」「第二个」「李娜」 → the button it means.

Where cards fail (a client without card support, DingTalk's markdown fallback) the
loop must still close, so whatever a card asks can be answered in words. This
module only maps text to one of the card's own buttons; the caller then handles it
exactly as a press of that button. Nothing here guesses: an answer that fits two
buttons, or none, is None and the caller asks again.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Literal

from cards.answer_words import ANSWER_WORDS, CIRCLED, KEY_CLASSES, ORDINAL_WORDS

How = Literal["label", "ordinal", "name", "meaning"]

_PUNCT = re.compile(r"[\s,.;:!?~，。；：！？、…“”\"'「」『』（）()【】\[\]]+")
_ORDINAL = re.compile(r"^(?:第|选|选择|要|pick|choose|option|#|no\.?)?\s*(\d{1,2}|[一二两三四五六七八九十]|first|second|third|fourth|fifth|last|最后)\s*(?:一?个|一?位|一?项|一?条|号|one)?$")


@dataclass(frozen=True)
class TypedAnswer:
    key: str  # the button's key, as a press would send it
    how: How  # what in the text decided it


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), case-folded, punctuation and spaces dropped."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text)).casefold()


def meaning_of(key: str) -> str | None:
    """'yes', 'no' or 'none' for a button key whose meaning is known (`accept`, `pick:none`)."""
    return KEY_CLASSES.get(key) or KEY_CLASSES.get(key.rpartition(":")[2] if ":" in key else "")


def _words(kind: str, locale: str) -> set[str]:
    by_locale = ANSWER_WORDS[kind]
    # Both catalogues count: an English word typed on a Chinese tenant is still clear.
    return {normalise(w) for w in by_locale.get(locale, ()) + tuple(w for l, ws in by_locale.items()
                                                                     if l != locale for w in ws)}


def typed_answer(text: str, buttons: Iterable[tuple[str, str]], *, locale: str = "zh") -> TypedAnswer | None:
    """The button (key, label) that `text` answers, or None when it answers none or several."""
    options = [(k, label) for k, label in buttons]
    said = normalise(text)
    if not said or not options:
        return None
    labels = [normalise(label) for _, label in options]

    # 1. The button's own words: 「接受见证」, 「李娜（注册部）」.
    exact = [i for i, label in enumerate(labels) if label == said]
    if len(exact) == 1:
        return TypedAnswer(options[exact[0]][0], "label")

    # 2. The n-th option: 「第二个」, 「2」, 「②」.
    n = _ordinal(said)
    if n is not None:
        if n == -1:
            n = len(options)
        return TypedAnswer(options[n - 1][0], "ordinal") if 1 <= n <= len(options) else None

    # 3. What the button means: 「接受」「好的」 → the one yes-button; 「不是他」 → 都不是.
    kinds = [meaning_of(k) for k, _ in options]
    for kind in ("none", "no", "yes"):
        if said in _words(kind, locale):
            hits = [i for i, k in enumerate(kinds) if k == kind]
            if kind == "none" and not hits:
                hits = [i for i, k in enumerate(kinds) if k == "no"]  # 不是他 on a yes/no card
            return TypedAnswer(options[hits[0]][0], "meaning") if len(hits) == 1 else None

    # 4. Part of exactly one label: 「李娜」 for 「李娜（注册部）」, 「O1-KR2」 for 「O1-KR2 NMPA…」.
    if len(said) >= 2:
        part = [i for i, label in enumerate(labels) if said in label]
        if len(part) == 1:
            return TypedAnswer(options[part[0]][0], "name")
    return None


def _ordinal(said: str) -> int | None:
    if len(said) == 1 and said in CIRCLED:
        return CIRCLED.index(said) + 1
    m = _ORDINAL.match(said)
    if not m:
        return None
    word = m.group(1)
    return int(word) if word.isdigit() else ORDINAL_WORDS[word]
