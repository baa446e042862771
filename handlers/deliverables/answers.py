"""The owner's typed answer to `识别到 CPU峰值 87.5%，对吗？`: right, wrong, or the right value.

    对 / 对的 / 是 / 👍 / ok        → right
    不对 / 错了 / no               → wrong (the bot then asks for the value)
    85% / 不对，应该是 85.2%        → the value, in the field's unit
    anything else                  → None: not an answer, nothing changes
"""
from __future__ import annotations

import re
import unicodedata
from typing import Literal

from cards.answer_words import ANSWER_WORDS
from handlers.deliverables.extract import VALUE, convert
from handlers.deliverables.rules import FieldRule

_WRONG_EXTRA = ("错了", "错", "不准", "识别错了", "不是这个")
_TRAIL = "。.!！~～ ，,"


def parse_answer(text: str, rule: FieldRule) -> Literal["right", "wrong"] | float | None:
    folded = unicodedata.normalize("NFKC", text).strip().strip(_TRAIL).casefold()
    if not folded:
        return None
    m = VALUE.search(folded)
    if m is not None:
        value = convert(float(m.group(1).replace(",", "")), m.group(2) or "", rule)
        return value  # a value in another unit (ms for a %) is None: not an answer
    words = {w.casefold() for loc in ANSWER_WORDS["yes"].values() for w in loc}
    nos = {w.casefold() for loc in ANSWER_WORDS["no"].values() for w in loc} | set(_WRONG_EXTRA)
    head = re.split(r"[\s，,。！!]+", folded)[0]
    if folded in nos or head in nos:
        return "wrong"
    if folded in words or head in words:
        return "right"
    return None
