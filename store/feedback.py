"""Micro-feedback records: writing one, reading a person's, and counts by tag per department."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import week_days
from store.models import Employee, Feedback, Tenant
from store.statuses import FeedbackRef, Impact, Polarity

IMPACTS: tuple[Impact, ...] = tuple(Impact)
POLARITIES: tuple[Polarity, ...] = tuple(Polarity)
DEFAULT_TZ = "Asia/Shanghai"


def add_feedback(session: AsyncSession, tenant: str, *, giver: str, receiver: str, tag: str, polarity: Polarity,
                 impact: Impact, event: str, at: datetime, ref_kind: FeedbackRef | None = None,
                 ref_id: int | None = None) -> Feedback:
    """Stage one feedback row in the caller's transaction (validation is the caller's job)."""
    if impact not in IMPACTS:
        raise ValueError(f"unknown impact {impact!r}")
    if polarity not in POLARITIES:
        raise ValueError(f"unknown polarity {polarity!r}")
    # SQLite keeps the wall-clock digits and drops the offset: store UTC, as every query assumes.
    row = Feedback(tenant=tenant, giver_userid=giver, receiver_userid=receiver, tag=tag, polarity=polarity,
                   impact=impact, event=event, ref_kind=ref_kind, ref_id=ref_id, created_at=at.astimezone(timezone.utc))
    session.add(row)
    return row


async def received(session: AsyncSession, tenant: str, userid: str, *, start: datetime | None = None,
                   end: datetime | None = None, limit: int | None = None) -> list[Feedback]:
    """Feedback `userid` received in [start, end), newest first."""
    stmt = select(Feedback).where(Feedback.tenant == tenant, Feedback.receiver_userid == userid)
    if start is not None:
        stmt = stmt.where(Feedback.created_at >= start)
    if end is not None:
        stmt = stmt.where(Feedback.created_at < end)
    stmt = stmt.order_by(Feedback.created_at.desc(), Feedback.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.execute(stmt)).scalars())


async def counts_by_tag(session: AsyncSession, tenant: str, userid: str) -> list[tuple[str, int]]:
    """(tag, count) of everything `userid` received, most frequent first."""
    n = func.count(Feedback.id)
    rows = await session.execute(select(Feedback.tag, n).where(
        Feedback.tenant == tenant, Feedback.receiver_userid == userid).group_by(Feedback.tag).order_by(n.desc(), Feedback.tag))
    return [(tag, int(c)) for tag, c in rows.all()]


def local_day_start(d: date, tz: ZoneInfo) -> datetime:
    """Midnight of `d` in the tenant's zone, as UTC (how timestamps are stored)."""
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(timezone.utc)


async def tenant_tz(session: AsyncSession, tenant: str) -> ZoneInfo:
    row = await session.get(Tenant, tenant)
    return ZoneInfo(row.timezone if row is not None and row.timezone else DEFAULT_TZ)


async def feedback_counts(session: AsyncSession, tenant: str, weeks: list[str],
                          tz: ZoneInfo | None = None) -> list[tuple[str, str, int]]:
    """(receiver's department path, tag, count) of feedback given in `weeks` (tenant-local ISO weeks).

    Sorted by department then tag; departments are the receivers' current ones,
    as in the weekly figures. An empty `weeks` gives an empty list.
    """
    if not weeks:
        return []
    tz = tz or await tenant_tz(session, tenant)
    spans = []
    for week in sorted(set(weeks)):
        monday = week_days(week)[0]
        spans.append(and_(Feedback.created_at >= local_day_start(monday, tz),
                          Feedback.created_at < local_day_start(monday + timedelta(days=7), tz)))
    dept = func.coalesce(Employee.department, "")
    stmt = (
        select(dept, Feedback.tag, func.count(Feedback.id))
        .select_from(Feedback)
        .outerjoin(Employee, and_(Employee.tenant == Feedback.tenant, Employee.userid == Feedback.receiver_userid))
        .where(Feedback.tenant == tenant, or_(*spans))
        .group_by(dept, Feedback.tag)
        .order_by(dept, Feedback.tag)
    )
    return [(d, tag, int(n)) for d, tag, n in (await session.execute(stmt)).all()]
