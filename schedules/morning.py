"""The 09:30 job: prompt who has no key action this week, ask on the week's last working
day whether open actions are done, and nudge witnesses who have not answered.

The prompt is claimed for everyone due in one INSERT … SELECT into `scheduled_send`, whose
unique keys make it once per (tenant, person, kind, day) across restarts and processes and
hold the budget of one bot-initiated reminder per person per day.
"""
from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import exists, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import WorkCalendar, iso_week
from bot.core.config import TenantConfig
from bot.core.timeutil import aware
from cards.model import Button, Card
from handlers.context import Outgoing
from handlers.weekly_prompt import prompt_card
from schedules.registry import JobEnv, JobRegistry
from store.models import Employee, Leave, ScheduledSend, UTCDateTime, WeeklyAction
from store.scheduled import claim_send
from store.weekly import done_awaiting_nudge, open_actions_of_week

jobs = JobRegistry()


async def _on_leave(session: AsyncSession, tenant: str, day: date) -> set[str]:
    rows = await session.execute(select(Leave.userid).where(
        Leave.tenant == tenant, Leave.start_day <= day, Leave.end_day >= day))
    return set(rows.scalars())


# -- 09:30 ------------------------------------------------------------------------
def _morning_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.morning_prompt_at if cal.is_working_day(local.date()) else None


@jobs.job("morning_prompt", at=_morning_at, label={"zh": "09:30 晨间提醒", "en": "09:30 morning prompt"})
async def morning_prompt(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    """Prompt people with no action this week; on the week's last working day ask
    those with an open action whether it is done; nudge silent witnesses."""
    cal = WorkCalendar(tenant)
    day = at.astimezone(tenant.tz).date()
    if not cal.is_working_day(day):
        return 0
    week = iso_week(day)
    last_day = cal.last_working_day(week) == day
    slot = day.isoformat()
    sent = 0
    async with env.db.transaction() as s:
        ctx = env.outgoing(s, tenant, at)
        away = await _on_leave(s, tenant.key, day)
        prompted = await _claim_prompts(s, tenant.key, day, week, at)
        open_actions = [] if not last_day else await open_actions_of_week(s, tenant.key, week)
        for action in open_actions:
            userid = action.userid
            if userid not in away:
                if await claim_send(s, tenant.key, userid, "last_day", slot, at, budgeted=True):
                    card = Card(title=ctx.t("lastday.title"), body=ctx.t("lastday.body", thing=action.thing),
                                buttons=[Button("done", ctx.t("btn.done"), "primary"), Button("not_done", ctx.t("btn.not_done"))])
                    await ctx.issue_card(userid, "last_day", card, ref_id=action.id, ttl_hours=72)
                    sent += 1
        if prompted:
            # One shared card for everyone prompted today: adapters send it in batches.
            await ctx.issue_broadcast_card(prompted, "morning_prompt", prompt_card(ctx),
                                           audience=f"morning_prompt:{slot}", ttl_hours=24 * 7)
            sent += len(prompted)
        sent += await _nudge_witnesses(ctx, cal, day, away)
    await env.record_run(tenant.key, "morning_prompt", slot, sent)
    return sent


async def _claim_prompts(session: AsyncSession, tenant: str, day: date, week: str, at: datetime) -> list[str]:
    """Claim today's prompt for everyone due, in one statement; returns who got a claim.

    Due: active, not on leave today, no action this week. INSERT … SELECT … ON
    CONFLICT DO NOTHING RETURNING is both the exactly-once claim (a second run or
    process gets nothing back) and the daily budget (one reminder per person per
    day), for 100,000 people as for 40.
    """
    e = Employee.__table__.c
    slot = day.isoformat()
    due = select(e.tenant, e.userid, literal("morning_prompt"), literal(slot), literal(slot),
                 literal(at, type_=UTCDateTime())).where(
        e.tenant == tenant, e.active.is_(True),
        ~exists().where(Leave.tenant == e.tenant, Leave.userid == e.userid,
                        Leave.start_day <= day, Leave.end_day >= day),
        ~exists().where(WeeklyAction.tenant == e.tenant, WeeklyAction.userid == e.userid,
                        WeeklyAction.week == week))
    t = ScheduledSend.__table__
    ins = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = (ins(t).from_select(["tenant", "userid", "kind", "day", "budget_day", "at"], due)
            .on_conflict_do_nothing().returning(t.c.userid))
    return sorted((await session.execute(stmt)).scalars())


async def _nudge_witnesses(ctx: Outgoing, cal: WorkCalendar, day: date, away: set[str]) -> int:
    """One nudge to a witness who has not answered a confirmation for a working day."""
    s, tenant = ctx.session, ctx.tenant
    sent = 0
    for action in await done_awaiting_nudge(s, tenant.key):
        done_day = aware(action.done_at).astimezone(tenant.tz).date()  # type: ignore[arg-type]
        if cal.working_days_between(done_day, day) < 1 or action.witness_userid in away:
            continue
        if not await claim_send(s, tenant.key, action.witness_userid, "witness_nudge", day.isoformat(), ctx.now,
                                budgeted=True):
            continue  # already reminded today; the budget holds, try next working day
        owner = (await ctx.employee(action.userid))
        ctx.send(action.witness_userid, ctx.t("nudge.body", name=owner.name if owner else action.userid, thing=action.thing))
        action.nudged_at = ctx.now
        s.add(action)
        sent += 1
    return sent
