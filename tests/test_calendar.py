"""ISO weeks and the Chinese working-day calendar with 调休 and tenant overrides."""
from datetime import date, datetime, time, timezone

import pytest

import bot.core.calendar as calendar_mod
from bot.core.config import TenantConfig
from bot.core.calendar import (
    WorkCalendar, iso_week, normalize_week, parse_week, week_back, week_days, week_range,
)


def cal(**kw) -> WorkCalendar:  # type: ignore[no-untyped-def]
    return WorkCalendar(TenantConfig(key="acme", name="Acme", **kw))


def test_iso_week_and_year_boundaries() -> None:
    assert iso_week(date(2026, 12, 4)) == "2026-W49"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"  # 2026 has 53 ISO weeks
    assert iso_week(date(2026, 1, 1)) == "2026-W01"
    assert iso_week(date(2025, 12, 29)) == "2026-W01"


def test_parse_week_accepts_the_canonical_form() -> None:
    assert parse_week("2026-W49") == (2026, 49)
    assert parse_week(" 2026-w05 ") == (2026, 5)
    assert normalize_week(" 2026-w5") == "2026-W05"


@pytest.mark.parametrize("bad", ["2026W49", "2026-49", "W49", "", "2026-W00", "2025-W53", "2026-W54", "abc"])
def test_parse_week_rejects_bad_text_and_names_it(bad: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_week(bad)
    assert "2026-W49" in str(exc.value) or "只有" in str(exc.value)


def test_week_days_are_monday_to_sunday() -> None:
    days = week_days("2026-W49")
    assert days[0] == date(2026, 11, 30) and days[-1] == date(2026, 12, 6)
    assert [d.weekday() for d in days] == list(range(7))


def test_week_range_crosses_a_53_week_year() -> None:
    assert week_range("2026-W52", "2027-W02") == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    assert week_range("2026-W49", "2026-W49") == ["2026-W49"]
    assert week_back("2027-W01", 2) == "2026-W52"
    with pytest.raises(ValueError):
        week_range("2026-W50", "2026-W49")


def test_statutory_holidays_make_up_days_and_overrides() -> None:
    c = cal(extra_holidays=[date(2026, 12, 4)], extra_workdays=[date(2026, 12, 6)])
    assert not c.is_working_day(date(2026, 10, 1))  # National Day
    assert c.is_working_day(date(2026, 10, 10))  # 调休 Saturday
    assert not c.is_working_day(date(2026, 10, 17))  # an ordinary Saturday
    assert c.is_working_day(date(2026, 12, 3))  # an ordinary Thursday
    assert not c.is_working_day(date(2026, 12, 4))  # tenant's extra holiday (a Friday)
    assert c.is_working_day(date(2026, 12, 6))  # tenant's extra workday (a Sunday)


def test_working_days_of_the_national_day_weeks() -> None:
    c = cal()
    # W40: Mon 28 Sep – Sun 4 Oct; 1–4 Oct are off.
    assert c.last_working_day("2026-W40") == date(2026, 9, 30)
    # W41: 5–7 Oct off, 8 and 9 on, Saturday 10 Oct is a make-up day.
    assert c.working_days("2026-W41") == [date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10)]
    assert c.last_working_day("2026-W41") == date(2026, 10, 10)


def test_a_week_with_no_working_day_has_no_last_one() -> None:
    c = cal(extra_holidays=week_days("2026-W49")[:5])
    assert c.working_days("2026-W49") == []
    assert c.last_working_day("2026-W49") is None


def test_next_and_counted_working_days() -> None:
    c = cal()
    assert c.next_working_day(date(2026, 9, 30)) == date(2026, 10, 8)
    assert c.next_working_day(date(2026, 12, 3)) == date(2026, 12, 4)  # strictly after
    assert c.working_days_between(date(2026, 9, 30), date(2026, 10, 8)) == 1
    assert c.working_days_between(date(2026, 11, 30), date(2026, 12, 7)) == 5
    assert c.working_days_between(date(2026, 12, 7), date(2026, 11, 30)) == -5
    assert c.working_days_between(date(2026, 12, 3), date(2026, 12, 3)) == 0
    assert c.add_working_days(date(2026, 9, 29), 2) == date(2026, 10, 8)
    assert c.add_working_days(date(2026, 9, 29), 0) == date(2026, 9, 29)
    # A datetime keeps its local time of day: Wed 30 Sep 15:00 in Shanghai (07:00 UTC) + 1 → Thu 8 Oct 15:00.
    stepped = c.add_working_days(datetime(2026, 9, 30, 7, 0, tzinfo=timezone.utc), 1)
    assert stepped == datetime(2026, 10, 8, 7, 0, tzinfo=timezone.utc) and stepped.tzinfo == timezone.utc
    assert c.add_working_days(datetime(2026, 9, 30, 15, 0), 1) == datetime(2026, 10, 8, 15, 0)


def test_next_working_moment_waits_for_working_hours() -> None:
    c = cal()
    inside = datetime(2026, 12, 3, 14, 5)
    assert c.next_working_moment(inside) == inside
    assert c.next_working_moment(datetime(2026, 12, 3, 7, 0)) == datetime(2026, 12, 3, 9, 0)
    assert c.next_working_moment(datetime(2026, 9, 30, 18, 0)) == datetime(2026, 10, 8, 9, 0)
    assert c.next_working_moment(datetime(2026, 10, 3, 11, 0)) == datetime(2026, 10, 8, 9, 0)
    assert c.next_working_moment(datetime(2026, 12, 4, 19, 0), start=time(8, 30), end=time(17, 0)) == datetime(
        2026, 12, 7, 8, 30
    )
    # An aware time is answered in the tenant's zone: 2026-12-04 11:00 UTC is 19:00 in Shanghai.
    moved = c.next_working_moment(datetime(2026, 12, 4, 11, 0, tzinfo=timezone.utc))
    assert moved.utcoffset() is not None
    assert moved.replace(tzinfo=None) == datetime(2026, 12, 7, 9, 0)
    assert moved.astimezone(timezone.utc) == datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)


def test_holiday_tables_are_built_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = calendar_mod.holidays.China

    def counting(*, years: int):  # type: ignore[no-untyped-def]
        built.append(years)
        return real(years=years)

    monkeypatch.setattr(calendar_mod.holidays, "China", counting)
    c = cal()
    for day in week_days("2026-W40") + week_days("2026-W41") + week_days("2026-W49"):
        c.is_working_day(day)
    c.working_days("2026-W40")
    assert built.count(2026) == 1


def test_conflicting_overrides_are_refused() -> None:
    with pytest.raises(ValueError, match="2026-12-04"):
        cal(extra_holidays=[date(2026, 12, 4)], extra_workdays=[date(2026, 12, 4)])
