"""The one periodic trigger: every 30 s, run the jobs that are due.

APScheduler only provides the beat; which jobs run, and that each send
happens once, is decided by `JobRegistry.tick` against the database. That
avoids APScheduler job stores (which run jobs twice when shared by processes)
and its 1-second default misfire grace (which skips jobs on a busy loop).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.core.clock import Clock
from bot.core.config import TenantConfig
from schedules.registry import JobEnv, JobRegistry

log = logging.getLogger(__name__)


def _log_failure(job: str, tenant: str) -> None:
    log.exception("job %s failed for tenant %s", job, tenant)


class Ticker:
    def __init__(self, jobs: JobRegistry, env: JobEnv, tenants: list[TenantConfig], clock: Clock,
                 on_sent: Callable[[], None], seconds: float = 30.0,
                 offset: Callable[[str], timedelta] = lambda key: timedelta(0)) -> None:
        self.jobs, self.env, self.tenants, self.clock, self.on_sent = jobs, env, tenants, clock, on_sent
        self.offset = offset
        self.scheduler = AsyncIOScheduler()
        self.scheduler.add_job(self._beat, IntervalTrigger(seconds=seconds), max_instances=1,
                               coalesce=True, misfire_grace_time=None, next_run_time=None)
        self.seconds = seconds

    async def _beat(self) -> None:
        try:
            if await self.jobs.tick(self.env, self.tenants, self.clock.now(), _log_failure, self.offset):
                self.on_sent()
        except Exception:
            log.exception("scheduled tick failed")

    def start(self) -> None:
        self.scheduler.start()
        # First beat right away, so a restart at 09:40 catches up without waiting.
        self.scheduler.get_jobs()[0].modify(next_run_time=datetime.now(timezone.utc))

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
