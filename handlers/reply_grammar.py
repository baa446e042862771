"""The one-line replies of the weekly key action and leave requests, as text only.

Commands are declared by the features that own them, with their words (handlers/router.py).

Nothing here looks anything up: goals and witnesses come back as typed and are
resolved by the caller against the tenant's goals and directory.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta

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

    thing = collapse_spaces(kept[rest_from:]).strip(_EDGE_PUNCT + "，；： ")
    result.thing = thing or None
    result.thing_length = len(thing)
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
    """A leave request that cannot be understood; str() is the reply to the user."""

    def __init__(self, message: str, *, code: str, token: str = "") -> None:
        super().__init__(message)
        self.code = code  # invalid_date | end_before_start | missing_date | too_long
        self.token = token


@dataclass(frozen=True)
class LeaveRequest:
    start: date
    end: date
    reason: str = ""
    whole_week: bool = False


MAX_LEAVE_DAYS = 366
_YEAR_TURN_DAYS = 183
_DATE_FORMAT_HINT = "请写成 12-05 这样的格式"

# `请假至12-05` is glued, but `请假流程优化 @李娜` is somebody's weekly action.
LEAVE_HEAD = re.compile(
    r"\s*(?:请假(?=$|[\s:,至到从今明后\d])|leave(?=$|\s+(?:to|until|from|today|tomorrow|\d)))", re.IGNORECASE)
SKIP_HEAD = re.compile(r"\s*(?:本周跳过|skip\s+this\s+week\b)", re.IGNORECASE)
_DATE = (
    r"(?:今天|明天|后天|today|tomorrow"
    r"|(?:\d{4}\s*[-/.年]\s*)?\d{1,2}\s*[-/.月]\s*\d{1,2}\s*[日号]?)"
)
_RANGE_SEP = r"(?:至|到|~|—|–|\s-\s|\bto\b|\buntil\b)"
_RANGE = re.compile(rf"\s*(?:从\s*)?(?P<start>{_DATE})?\s*{_RANGE_SEP}\s*(?P<end>{_DATE})", re.IGNORECASE)
_SINGLE = re.compile(rf"\s*(?P<start>{_DATE})", re.IGNORECASE)
_DATE_PARTS = re.compile(r"(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
# Something date-like that the strict pattern refused, for a precise error message.
_DATE_LIKE = re.compile(r"\d[\d\s\-/.年月日号]*\d|\d")


def parse_leave(text: str, today: date) -> LeaveRequest | None:
    """`请假 12-01 至 12-05 年假` / `请假 至 12-05` / `本周跳过 出差`; None if the text is neither."""
    folded = fold_width(text)
    m = SKIP_HEAD.match(folded)
    if m:
        monday = today - timedelta(days=today.weekday())
        return LeaveRequest(monday, monday + timedelta(days=6), _reason(text[m.end():]), whole_week=True)
    m = LEAVE_HEAD.match(folded)
    if not m:
        return None
    body_at = m.end()
    body = folded[body_at:]

    found = _RANGE.search(body)
    if found:
        end = _date_value(found.group("end"), today)
        if found.group("start"):
            start = _date_value(found.group("start"), today, before=end)
            if end.year > start.year and (end - start).days > _YEAR_TURN_DAYS and not _has_year(found.group("end")):
                # `12-05 至 12-01` is a slip, not a leave of almost a year; real ranges
                # over New Year (`12-28 至 01-05`) are short.
                raise _end_before_start(start, end)
        else:
            start = today
    else:
        found = _SINGLE.search(body)
        if not found:
            bad = _DATE_LIKE.search(body)
            if bad:
                raise _invalid(bad.group(0))
            raise LeaveParseError("请写明请假到哪天，例如：请假 至 12-05 或 请假 12-01 至 12-05 年假",
                                  code="missing_date")
        start = end = _date_value(found.group("start"), today)
    original = text[body_at:]
    reason = _reason(original[:found.start()] + " " + original[found.end():])

    if end < start:
        raise _end_before_start(start, end)
    if (end - start).days + 1 > MAX_LEAVE_DAYS:
        raise LeaveParseError("请假时间不能超过一年，请检查日期", code="too_long")
    return LeaveRequest(start, end, reason)


def _reason(text: str) -> str:
    return collapse_spaces(text).strip(",，;；:：、。 ")


def _has_year(token: str) -> bool:
    return bool(re.match(r"\s*\d{4}", token))


def _end_before_start(start: date, end: date) -> LeaveParseError:
    return LeaveParseError(f"结束日期 {end:%m-%d} 早于开始日期 {start:%m-%d}，请检查", code="end_before_start")


def _invalid(token: str) -> LeaveParseError:
    token = collapse_spaces(token)
    return LeaveParseError(f"日期 {token} 无效，{_DATE_FORMAT_HINT}", code="invalid_date", token=token)


def _date_value(token: str, today: date, *, before: date | None = None) -> date:
    """A date token as a date. Without a year: the next such day from today, or for
    a range start (`before` = the range end) the latest such day not after the end."""
    word = token.strip().lower()
    relative = {"今天": 0, "today": 0, "明天": 1, "tomorrow": 1, "后天": 2}
    if word in relative:
        return today + timedelta(days=relative[word])
    parts = _DATE_PARTS.match(token.strip())
    if not parts:
        raise _invalid(token)
    year_s, month, day = parts.group(1), int(parts.group(2)), int(parts.group(3))
    if year_s:
        try:
            return date(int(year_s), month, day)
        except ValueError:
            raise _invalid(token) from None
    try:
        date(2000, month, day)  # a leap year, so 02-29 passes this check
    except ValueError:
        raise _invalid(token) from None
    if before is not None:
        year = before.year if (month, day) <= (before.month, before.day) else before.year - 1
    else:
        year = today.year if (month, day) >= (today.month, today.day) else today.year + 1
    try:
        return date(year, month, day)
    except ValueError:  # 02-29 in a year that has none
        raise _invalid(token) from None
