"""When a review period opens, each person's manager gets that person's fact brief.

The brief goes to the direct manager (or, when that post is vacant, the first
active manager above): the one who writes the review. Managers further up ask
for the briefs they want (`简报 @王强`) rather than receiving their whole line —
hundreds of messages in one morning, which WeCom would partly drop.

Each (manager, person, period) is sent once: the send is claimed in
`scheduled_send` with kind `brief:<person>` and day = the period, so re-runs,
restarts and several processes never send it twice.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from bot.core.config import ReviewPeriod, TenantConfig
from bot.core.calendar import WorkCalendar

from handlers.brief_document import deliver, write_document
from schedules.registry import JobEnv, JobRegistry
from store import audit
from store.brief import build_brief
from store.models import Employee
from store.scheduled import claim_send

jobs = JobRegistry()

# Down on the opening morning: the briefs still go out on the following days, for this long.
CATCH_UP_DAYS = 7


def first_working_day(cal: WorkCalendar, d: date) -> date:
    return d if cal.is_working_day(d) else cal.next_working_day(d)


def open_periods(tenant: TenantConfig, cal: WorkCalendar, today: date) -> list[ReviewPeriod]:
    """Review periods whose briefs are due today: opened on the first working day on or after `opens`."""
    out = []
    for p in tenant.review_periods:
        due = first_working_day(cal, p.opens)
        if due <= today < due + timedelta(days=CATCH_UP_DAYS) and cal.is_working_day(today):
            out.append(p)
    return out


def review_briefs_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    """The start of working hours on the days review briefs are due."""
    return tenant.work_hours_start if open_periods(tenant, cal, local.date()) else None


def reviewer(everyone: dict[str, Any], userid: str) -> str | None:
    """The first active manager above `userid` (vacant posts are skipped; cycles end the walk)."""
    seen = {userid}
    boss = everyone[userid].manager_userid
    while boss and boss not in seen:
        seen.add(boss)
        person = everyone.get(boss)
        if person is None:
            return None
        if person.active:
            return str(boss)
        boss = person.manager_userid
    return None


@jobs.job("review_briefs", at=review_briefs_at, label={"zh": "事实简报", "en": "Review briefs"})
async def review_briefs(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    """Send the briefs of every open review period not sent yet; returns how many briefs went out."""
    cal = WorkCalendar(tenant)
    periods = open_periods(tenant, cal, at.astimezone(tenant.tz).date())
    if not periods:
        return 0
    data_dir = env.data_dir
    sent = 0
    for period in periods:
        count = 0
        async with env.db.transaction() as s:
            ctx = env.outgoing(s, tenant, at)
            everyone = {e.userid: e for e in (await s.execute(select(Employee).where(
                Employee.tenant == tenant.key))).scalars()}
            for subject in sorted(u for u, e in everyone.items() if e.active):
                boss = reviewer(everyone, subject)
                if boss is None or not await claim_send(s, tenant.key, boss, f"brief:{subject}", period.period, at):
                    continue
                brief = await build_brief(s, tenant.key, subject, period.period, now=at, tz=tenant.tz,
                                          locale=tenant.locale)
                await deliver(ctx, boss, brief, write_document(brief, data_dir))
                audit.record(s, tenant.key, boss, audit.SEND_BRIEF, subject, at)
                count += 1
        await env.record_run(tenant.key, "review_briefs", period.period, count)
        sent += count
    return sent
