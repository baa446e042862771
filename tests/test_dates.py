"""Dates as people type them for leave and task dues, on the tenant's calendar."""
from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from hypothesis import example, given, strategies as st

from bot.core.calendar import WorkCalendar
from bot.core.config import parse_config
from handlers.dates import DateError, find_dates, find_due
from tests.fuzz_budget import budget, fuzz_counts_report, tried  # noqa: F401  (fixture)

WED = date(2026, 12, 2)  # a Wednesday


def calendar() -> WorkCalendar:
    cfg = parse_config({"database": {"url": "sqlite+aiosqlite:///x.db"}, "tenants": [{"key": "t", "name": "T"}]})
    return WorkCalendar(cfg.tenants[0])


def span(text: str, today: date = WED) -> tuple[date, date]:
    found = find_dates(text, today, calendar())
    assert found is not None, text
    assert not found.past, text
    return found.start, found.end


@pytest.mark.parametrize(("text", "start", "end"), [
    ("今天", WED, WED),
    ("明天", date(2026, 12, 3), date(2026, 12, 3)),
    ("后天", date(2026, 12, 4), date(2026, 12, 4)),
    ("大后天", date(2026, 12, 5), date(2026, 12, 5)),
    ("周三", WED, WED),  # a bare weekday is the next such day, today included
    ("周一", date(2026, 12, 7), date(2026, 12, 7)),
    ("星期五", date(2026, 12, 4), date(2026, 12, 4)),
    ("礼拜天", date(2026, 12, 6), date(2026, 12, 6)),
    ("下周一", date(2026, 12, 7), date(2026, 12, 7)),
    ("下下周二", date(2026, 12, 15), date(2026, 12, 15)),
    ("下周一到周三", date(2026, 12, 7), date(2026, 12, 9)),
    ("下周一至三", date(2026, 12, 7), date(2026, 12, 9)),
    ("下周", date(2026, 12, 7), date(2026, 12, 13)),
    ("12月5日", date(2026, 12, 5), date(2026, 12, 5)),
    ("12月5号", date(2026, 12, 5), date(2026, 12, 5)),
    ("12-05", date(2026, 12, 5), date(2026, 12, 5)),
    ("１２－０５", date(2026, 12, 5), date(2026, 12, 5)),
    ("12/05", date(2026, 12, 5), date(2026, 12, 5)),
    ("2027年1月4日", date(2027, 1, 4), date(2027, 1, 4)),
    ("5号", date(2026, 12, 5), date(2026, 12, 5)),
    ("12-28 至 01-05", date(2026, 12, 28), date(2027, 1, 5)),
    ("12月28日到5号", date(2026, 12, 28), date(2027, 1, 5)),
    ("01-05", date(2027, 1, 5), date(2027, 1, 5)),  # the nearest reading: next January
    ("12-01 至 12-05", date(2026, 12, 1), date(2026, 12, 5)),  # started, not over: no question
])
def test_days_and_ranges(text: str, start: date, end: date) -> None:
    assert span(text) == (start, end)


def test_month_end_is_the_last_working_day_on_the_tenants_calendar() -> None:
    # 2026-10-31 is a Saturday; 2027-01-31 a Sunday; 2026-12-31 a Thursday.
    assert span("月底", date(2026, 10, 12)) == (date(2026, 10, 30), date(2026, 10, 30))
    assert span("月底") == (date(2026, 12, 31), date(2026, 12, 31))
    assert span("下个月底") == (date(2027, 1, 29), date(2027, 1, 29))
    # On the month's last Saturday the working day is gone: the calendar day it is.
    assert span("月底", date(2026, 10, 31)) == (date(2026, 10, 31), date(2026, 10, 31))


@pytest.mark.parametrize(("text", "past", "suggested"), [
    ("12-01", date(2026, 12, 1), date(2027, 12, 1)),
    ("12月1日", date(2026, 12, 1), date(2027, 12, 1)),
    ("1号", date(2026, 12, 1), date(2027, 1, 1)),
    ("30号", date(2026, 11, 30), date(2026, 12, 30)),
    ("本周一", date(2026, 11, 30), date(2026, 12, 7)),
])
def test_a_date_just_past_is_reported_with_the_next_reading(text: str, past: date, suggested: date) -> None:
    found = find_dates(text, WED)
    assert found is not None and found.past
    assert (found.start, found.end) == (past, past)
    assert found.suggested == (suggested, suggested)


def test_a_past_range_suggests_the_same_range_next_year() -> None:
    found = find_dates("11-28到11-30", WED)
    assert found is not None and found.past
    assert found.suggested == (date(2027, 11, 28), date(2027, 11, 30))


def test_an_explicit_past_year_is_past_without_a_suggestion() -> None:
    found = find_dates("2026-12-01", WED)
    assert found is not None and found.past and found.suggested is None


@pytest.mark.parametrize("text", ["5号楼消防检查", "周三例会材料", "请假流程", "1.5天", "O1-KR2"])
def test_words_that_only_look_like_dates_are_not_dates(text: str) -> None:
    assert find_dates(text, WED) is None


