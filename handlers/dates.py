"""Dates as people type them in chat: 明天, 周三, 下周一到周三, 12月5日, 12-05, 5号, 月底.

A small parser of our own: the Chinese time-expression parsers on the package index
are either unmaintained (time-nlp, chinesetimenlp and their forks, last released
2021) or a large NLP toolkit (jionlp) whose time parser rolls a past date into the
future by itself and knows nothing of a tenant's working days. Both things matter
here: a date that is already past is reported, never moved a year in silence, and
月底 means the month's last working day on the tenant's calendar.

Reading a date without a year (or a day without a month) takes the nearest reading:
`01-05` typed on 12-20 is next January, `12-01` typed on 12-02 is yesterday. When the
nearest reading is in the past, the result says so (`past`) and carries the next
future reading (`suggested`) so that the caller can ask: "12-01 已经过去了，是指
2027-12-01 吗？". A bare weekday (周三) is the next such day, today included; 本周三
is this week's, even when past.
"""
from __future__ import annotations

import calendar as _monthcal
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Protocol

# Full-width ASCII and U+3000 fold to ASCII one-to-one, so indices of the folded copy
# are indices of what was typed (the same folding as reply_grammar.fold_width).
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_WIDTH[0x3000] = 0x20


class Calendar(Protocol):
    def is_working_day(self, d: date) -> bool: ...


class DateError(ValueError):
    """A date-shaped token that is not a date (02-30), or a range that ends before it starts."""

    def __init__(self, code: str, token: str, at: tuple[int, int] | None = None) -> None:
        super().__init__(f"{code}: {token}")
        self.code = code  # invalid_date | invalid_time | end_before_start
        self.token = token
        self.at = at  # where in the text, when known


@dataclass(frozen=True)
class FoundDate:
    start: date
    end: date
    at: tuple[int, int]  # where in the text (indices into what was typed)
    token: str  # as typed, spaces collapsed
    past: bool = False  # the reading ends before today
    suggested: tuple[date, date] | None = None  # the next future reading, when past and there is one
    time: time | None = None  # a time of day typed after the date (find_due only)


_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6,
            "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_WEEK_PREFIX = {"本": 0, "这": 0, "这个": 0, "本个": 0, "下": 1, "下个": 1, "下下": 2, "下下个": 2}
_REL = {"今天": 0, "今日": 0, "today": 0, "明天": 1, "明日": 1, "tomorrow": 1, "后天": 2, "大后天": 3}

# After a Chinese date word, a Chinese character that starts another word means the
# word was part of something else (5号楼, 周三例会); these may follow a date.
_CJK_OK_AFTER = "前到至截下上晚中早请休起开全一半整要想"
_END = rf"(?![\u3400-\u9fff](?<![{_CJK_OK_AFTER}]))"

_DAY = (
    r"(?P<{p}rel>大后天|今天|今日|明天|明日|后天|today|tomorrow)"
    r"|(?P<{p}wpre>下下个?|下个?|本个?|这个?)?(?:周|星期|礼拜)(?P<{p}wd>[一二三四五六日天1-7])"
    r"|(?P<{p}week>下下个?|下个?|本|这个?)(?:周|星期|礼拜)(?![一二三四五六日天1-7\d])"
    r"|(?P<{p}mend>(?:本|这个?|下个?)?月底)"
    r"|(?<![\d\-/.])(?:(?P<{p}y>\d{{4}})\s*[-/.年]\s*)?(?P<{p}mo>\d{{1,2}})\s*[-/.月]\s*(?P<{p}d>\d{{1,2}})(?![\d])\s*[日号]?"
    r"|(?<![\d\-/.月])(?P<{p}dom>\d{{1,2}})\s*[日号]"
)
_SEP = r"\s*(?:至|到|~|～|—|–|\s-\s|\bto\b|\buntil\b)\s*"
_RANGE = re.compile(rf"(?:从\s*)?(?:{_DAY.format(p='a_')})(?:{_SEP}(?:{_DAY.format(p='b_')}|(?P<b_bare>[一二三四五六日天])))?{_END}",
                    re.IGNORECASE)
_TIME = re.compile(r"\s*(?P<half>上午|早上|中午|下午|晚上)?\s*(?P<h>\d{1,2})\s*(?:[:：]|点|时)\s*(?P<mi>\d{1,2}|半)?\s*分?")


def fold(text: str) -> str:
    return text.translate(_WIDTH)


def find_dates(text: str, today: date, calendar: Calendar | None = None) -> FoundDate | None:
    """The first date or date range in `text`; None if there is none. Raises DateError."""
    found = _all(text, today, calendar)
    return found[0] if found else None


