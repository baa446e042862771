"""What a message is, before any grammar reads it: a command, a weekly action, chit-chat, or a doubt.

    classify("状态")                         → command status
    classify("O1-KR2 完成2份报告初稿 @李娜")   → weekly_action (complete)
    classify("@邓超")                        → weekly_action (a part: the witness)
    classify("好的，收到")                    → chitchat ack
    classify("这是什么？")                    → chitchat question
    classify("测试")                          → doubtful (record only if the person confirms)
    classify("。。。")                        → unclear

Pure: no database, no clock. The words are data (cards/intent_words.py, per locale);
what the words do not settle is decided by the shape of the text: a goal code or an
@mention makes it part of a weekly action, a question mark or question word makes it
a question, and a short text without either is only doubtfully an action.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Literal

from cards.intent_words import CHAT_WORDS, QUESTION_ENDS, QUESTION_INSIDE, QUESTION_STARTS
from handlers.command_words import normalise
from handlers.reply_grammar import fold_width, parse_action_reply
from handlers.visible_text import clusters, visible_text

Kind = Literal["command", "weekly_action", "chitchat", "doubtful", "unclear"]
Chat = Literal["", "greeting", "thanks", "ack", "farewell", "emoji", "question"]

# A thing this long without a goal or a witness still reads as an action (the bot then
# asks for the witness); shorter, it may as well be a word typed to see what happens.
ACTION_MIN_LENGTH = 6
_CJK = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[a-z]{2,}", re.IGNORECASE)
# Voice input writes what it hears as punctuation words, and people type runs of them.
_SPLIT = re.compile(r"[\s,.;:!?~…、，。；：！？]+")


@dataclass(frozen=True)
class Intent:
    kind: Kind
    command: str = ""  # kind "command": the command's name (status, help, goals, done, leave, …)
    rest: str = ""  # kind "command": what followed the command word
    chat: Chat = ""  # kind "chitchat": which kind
    complete: bool = False  # kind "weekly_action": goal (or none), thing and witness are all there
    text: str = ""  # the message, normalised for display (NFC, no zero-width clutter)


def clean(text: str) -> str:
    """NFC, half-width ASCII, zero-width characters gone, spaces collapsed."""
    return visible_text(fold_width(text))


def _no_commands(text: str) -> tuple[str, str]:
    return "", text


def classify(text: str, *, locale: str = "zh", mentions: tuple[str, ...] | list[str] = (),
             commands: Callable[[str], tuple[str, str]] = _no_commands) -> Intent:
    """What `text` is. `commands` is the command table to try first (the router's `classify`);
    the router has already taken commands out of what reaches a feature, so it may be left out there."""
    shown = visible_text(fold_width(text))
    if not shown:
        return Intent("unclear", text="")

    # 1. Commands, exact and tolerant (状态。 / 进度如何 / 帮主) and with arguments (请假 明天).
    name, rest = commands(shown)
    if name:
        return Intent("command", command=name, rest=rest, text=shown)

    # 2. Chit-chat said in so many words: every piece of `好的，收到` is one.
    chat = _chat_words(shown, locale)
    parsed = parse_action_reply(shown, platform_mentions=list(mentions) or None)
    has_part = bool(parsed.witness_tokens or parsed.goal_code or parsed.goal_title or parsed.goal_none)
    if chat and not has_part:
        return Intent("chitchat", chat=chat, text=shown)
    if not has_part and _only_emoji(shown):
        return Intent("chitchat", chat="emoji", text=shown)

    # 3. A weekly action, whole or in parts.
    if has_part:
        complete = bool(parsed.thing and parsed.witness_tokens and not parsed.too_long)
        return Intent("weekly_action", complete=complete, text=shown)

    # 4. A question is asked, not recorded.
    if _is_question(shown, locale):
        return Intent("chitchat", chat="question", text=shown)

    # 5. A thing alone: an action if it says enough, a doubt if short, unclear if it says nothing.
    thing = parsed.thing or ""
    if not _says_something(thing):
        return Intent("unclear", text=shown)
    if parsed.thing_length >= ACTION_MIN_LENGTH:
        return Intent("weekly_action", complete=False, text=shown)
    return Intent("doubtful", text=shown)


def _pieces(text: str) -> list[str]:
    return [p for p in (normalise(p) for p in _SPLIT.split(text)) if p]


def _chat_words(text: str, locale: str) -> Chat:
    """The chit-chat kind when every piece of the text is chit-chat (`好的，收到`, `谢谢！👍`)."""
    index = _chat_index()
    whole = normalise(text)
    if whole in index:  # `good morning`, `thank you`: several words, one greeting
        return index[whole]  # type: ignore[return-value]
    pieces = _pieces(text)
    if not pieces:
        return ""
    kinds: list[str] = []
    for piece in pieces:
        if piece in index:
            kinds.append(index[piece])
            continue
        if _only_emoji(piece):
            kinds.append("emoji")
            continue
        # `好的👍`: the emoji after a word only adds warmth.
        words = "".join(c for c in clusters(piece) if not _is_emoji(c))
        kind = index.get(words) or index.get(words.rstrip("啊呀啦哦哈呢了嘛么~")) or _squeezed(words, index)
        if kind is None:
            return ""
        kinds.append(kind)
    # The first word sets the tone: 你好，谢谢 greets; 好的，谢谢 acknowledges.
    first = next((k for k in kinds if k != "emoji"), "emoji")
    return first  # type: ignore[return-value]


def _squeezed(piece: str, index: dict[str, str]) -> str | None:
    """`好好好` is `好`, `哈哈哈哈` is `哈哈`, `谢谢谢谢` is `谢谢`: words repeated for warmth."""
    for size in (1, 2, 3):
        unit = piece[:size]
        if len(piece) > size and len(piece) % size == 0 and piece == unit * (len(piece) // size):
            for n in (1, 2):
                if unit * n in index:
                    return index[unit * n]
    return None


_CHAT_INDEX: dict[str, str] = {}


def _chat_index() -> dict[str, str]:
    if not _CHAT_INDEX:
        for kind, by_locale in CHAT_WORDS.items():
            for words in by_locale.values():
                for w in words:
                    _CHAT_INDEX.setdefault(normalise(w), kind)
    return _CHAT_INDEX


def _only_emoji(text: str) -> bool:
    seen = [c for c in clusters(text) if not c.isspace()]
    return bool(seen) and all(_is_emoji(c) for c in seen)


def _is_emoji(cluster: str) -> bool:
    base = cluster[0]
    return unicodedata.category(base) in ("So", "Sk") or 0x1F000 <= ord(base) <= 0x1FAFF or base in "\u2600\u2764"


def _is_question(text: str, locale: str) -> bool:
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    if folded.rstrip().endswith("?"):
        return True
    core = _SPLIT.sub("", folded)
    ends = QUESTION_ENDS.get(locale, ()) + QUESTION_ENDS["zh"]
    starts = QUESTION_STARTS.get(locale, ()) + QUESTION_STARTS["zh"] + QUESTION_STARTS["en"]
    if len(core) <= 12 and any(core.endswith(e) for e in ends if e != "?") and _CJK.search(core):
        return True
    inside = QUESTION_INSIDE.get(locale, ()) + QUESTION_INSIDE["zh"]
    if len(core) <= 14 and any(w in core for w in inside):
        return True
    return any(core.startswith(s.replace(" ", "")) for s in starts) and len(core) <= 16


def _says_something(thing: str) -> bool:
    """Letters or digits people can read: 「。。。」, 「1」 and 「a」 say nothing."""
    if _CJK.search(thing):
        return True
    return bool(_WORD.search(thing))
