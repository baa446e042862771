"""The tenant's go-live date: weeks that ended before it count nowhere.

A company that starts on a Wednesday has no history: without this, the brief
would report nine unfilled weeks on day one and the trend eleven weeks at 0 %.
The first week counted is the ISO week that contains the go-live date. The date
is the configured `live_from`, else the day of the first roster import or
directory sync (in the tenant's time zone).
"""
from __future__ import annotations

from datetime import date
from typing import Iterable

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import iso_week, week_days
from store.models import Tenant


async def live_from(session: AsyncSession, tenant: str) -> date | None:
    row = await session.get(Tenant, tenant)
    return row.live_from if row is not None else None


def first_live_week(live: date | None) -> str | None:
    return iso_week(live) if live is not None else None


def counted_weeks(weeks: Iterable[str], live: date | None) -> list[str]:
    """The weeks of `weeks` that count: those ending on or after the go-live date (all when unset)."""
    return [w for w in weeks if live is None or week_days(w)[-1] >= live]


def is_counted(week: str, live: date | None) -> bool:
    return live is None or week_days(week)[-1] >= live


async def mark_live(session: AsyncSession, tenant: str, day: date) -> None:
    """Set the go-live date to `day` unless one is set already (the first import wins)."""
    await session.execute(update(Tenant).where(Tenant.key == tenant, Tenant.live_from.is_(None))
                          .values(live_from=day))
