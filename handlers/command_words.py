"""Whole-message commands typed the way people type them: `状态`, `状态。`, `进度如何`, `帮主`, `hepl`.

The features declare the words (most lists are in cards/intent_words.py, per locale). Tolerance is deliberately narrow, because a
command changes state where a misread weekly action only costs a question:
- punctuation, spaces and full-width forms never matter (voice input adds `。`, `，`);
- a trailing particle (吧, 啊, 呀, 啦, 哦, 哈, 呢, 了) is dropped if what is left is a command;
- a Chinese word with exactly the pinyin of a command word is that command (an IME
  or voice-input slip: 帮主 → 帮助, 壮态 → 状态), for words of two or more characters;
- a Latin word of four or more letters one edit away (OSA distance 1) from exactly one
  command word is that command (hepl → help, stauts → status).
"""
from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import OSA

from store.pinyin import name_keys

_DROP = re.compile(r"[\s,.;:!~…·、，。；：！？“”\"'「」『』（）()【】\[\]]+")
_PARTICLES = "吧啊呀啦哦哈呢了嘛么"
_CJK_ONLY = re.compile(r"[\u3400-\u9fff]{2,}")
_LATIN = re.compile(r"[a-z]{4,}")
# `查看状态`, `看看目标`: a polite verb in front of a command word.
_PREFIXES = ("查看", "看看", "查一下", "看一下", "我要看", "我想看", "请问", "显示", "查询", "告诉我")


def normalise(text: str) -> str:
    """NFKC, case-folded, without punctuation or spaces; a lone `?`/`？` is kept (it is the help command)."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    if folded in ("?", "??", "???"):
        return "?"
    return _DROP.sub("", folded.replace("?", ""))


class WordIndex:
    """The words of the commands the features declared, matched as people type them."""

    def __init__(self) -> None:
        self.exact: dict[str, str] = {}
        self.sounds: dict[str, str] = {}
        self.latin: dict[str, str] = {}

    def add(self, word: str, command: str) -> None:
        key = normalise(word)
        if not key:
            return
        if self.exact.get(key, command) != command:
            raise ValueError(f"the word {word!r} is claimed by {self.exact[key]!r} and {command!r}")
        self.exact[key] = command
        if _CJK_ONLY.fullmatch(key):
            self.sounds.setdefault(name_keys(key)[0], command)
        elif _LATIN.fullmatch(key):
            self.latin[key] = command

    def match(self, text: str) -> str | None:
        """The command the whole of `text` is, or None."""
        said = normalise(text)
        if not said:
            return None
        for candidate in _variants(said):
            if candidate in self.exact:
                return self.exact[candidate]
        if _CJK_ONLY.fullmatch(said):
            hit = self.sounds.get(name_keys(said)[0])
            if hit:
                return hit
        if _LATIN.fullmatch(said):
            near = {command for word, command in self.latin.items() if OSA.distance(said, word, score_cutoff=1) <= 1}
            if len(near) == 1:
                return near.pop()
        return None


def _variants(said: str) -> list[str]:
    out = [said]
    for p in _PREFIXES:
        if said.startswith(p) and len(said) > len(p):
            out.append(said[len(p):])
    for v in list(out):
        stripped = v.rstrip(_PARTICLES)
        if stripped and stripped != v:
            out.append(stripped)
    return out
