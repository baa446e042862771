"""ISO weeks and the tenant's working days (Chinese statutory calendar with 调休)."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import overload
from zoneinfo import ZoneInfo

import holidays

from bot.core.config import TenantConfig

_WEEK = re.compile(r"^\s*(\d{4})-[Ww](\d{1,2})\s*$")

# A year of days off in a row cannot happen; stopping here turns a bad override list into an error.
_MAX_SEARCH_DAYS = 366


def iso_week(d: date) -> str:
    """The ISO week holding `d`: 2026-12-04 → '2026-W49'."""
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(s: str) -> tuple[int, int]:
    """'2026-W49' → (2026, 49); ValueError naming the bad text otherwise."""
    m = _WEEK.match(s) if isinstance(s, str) else None
    if not m:
        raise ValueError(f"周次格式不对：{s!r}，应写成 2026-W49 这样的形式")
    year, week = int(m.group(1)), int(m.group(2))
    weeks_in_year = date(year, 12, 28).isocalendar()[1]
    if not 1 <= week <= weeks_in_year:
        raise ValueError(f"周次 {s.strip()!r} 不存在：{year} 年只有第 1–{weeks_in_year} 周")
    return year, week


def normalize_week(s: str) -> str:
    """' 2026-w5 ' → '2026-W05', the form weeks are stored in."""
    year, week = parse_week(s)
    return f"{year}-W{week:02d}"


def week_days(week: str) -> list[date]:
    """Monday to Sunday of an ISO week."""
    year, num = parse_week(week)
    return [date.fromisocalendar(year, num, day) for day in range(1, 8)]


def week_range(start: str, end: str) -> list[str]:
    """Every ISO week from `start` to `end`, both included."""
    first, last = week_days(start)[0], week_days(end)[0]
    if last < first:
        raise ValueError(f"起始周 {start} 晚于结束周 {end}")
    out = []
    d = first
    while d <= last:
        out.append(iso_week(d))
        d += timedelta(weeks=1)
    return out


def week_label(week: str, locale: str = "zh") -> str:
    """'2026-W49' → '第49周（11-30~12-06）': the dates say which week, the code alone does not."""
    days = week_days(week)
    span = f"{days[0]:%m-%d}~{days[-1]:%m-%d}"
    num = int(week.rsplit("W", 1)[1])
    return f"week {num} ({span})" if locale == "en" else f"第{num}周（{span}）"


def week_back(week: str, n: int) -> str:
    """The ISO week `n` weeks before `week` (n may be 0)."""
    return iso_week(week_days(week)[0] - timedelta(weeks=n))


class WorkCalendar:
    """Working days of one tenant: statutory holidays and 调休 plus the tenant's own overrides."""

    def __init__(self, cfg: TenantConfig) -> None:
        self.tz = ZoneInfo(cfg.timezone)
        self._extra_off = frozenset(cfg.extra_holidays)
        self._extra_on = frozenset(cfg.extra_workdays)
        both = sorted(self._extra_off & self._extra_on)
        if both:
            days = "、".join(d.isoformat() for d in both)
            raise ValueError(f"租户 {cfg.key} 的 extra_holidays 与 extra_workdays 同时包含：{days}")
        self._years: dict[int, holidays.HolidayBase] = {}

    def _holidays(self, year: int) -> holidays.HolidayBase:
        # Building a year's calendar is slow (lunar dates); a tenant asks about the same years all day.
        h = self._years.get(year)
        if h is None:
            # holidays.China is a lazily loaded attribute its stubs do not declare.
            h = self._years[year] = holidays.China(years=year)  # type: ignore[attr-defined]
        return h

    def is_working_day(self, d: date) -> bool:
        if d in self._extra_on:
            return True
        if d in self._extra_off:
            return False
        h = self._holidays(d.year)
        if d in h:
            return False
        if d.weekday() >= 5:
            # A 调休 day near New Year can be listed under the neighbouring year.
            return d in h.weekend_workdays or d in self._holidays(d.year + 1).weekend_workdays
        return True

    def working_days(self, week: str) -> list[date]:
        return [d for d in week_days(week) if self.is_working_day(d)]

    def last_working_day(self, week: str) -> date | None:
        days = self.working_days(week)
        return days[-1] if days else None

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after `d`."""
        nxt = d
        for _ in range(_MAX_SEARCH_DAYS):
            nxt += timedelta(days=1)
            if self.is_working_day(nxt):
                return nxt
        raise ValueError(f"{d.isoformat()} 之后一年内没有工作日，请检查 extra_holidays 配置")

    @overload
    def add_working_days(self, d: datetime, n: int) -> datetime: ...
    @overload
    def add_working_days(self, d: date, n: int) -> date: ...

    def add_working_days(self, d: date | datetime, n: int) -> date | datetime:
        """The n-th working day after `d` (n ≥ 0; n = 0 is `d` itself).

        A datetime keeps its time of day; an aware one is stepped on the tenant's calendar.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        if isinstance(d, datetime):
            aware = d.tzinfo is not None
            local = d.astimezone(self.tz) if aware else d
            day = self.add_working_days(local.date(), n)
            moved = datetime.combine(day, local.time())
            return moved.replace(tzinfo=self.tz).astimezone(d.tzinfo) if aware else moved
        for _ in range(n):
            d = self.next_working_day(d)
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """Working days d with a < d ≤ b (negative when b is before a)."""
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        d = a + timedelta(days=1)
        while d <= b:
            count += self.is_working_day(d)
            d += timedelta(days=1)
        return count

    def next_working_moment(
        self, dt_local: datetime, start: time = time(9, 0), end: time = time(18, 0)
    ) -> datetime:
        """`dt_local` if it falls in working hours on a working day, else the start of the next ones.

        A naive datetime is read as tenant-local and a naive one is returned; an aware
        one is answered in the tenant's time zone.
        """
        if not start < end:
            raise ValueError("working hours must start before they end")
        aware = dt_local.tzinfo is not None
        local = dt_local.astimezone(self.tz).replace(tzinfo=None) if aware else dt_local
        day, clock = local.date(), local.time()
        if self.is_working_day(day) and clock < end:
            result = local if clock >= start else datetime.combine(day, start)
        else:
            result = datetime.combine(self.next_working_day(day), start)
        return result.replace(tzinfo=self.tz) if aware else result

    def working_hours_before(self, dt: datetime, hours: float, start: time = time(9, 0),
                             end: time = time(18, 0)) -> datetime:
        """The moment `hours` working hours before the aware `dt` (counting only working hours of working days).

        Due Tuesday 10:00 with a 2-hour notice on 09:00–18:00 days → Monday 17:00.
        """
        if not start < end:
            raise ValueError("working hours must start before they end")
        left = timedelta(hours=hours)
        local = dt.astimezone(self.tz).replace(tzinfo=None)
        for _ in range(_MAX_SEARCH_DAYS):
            day = local.date()
            if self.is_working_day(day) and local.time() > start:
                top = min(local, datetime.combine(day, end))
                available = top - datetime.combine(day, start)
                if left <= available:
                    return (top - left).replace(tzinfo=self.tz).astimezone(dt.tzinfo)
                left -= available
            local = datetime.combine(day - timedelta(days=1), end)
        raise ValueError("no working hours in the year before; check extra_holidays")


def working_hours_between(cal: WorkCalendar, a: datetime, b: datetime, start: time = time(9, 0),
                          end: time = time(18, 0)) -> float:
    """Working hours from the aware `a` to the aware `b` (0 when b is not after a).

    Only the working hours of working days count: assigned Friday 17:00 and answered Monday
    10:00 on 09:00–18:00 days is 2 hours, the weekend in between is not.
    """
    if not start < end:
        raise ValueError("working hours must start before they end")
    if b <= a:
        return 0.0
    lo = a.astimezone(cal.tz).replace(tzinfo=None)
    hi = b.astimezone(cal.tz).replace(tzinfo=None)
    total = timedelta()
    day = lo.date()
    while day <= hi.date():
        if cal.is_working_day(day):
            s = max(lo, datetime.combine(day, start))
            e = min(hi, datetime.combine(day, end))
            if e > s:
                total += e - s
        day += timedelta(days=1)
    return total.total_seconds() / 3600
