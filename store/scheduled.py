"""Exactly-once claims for bot-initiated sends and the record of job runs.

A send first claims a `scheduled_send` row whose unique keys make it happen once per
(tenant, person, kind, day) across restarts and processes; a *budgeted* claim also takes
the person's one bot-initiated reminder of that day (a second unique key).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from store.db import Database, try_insert
from store.models import JobRun, ScheduledSend


async def claim_send(session: AsyncSession, tenant: str, userid: str, kind: str, day: str, now: datetime,
                     *, budgeted: bool = False) -> bool:
    """True if this process may send `kind` to `userid` for `day` (and nobody else will)."""
    return await try_insert(session, ScheduledSend, dict(
        tenant=tenant, userid=userid, kind=kind, day=day, budget_day=day if budgeted else None, at=now))


async def record_run(db: Database, tenant: str, job: str, slot: str, sent: int) -> None:
    """Add a run of `job` for `slot` (one row per slot; later runs add their sends)."""
    async with db.transaction() as s:
        if not await try_insert(s, JobRun, dict(tenant=tenant, job=job, slot=slot, started_at=utcnow(),
                                                finished_at=utcnow(), sent=sent)):
            await s.execute(update(JobRun).where(JobRun.tenant == tenant, JobRun.job == job, JobRun.slot == slot)
                            .values(finished_at=utcnow(), sent=JobRun.sent + sent))
