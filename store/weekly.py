"""The weekly key actions (本周关键动作) and the leaves that excuse a week: the queries the chat, the
morning job and the console ask of them.

Every query names its tenant; the callers decide who may see what.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Leave, WeeklyAction


async def action_of_week(session: AsyncSession, tenant: str, userid: str, week: str) -> WeeklyAction | None:
    """The person's action of one ISO week (there is at most one)."""
    return (await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.userid == userid,
        WeeklyAction.week == week))).scalar_one_or_none()


async def action_by_id(session: AsyncSession, tenant: str, action_id: int | None) -> WeeklyAction | None:
    """The action a card or a feedback refers to; None for no id or another tenant's id."""
    if action_id is None:
        return None
    return (await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.id == action_id))).scalar_one_or_none()


async def actions_between(session: AsyncSession, tenant: str, userid: str, first: str, last: str) -> list[WeeklyAction]:
    """The person's actions of the weeks `first`..`last` (ISO week labels compare in order), newest first."""
    return list((await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.userid == userid,
        WeeklyAction.week >= first, WeeklyAction.week <= last).order_by(WeeklyAction.week.desc()))).scalars())


async def open_actions_of_week(session: AsyncSession, tenant: str, week: str) -> list[WeeklyAction]:
    """Actions of the week not yet reported done: their owners are asked on the week's last day."""
    return list((await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.week == week, WeeklyAction.status == "open"))).scalars())


async def done_awaiting_nudge(session: AsyncSession, tenant: str) -> list[WeeklyAction]:
    """Actions reported done whose witness has not confirmed and has not been nudged yet."""
    return list((await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.status == "done",
        WeeklyAction.nudged_at.is_(None), WeeklyAction.done_at.is_not(None)))).scalars())


async def leave_overlapping(session: AsyncSession, tenant: str, userid: str, first: date, last: date) -> Leave | None:
    """The earliest leave or skipped week of the person that overlaps `first`..`last`."""
    return (await session.execute(select(Leave).where(
        Leave.tenant == tenant, Leave.userid == userid, Leave.start_day <= last, Leave.end_day >= first)
        .order_by(Leave.start_day, Leave.id))).scalars().first()
