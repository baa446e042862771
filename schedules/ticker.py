"""The one periodic trigger: every 30 s, run the jobs that are due.

APScheduler only provides the beat; which jobs run, and that each send
happens once, is decided by `schedules.jobs.tick` against the database. That
avoids APScheduler job stores (which run jobs twice when shared by processes)
and its 1-second default misfire grace (which skips jobs on a busy loop).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from schedules.jobs import tick

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, runtime: "Runtime", seconds: float = 30.0) -> None:
        self.runtime = runtime
        self.scheduler = AsyncIOScheduler()
        self.scheduler.add_job(self._beat, IntervalTrigger(seconds=seconds), max_instances=1,
                               coalesce=True, misfire_grace_time=None, next_run_time=None)
        self.seconds = seconds

    async def _beat(self) -> None:
        try:
            sent = await tick(self.runtime, self.runtime.clock.now())
            if sent:
                self.runtime.wake_outbox()
        except Exception:
            log.exception("scheduled tick failed")

    def start(self) -> None:
        from datetime import datetime, timezone
        self.scheduler.start()
        # First beat right away, so a restart at 09:40 catches up without waiting.
        self.scheduler.get_jobs()[0].modify(next_run_time=datetime.now(timezone.utc))

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
