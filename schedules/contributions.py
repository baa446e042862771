"""Contributions on the clock.

- `contribution_rewards`: on the first working day of a month, each manager gets a reward-suggestion
  card per direct report with verified contributions in the month before (claimed once per manager
  and month in `scheduled_send`). The manager enters an amount; nothing is paid automatically.
- `contribution_heatmaps`: the heat map PNGs (this month and this quarter) HR's Friday card carries.
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.core.calendar import WorkCalendar
from bot.core.config import TenantConfig
from bot.core.files import create_private
from cards.heatmap import heatmap_png
from cards.model import Message
from cards.texts import t
from handlers import contributions as feature
from schedules.registry import JobEnv, JobRegistry
from store import contributions as cs
from store.models import Employee
from store.scheduled import claim_send

jobs = JobRegistry()


def _first_working_day(cal: WorkCalendar, day: datetime) -> bool:
    d = day.date().replace(day=1)
    while not cal.is_working_day(d) and d.month == day.month:
        d += timedelta(days=1)
    return d == day.date()


def rewards_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.work_hours_start if _first_working_day(cal, local) else None


@jobs.job("contribution_rewards", at=rewards_at, label={"zh": "月度奖励建议", "en": "Monthly reward suggestions"})
async def contribution_rewards(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    month = cs.previous_month(cs.month_of(at, tenant.tz))
    sent = 0
    async with env.db.transaction() as s:
        out = env.outgoing(s, tenant, at)
        staff = list((await s.execute(select(Employee).where(
            Employee.tenant == tenant.key, Employee.active.is_(True)).order_by(Employee.userid))).scalars())
        contributors = {c.contributor_userid for c in await cs.verified_in(s, tenant.key, month)}
        managers = {e.manager_userid for e in staff if e.userid in contributors and e.manager_userid}
        for boss in staff:
            if boss.userid not in managers:
                continue
            if not await claim_send(s, tenant.key, boss.userid, "contrib_reward", month, at):
                continue
            sent += await feature.send_reward_cards(out, boss, month)
    await env.record_run(tenant.key, "contribution_rewards", month, sent)
    return sent


async def contribution_heatmaps(env: JobEnv, tenant: TenantConfig, at: datetime, out_dir: Path) -> list[Message]:
    """This month's and this quarter's heat map, as image messages for HR (suppressed cells blank);
    a period with no verified contribution yet has none."""
    local = at.astimezone(tenant.tz)
    periods = [cs.month_of(at, tenant.tz), f"{local.year}Q{(local.month - 1) // 3 + 1}"]
    say = feature.ContributionSettings.of(tenant)
    messages: list[Message] = []
    for period in periods:
        async with env.db.session() as s:
            data, table = await feature.heat_table(env.outgoing(s, tenant, at), period)
        if not data.departments:
            continue  # nothing verified yet: an empty picture every Friday would only be noise
        png = out_dir / f"contributions-{period}-{uuid.uuid4().hex[:6]}.png"
        create_private(png)
        png.write_bytes(await asyncio.to_thread(heatmap_png, table, tenant.locale))
        messages.append(Message(kind="image", path=str(png), filename=t(tenant.locale, "contrib.heat.file", period=period),
                                text=t(tenant.locale, "contrib.heat.caption", period=period, n=say.min_people)))
    return messages