def find_last_date(text: str, today: date, calendar: Calendar | None = None) -> FoundDate | None:
    """The last date or range in `text` (a due time comes after the title); None if none."""
    found = _all(text, today, calendar)
    return found[-1] if found else None


def date_span_at(text: str, pos: int) -> tuple[int, int] | None:
    """Where a date-shaped expression starting at `pos` ends, without reading it (no clock needed)."""
    m = _RANGE.match(fold(text), pos)
    return (m.start(), m.end()) if m else None


def date_at(text: str, pos: int, today: date, calendar: Calendar | None = None) -> FoundDate | None:
    """The date or range that starts exactly at `pos` in `text` (`明天请假`); None if none does."""
    m = _RANGE.match(fold(text), pos)
    if m is None:
        return None
    token = " ".join(text[m.start():m.end()].split())
    try:
        return _resolve(m, token, today, calendar)
    except DateError as exc:
        raise DateError(exc.code, exc.token, (m.start(), m.end())) from None


def find_due(text: str, today: date, default_time: time, calendar: Calendar | None = None) -> FoundDate | None:
    """The last date in `text` with the time of day typed after it (`12-01 12:00`, `明天下午3点`).

    Without a time, `time` is `default_time`. A due is one moment: a range gives its end.
    Raises DateError, also for a time like 25:00.
    """
    found = find_last_date(text, today, calendar)
    if found is None:
        return None
    folded = fold(text)
    m = _TIME.match(folded, found.at[1])
    at_time, end = default_time, found.at[1]
    if m:
        hour = int(m.group("h"))
        minute = 30 if m.group("mi") == "半" else int(m.group("mi") or 0)
        if m.group("half") in ("下午", "晚上") and hour < 12:
            hour += 12
        token = " ".join(text[found.at[0]:m.end()].split())
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise DateError("invalid_time", token, (found.at[0], m.end()))
        at_time, end = time(hour, minute), m.end()
    day = found.end
    suggested = found.suggested and (found.suggested[1], found.suggested[1])
    return replace(found, start=day, end=day, at=(found.at[0], end), time=at_time,
                   token=" ".join(text[found.at[0]:end].split()), suggested=suggested)


def as_datetime(found: FoundDate) -> datetime:
    """A due as a naive tenant-local datetime."""
    return datetime.combine(found.end, found.time or time(0, 0))


def _all(text: str, today: date, calendar: Calendar | None) -> list[FoundDate]:
    folded = fold(text)
    out: list[FoundDate] = []
    for m in _RANGE.finditer(folded):
        token = " ".join(text[m.start():m.end()].split())
        try:
            out.append(_resolve(m, token, today, calendar))
        except DateError as exc:
            raise DateError(exc.code, exc.token, (m.start(), m.end())) from None
    return out


# -- one day expression ------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    kind: str  # rel | weekday | week | monthend | md | dom
    n: int = 0  # rel: days; weekday/week: weeks ahead; monthend: months ahead
    explicit: bool = False  # weekday: 本/下 typed
    weekday: int = 0
    year: int | None = None
    month: int = 0
    day: int = 0
    text: str = ""


def _spec(m: re.Match[str], p: str) -> _Spec | None:
    g = m.groupdict()
    if g.get(p + "rel"):
        return _Spec("rel", n=_REL[g[p + "rel"].lower()])
    if g.get(p + "wd"):
        pre = g.get(p + "wpre")
        return _Spec("weekday", n=_WEEK_PREFIX[pre] if pre else 0, explicit=bool(pre), weekday=_WEEKDAY[g[p + "wd"]])
    if g.get(p + "week"):
        return _Spec("week", n=_WEEK_PREFIX[g[p + "week"]])
    if g.get(p + "mo"):
        return _Spec("md", year=int(g[p + "y"]) if g.get(p + "y") else None, month=int(g[p + "mo"]),
                     day=int(g[p + "d"]), text=m.group(0))
    if g.get(p + "dom"):
        return _Spec("dom", day=int(g[p + "dom"]))
    if g.get(p + "mend"):
        return _Spec("monthend", n=1 if g[p + "mend"].startswith("下") else 0)
    return None


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def _month_end(year: int, month: int, today: date, calendar: Calendar | None) -> date:
    last = date(year, month, _monthcal.monthrange(year, month)[1])
    if calendar is not None:
        d = last
        while d.month == month and d >= today:
            if calendar.is_working_day(d):
                return d
            d -= timedelta(days=1)
    return last


