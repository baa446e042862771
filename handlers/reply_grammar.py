"""The one-line replies of the weekly key action and leave requests, as text only.

Commands are declared by the features that own them, with their words (handlers/router.py).

Nothing here looks anything up: goals and witnesses come back as typed and are
resolved by the caller against the tenant's goals and directory.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from dataclasses import replace
from datetime import date, timedelta

from cards import texts
from handlers import leave_texts  # noqa: F401  (the texts of leave parsing join the catalogue)
from handlers.visible_text import visible_length, visible_text
from handlers.dates import Calendar, DateError, FoundDate, date_at, date_span_at, find_dates

MAX_THING_LENGTH = 20

# Full-width ASCII (＠＃ＯＫＲ１２，) and the ideographic space map one-to-one onto
# ASCII, so a folded copy has the same indices as the original: patterns run on
# the copy, while what the user wrote (e.g. Chinese punctuation) is sliced from
# the original.
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_WIDTH[0x3000] = 0x20


def fold_width(text: str) -> str:
    """Full-width ASCII and U+3000 to half-width, keeping every index in place."""
    return text.translate(_WIDTH)


def collapse_spaces(text: str) -> str:
    return " ".join(text.split())


# Punctuation that glues a part of the reply to the next one (`完成报告，@李娜`), after folding.
_EDGE_PUNCT = ",;:、。"

# A mention is @ plus everything up to whitespace, another @ or punctuation that cannot
# be part of a name or userid.
_MENTION = re.compile(r"@[ \t]*([^\s@#,;:、。!?()\[\]【】（）「」“”\"'‘’<>《》]+)")
# `a@b.com` is an address, not a mention; `2份PPT@李娜` is a mention.
_EMAIL_LEFT = re.compile(r"[A-Za-z0-9._%+\-]$")
_EMAIL_RIGHT = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")

_CODE = re.compile(r"#?O(\d+)(?:[-_.–—·]?KR(\d+))?", re.IGNORECASE)
_CODE_O = re.compile(r"#?O(\d+)", re.IGNORECASE)
_CODE_KR = re.compile(r"[-_.–—·]?KR(\d+)", re.IGNORECASE)
_CODE_THEN_CJK = re.compile(r"(#?O\d+(?:[-_.–—·]?KR\d+)?)(?=[\u3400-\u9fff])", re.IGNORECASE)
NONE_WORDS = frozenset({"无", "-", "--", "—", "–", "跳过", "无目标", "不关联", "不关联目标", "没有", "none", "n/a"})


@dataclass
class ParsedReply:
    goal: str | None = None  # the goal token as typed: 'o1kr2', '#O1', '＃新产品上市'
    goal_none: bool = False  # 无 / - / 跳过 / 无目标: explicitly no goal
    thing: str | None = None
    witness_tokens: list[str] = field(default_factory=list)
    thing_length: int = 0
    goal_code: str | None = None  # canonical code when the goal is code-shaped: 'O1-KR2'
    goal_title: str | None = None  # the words after '#' when they are not a code: '新产品上市'
    witnesses_are_userids: bool = False  # True when the platform resolved the mentions

    @property
    def too_long(self) -> bool:
        return self.thing_length > MAX_THING_LENGTH

    @property
    def is_empty(self) -> bool:
        return self.goal is None and not self.goal_none and self.thing is None and not self.witness_tokens


def canonical_goal_code(token: str) -> str | None:
    """`o1kr2`, `#O1-KR2`, `Ｏ１－ＫＲ２` → 'O1-KR2'; `O3` → 'O3'; anything else → None."""
    m = _CODE.fullmatch(unicodedata.normalize("NFKC", token).strip())
    if not m:
        return None
    code = f"O{int(m.group(1))}"
    return code + f"-KR{int(m.group(2))}" if m.group(2) else code


def parse_action_reply(text: str, *, platform_mentions: list[str] | None = None) -> ParsedReply:
    """Split `[goal] thing @witness` into its parts; any part may be missing."""
    folded = fold_width(text)
    chars = list(text)
    mentions: list[str] = []
    for m in _MENTION.finditer(folded):
        if _EMAIL_LEFT.search(folded, 0, m.start()) and _EMAIL_RIGHT.fullmatch(m.group(1)):
            continue
        token = m.group(1).rstrip(".")
        if token:
            mentions.append(token)
        for i in range(m.start(), m.end()):
            chars[i] = " "
    # A lone '@' with nothing after it carries no meaning; drop it from the thing.
    for m in re.finditer(r"@(?=\s|$)", folded):
        chars[m.start()] = " "
    kept = "".join(chars)
    folded_kept = fold_width(kept)

    result = ParsedReply()
    if platform_mentions:
        result.witness_tokens = list(platform_mentions)
        result.witnesses_are_userids = True
    else:
        result.witness_tokens = mentions

    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", folded_kept)]
    rest_from = 0
    if tokens:
        rest_from = _take_goal(kept, folded_kept, tokens, result)

    # NFC, without zero-width clutter; `20 字` counts grapheme clusters, as people do.
    thing = visible_text(kept[rest_from:]).strip(_EDGE_PUNCT + "，；： ")
    result.thing = thing or None
    result.thing_length = visible_length(thing)
    return result


def _take_goal(kept: str, folded: str, tokens: list[tuple[int, int]], result: ParsedReply) -> int:
    """Recognise a goal in the first token(s); return where the thing starts."""
    start, end = tokens[0]
    first = folded[start:end]
    # `O1-KR2：完成报告` and `O1-KR2完成报告`: the goal may be glued to the thing.
    head = re.split(r"[:,;]", first, maxsplit=1)[0].rstrip(_EDGE_PUNCT)
    glued = _CODE_THEN_CJK.match(head)
    if glued:
        head = glued.group(1)
    end = start + len(head)

    if head.casefold() in NONE_WORDS:
        result.goal_none = True
        return end

    code = None
    if not glued and head == first and _CODE_O.fullmatch(head) and len(tokens) > 1:
        # `O1 KR2 …`: the code was typed with a space in it.
        s2, e2 = tokens[1]
        second = folded[s2:e2].rstrip(_EDGE_PUNCT)
        if _CODE_KR.fullmatch(second):
            end = s2 + len(second)
            code = canonical_goal_code(head + "-" + second.lstrip("-_.–—·"))
    if code is None:
        code = canonical_goal_code(head)
    if code is not None:
        result.goal = kept[start:end]
        result.goal_code = code
        return _after_colon(folded, end)

    if head.startswith("#"):
        title = head.lstrip("#").strip()
        if not title and head == first and len(tokens) > 1:
            # `# 新产品上市 …`: a space slipped in after the '#'.
            s2, e2 = tokens[1]
            title = re.split(r"[:,;]", folded[s2:e2], maxsplit=1)[0].rstrip(_EDGE_PUNCT)
            end = s2 + len(title)
        if not title:
            return end
        result.goal = kept[start:end]
        code = canonical_goal_code(title)
        if code:
            result.goal_code = code
        else:
            result.goal_title = kept[end - len(title):end]
        return _after_colon(folded, end)
    return start


def _after_colon(folded: str, at: int) -> int:
    return at + 1 if folded[at:at + 1] in (":", ",", ";") else at


# -- leave -------------------------------------------------------------------

class LeaveParseError(ValueError):
    """A leave request that cannot be understood; `text(locale)` is the reply to the user."""

    def __init__(self, key: str, *, code: str, token: str = "", suggested: "LeaveRequest | None" = None,
                 params: dict[str, str] | None = None, span: tuple[date, date] | None = None) -> None:
        self.key, self.params, self.span = key, dict(params or {}), span
        self.code = code  # invalid_date | end_before_start | missing_date | too_long | past
        self.token = token
        self.suggested = suggested  # code "past": the same request with the next future date
        super().__init__(self.text("zh"))

    def text(self, locale: str) -> str:
        """The reply in `locale`; a suggested span of days is worded in it too (12-01 至 12-05)."""
        params = dict(self.params)
        if self.span is not None:
            params["suggested"] = date_range(locale, *self.span)
        return texts.t(locale, self.key, **params)


def date_range(locale: str, start: date, end: date) -> str:
    """2026-12-01, or 2026-12-01 至 2026-12-05 (…to… in English)."""
    if start == end:
        return start.isoformat()
    return texts.t(locale, "leave.range", start=start.isoformat(), end=end.isoformat())


@dataclass(frozen=True)
class LeaveRequest:
    start: date
    end: date
    reason: str = ""
    whole_week: bool = False


MAX_LEAVE_DAYS = 366

# 请假, 请病假, 休年假, 调休: a leave kind typed in the word is also its reason.
_LEAVE_KINDS = "病|事|年|婚|产|丧|陪产|育儿|探亲"
_LEAVE_WORD = rf"(?:请(?P<k1>{_LEAVE_KINDS})?假|休(?P<k2>{_LEAVE_KINDS})?假|(?P<k3>调休))"
# The leave word must stand alone: `请假至12-05` and `请病假` are requests, but
# `请假流程优化 @李娜` is somebody's weekly action.
_LEAVE_END = r"(?=$|[\s:,;、。!至到从今明后大\d周下本这星礼月一半全])"
_LEAVE_HEAD = re.compile(
    rf"\s*(?:我\s*)?(?:{_LEAVE_WORD}{_LEAVE_END}|leave(?=$|\s+(?:to|until|from|today|tomorrow|\d)))", re.IGNORECASE)
# `明天请假`, `下周一到周三请年假`: the date first, then the leave word.
_LEAVE_AFTER_DATE = re.compile(rf"\s*(?:要|想|需要|得)?\s*{_LEAVE_WORD}{_LEAVE_END}")
_ME = re.compile(r"\s*(?:我\s*)?")
SKIP_HEAD = re.compile(r"\s*(?:本周跳过|skip\s+this\s+week\b)", re.IGNORECASE)
# `请假 至 12-05`: the range starts today.
_OPEN_RANGE = re.compile(r"(?:至|到|~|until|to)\s*$", re.IGNORECASE)
# Something date-like that no date pattern took, for a precise error message.
_DATE_LIKE = re.compile(r"\d[\d\s\-/.年月日号]*\d|\d")
_SICK = "病假"


def _kind(m: re.Match[str]) -> str:
    k = m.group("k1") or m.group("k2")
    return f"{k}假" if k else (m.group("k3") or "")


def starts_skip(text: str) -> bool:
    """Whether `text` skips this week (`本周跳过 出差`)."""
    return SKIP_HEAD.match(fold_width(text)) is not None


def starts_leave(text: str) -> bool:
    """Whether `text` is a leave request (`请假 …`, `请病假`, `明天请假`, `下周一到周三请假`)."""
    folded = fold_width(text)
    if _LEAVE_HEAD.match(folded):
        return True
    span = date_span_at(folded, _ME.match(folded).end())  # type: ignore[union-attr]
    return span is not None and _LEAVE_AFTER_DATE.match(folded, span[1]) is not None


def parse_leave(text: str, today: date, calendar: Calendar | None = None) -> LeaveRequest | None:
    """`请假 12-01 至 12-05 年假` / `请假 至 12-05` / `明天请假` / `请病假` / `本周跳过 出差`; None if neither.

    A date without a year that is already past is not moved a year: the request is
    refused with code "past" and the next-year reading in `suggested`, so the caller can ask.
    """
    folded = fold_width(text)
    m = SKIP_HEAD.match(folded)
    if m:
        monday = today - timedelta(days=today.weekday())
        return LeaveRequest(monday, monday + timedelta(days=6), _reason(text[m.end():]), whole_week=True)

    found = None
    m = _LEAVE_HEAD.match(folded)
    try:
        if m is None:
            at = _ME.match(folded).end()  # type: ignore[union-attr]
            found = date_at(folded, at, today, calendar)
            head = _LEAVE_AFTER_DATE.match(folded, found.at[1]) if found is not None else None
            if found is None or head is None:
                return None
            kind, rest = _kind(head), text[:found.at[0]] + " " + text[head.end():]
        else:
            kind = _kind(m)
            body_at = m.end()
            found = find_dates(folded[body_at:], today, calendar)
            if found is not None:
                found = _shift(found, body_at)
            rest = text[body_at:] if found is None else text[body_at:found.at[0]] + " " + text[found.at[1]:]
    except DateError as exc:
        if exc.code == "end_before_start":
            raise LeaveParseError("leave.err.end_before_start", code="end_before_start",
                                  token=exc.token, params={"token": exc.token}) from None
        raise _invalid(exc.token) from None

    reason = _reason(rest)
    if kind and kind not in reason:
        reason = _reason(f"{kind} {reason}")
    if found is None:
        bad = _DATE_LIKE.search(folded, m.end() if m else 0)
        if bad:
            raise _invalid(bad.group(0))
        if _SICK in reason:
            return LeaveRequest(today, today, reason)  # sick leave is announced on the day
        raise LeaveParseError("leave.err.missing_date", code="missing_date")

    start, end = found.start, found.end
    opened = m is not None and found.start == found.end and _OPEN_RANGE.search(folded[:found.at[0]])
    if opened and m is not None:
        start = today
        reason = _reason(_OPEN_RANGE.sub("", text[m.end():found.at[0]]) + " " + text[found.at[1]:])
        if kind and kind not in reason:
            reason = _reason(f"{kind} {reason}")
    if found.past and found.suggested is not None:
        s_start, s_end = (today if opened else found.suggested[0]), found.suggested[1]
        suggested = LeaveRequest(s_start, s_end, reason)
        raise LeaveParseError("date.past", code="past", token=found.token, suggested=suggested,
                              params={"token": found.token}, span=(s_end, s_end) if opened else (s_start, s_end))
    if end < start:
        raise LeaveParseError("leave.err.end_before_start.days", code="end_before_start",
                              params={"end": f"{end:%m-%d}", "start": f"{start:%m-%d}"})
    if (end - start).days + 1 > MAX_LEAVE_DAYS:
        raise LeaveParseError("leave.err.too_long", code="too_long")
    return LeaveRequest(start, end, reason)


def _shift(found: FoundDate, by: int) -> FoundDate:
    return replace(found, at=(found.at[0] + by, found.at[1] + by))


def _reason(text: str) -> str:
    return collapse_spaces(text).strip(",，;；:：、。 ")


def _invalid(token: str) -> LeaveParseError:
    token = collapse_spaces(token)
    return LeaveParseError("leave.err.invalid_date", code="invalid_date", token=token, params={"token": token})


# Typed answers to the buttons of one's open cards: what the card's button says, and the
# short word a platform's markdown fallback tells people to type (DingTalk before a card
# template is configured). The router's `answer` command finds the open card with that button.
CARD_ANSWERS: dict[str, str] = {
    "接受": "accept", "接受见证": "accept", "同意见证": "accept", "accept": "accept",
    "无法见证": "decline", "不能见证": "decline", "拒绝": "decline", "拒绝见证": "decline", "decline": "decline",
    "确认": "confirm", "确认完成": "confirm", "confirm": "confirm",
    # (还没完成 is the owner's 未完成 command; a witness says 尚未完成.)
    "尚未完成": "deny", "否认": "deny", "deny": "deny", "not yet": "deny",
}