@pytest.mark.parametrize(("text", "code"), [("02-30", "invalid_date"), ("13-45", "invalid_date"),
                                             ("12-05 至 12-01", "end_before_start"), ("40号", "invalid_date")])
def test_impossible_dates_are_errors_with_the_token(text: str, code: str) -> None:
    with pytest.raises(DateError) as err:
        find_dates(text, WED)
    assert err.value.code == code and err.value.at is not None


@pytest.mark.parametrize(("text", "day", "at"), [
    ("直播系统压测 12-03 12:00", date(2026, 12, 3), time(12, 0)),
    ("直播系统压测 明天下午3点半", date(2026, 12, 3), time(15, 30)),
    ("压测 周五 9点", date(2026, 12, 4), time(9, 0)),
    ("压测 月底", date(2026, 12, 31), time(18, 0)),
    ("压测 下周一到周三", date(2026, 12, 9), time(18, 0)),  # a due is one moment: the range's end
])
def test_dues_take_the_last_date_and_its_time(text: str, day: date, at: time) -> None:
    found = find_due(text, WED, time(18, 0), calendar())
    assert found is not None and (found.end, found.time) == (day, at)
    assert text[found.at[0]:found.at[1]].strip() == found.token


def test_a_due_time_that_is_not_a_time_is_an_error() -> None:
    with pytest.raises(DateError) as err:
        find_due("压测 12-03 25:00", WED, time(18, 0))
    assert err.value.code == "invalid_time" and err.value.token == "12-03 25:00"


# -- properties --------------------------------------------------------------------------------

days = st.dates(min_value=date(2001, 1, 1), max_value=date(2098, 12, 31))


@budget(600)
@given(today=days, offset=st.integers(-400, 400),
       style=st.sampled_from(["{m}-{d:02d}", "{m}月{d}日", "{m}/{d}", "{m}月{d}号"]))
@example(today=date(2026, 12, 2), offset=-1, style="{m}-{d:02d}")
@example(today=date(2027, 3, 1), offset=365, style="{m}-{d:02d}")
def test_a_month_day_is_its_nearest_reading_and_past_ones_are_never_moved(today: date, offset: int, style: str) -> None:
    tried("dates.month_day")
    d = today + timedelta(days=offset)
    try:
        found = find_dates(style.format(m=d.month, d=d.day), today)
    except DateError as exc:
        # Only 02-29 can fail, when no year around today has one.
        assert (d.month, d.day) == (2, 29) and exc.code == "invalid_date"
        return
    assert found is not None and found.start == found.end
    got = found.start
    assert (got.month, got.day) == (d.month, d.day)
    leap_day = (d.month, d.day) == (2, 29)  # a year around today may have none
    assert leap_day or abs((got - today).days) <= 184  # the nearest reading
    if abs(offset) <= 180:
        assert got == d
    assert found.past == (got < today)
    if found.past and not leap_day:
        assert found.suggested is not None
        nxt = found.suggested[0]
        assert nxt > today and (nxt.month, nxt.day) == (d.month, d.day) and nxt.year == got.year + 1


@budget(400)
@given(today=days, n=st.integers(0, 3), wd=st.sampled_from("一二三四五六日"), wd2=st.sampled_from("一二三四五六日"))
def test_weekdays_fall_in_the_week_they_name(today: date, n: int, wd: str, wd2: str) -> None:
    tried("dates.weekday")
    prefix = ["本周", "下周", "下下周", "周"][n]
    found = find_dates(f"{prefix}{wd}", today)
    assert found is not None
    monday = today - timedelta(days=today.weekday())
    idx = "一二三四五六日".index(wd)
    if n < 3:
        assert found.start == monday + timedelta(weeks=n, days=idx)
        assert found.past == (found.start < today)
    else:
        assert 0 <= (found.start - today).days < 7 and found.start.weekday() == idx and not found.past
    if n in (1, 2):
        try:
            rng = find_dates(f"{prefix}{wd}到周{wd2}", today)
        except DateError as exc:
            assert exc.code == "end_before_start" and "一二三四五六日".index(wd2) < idx
            return
        assert rng is not None and rng.start == found.start and rng.end.weekday() == "一二三四五六日".index(wd2)
        assert (rng.end - rng.start).days < 7


@budget(800)
@given(text=st.text(alphabet=st.sampled_from(list("0123456789-/.月日号周一三五下本这今明后天到至~ 年底T请假:点半午")),
                    max_size=24), today=days)
def test_any_text_gives_a_date_none_or_a_date_error(text: str, today: date) -> None:
    tried("dates.find_due")
    try:
        found = find_due(text, today, time(18, 0), calendar())
    except DateError as exc:
        assert exc.code in ("invalid_date", "invalid_time", "end_before_start") and exc.at is not None
        return
    if found is not None:
        assert found.start <= found.end and 0 <= found.at[0] < found.at[1] <= len(text)
        assert not found.past or found.suggested is None or found.suggested[1] >= today