def _nearest(s: _Spec, today: date, token: str) -> tuple[date, date | None]:
    """(nearest reading, next future reading if the nearest is past) of an md/dom spec without year."""
    if s.kind == "md":
        if _valid(2000, s.month, s.day) is None:  # 2000 is a leap year: 02-29 passes here
            raise DateError("invalid_date", token)
        cands = [d for y in (today.year - 1, today.year, today.year + 1)
                 if (d := _valid(y, s.month, s.day)) is not None]
    else:
        if not 1 <= s.day <= 31:
            raise DateError("invalid_date", token)
        cands = [d for n in range(-2, 13) if (d := _valid(*_add_months(today.year, today.month, n), s.day))]
    if not cands:
        raise DateError("invalid_date", token)
    best = min(cands, key=lambda d: (abs((d - today).days), d < today))
    if best >= today:
        return best, None
    future = [d for d in cands if d >= today]
    return best, (min(future) if future else None)


def _day(s: _Spec, today: date, calendar: Calendar | None, token: str,
         before: date | None = None) -> tuple[date, date, date | None]:
    """(start, end, suggested start when past) of one day expression.

    `before`: for the start of a range, a year-less date is the latest reading not after it.
    """
    if s.kind == "rel":
        d = today + timedelta(days=s.n)
        return d, d, None
    if s.kind == "weekday":
        if s.explicit:
            d = _monday(today) + timedelta(weeks=s.n, days=s.weekday)
            return d, d, (d + timedelta(weeks=1) if d < today else None)
        d = today + timedelta(days=(s.weekday - today.weekday()) % 7)
        if before is not None and d > before:
            d -= timedelta(weeks=1)
        return d, d, None
    if s.kind == "week":
        monday = _monday(today) + timedelta(weeks=s.n)
        return monday, monday + timedelta(days=6), None
    if s.kind == "monthend":
        y, mo = _add_months(today.year, today.month, s.n)
        d = _month_end(y, mo, today, calendar)
        return d, d, None
    if s.kind == "md" and s.year is not None:
        given = _valid(s.year, s.month, s.day)
        if given is None:
            raise DateError("invalid_date", token)
        return given, given, None
    if before is not None:
        if s.kind == "md":
            if _valid(2000, s.month, s.day) is None:
                raise DateError("invalid_date", token)
            year = before.year if (s.month, s.day) <= (before.month, before.day) else before.year - 1
            past = _valid(year, s.month, s.day)
            if past is None:
                raise DateError("invalid_date", token)
            return past, past, None
        for n in range(0, -3, -1):
            d2 = _valid(*_add_months(before.year, before.month, n), s.day)
            if d2 is not None and d2 <= before:
                return d2, d2, None
        raise DateError("invalid_date", token)
    d, nxt = _nearest(s, today, token)
    return d, d, nxt


def _resolve(m: re.Match[str], token: str, today: date, calendar: Calendar | None) -> FoundDate:
    a = _spec(m, "a_")
    assert a is not None
    b = _spec(m, "b_")
    bare = m.group("b_bare")
    if b is None and bare:
        if a.kind == "weekday" and bare in _WEEKDAY:
            b = replace(a, weekday=_WEEKDAY[bare])  # 下周一到三
        else:
            raise DateError("invalid_date", token)
    if b is None:
        start, end, sug = _day(a, today, calendar, token)
        return FoundDate(start, end, (m.start(), m.end()), token, past=end < today,
                         suggested=(sug, sug + (end - start)) if sug else None)

    # The end of a range borrows what the start said: 下周一到周三 is next week's Wednesday,
    # 12月28日到5号 is 5 January.
    if b.kind == "weekday" and not b.explicit and a.kind == "weekday" and a.explicit:
        b = replace(b, n=a.n, explicit=True)
    if b.kind == "dom" and a.kind == "md":
        sy, sm = a.year, a.month
        if b.day < a.day:
            if sy is not None:
                sy, sm = _add_months(sy, sm, 1)
            else:
                sm = sm % 12 + 1
        b = _Spec("md", year=sy, month=sm, day=b.day)
        if a.year is None and b.month < a.month:
            b = replace(b, year=None)
    _, end, end_sug = _day(b, today, calendar, token)
    start, _, _ = _day(a, today, calendar, token, before=end)
    if a.kind == "md" and a.year is None and b.kind == "md" and b.year is None and (end - start).days > 183:
        # `12-05 至 12-01` is a slip, not a leave of almost a year; ranges over New Year are short.
        raise DateError("end_before_start", token)
    if end < start:
        raise DateError("end_before_start", token)
    suggested = None
    if end < today and end_sug is not None:
        s_start, _, _ = _day(a, end_sug, calendar, token, before=end_sug) if a.kind in ("md", "dom") \
            else (start + (end_sug - end), None, None)
        suggested = (s_start, end_sug)
    return FoundDate(start, end, (m.start(), m.end()), token, past=end < today, suggested=suggested)
