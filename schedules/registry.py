"""The job registry: what a clock-driven job declares, and what it is given to run.

A feature declares its jobs with `@jobs.job(name, at=..., label={"zh": …, "en": …})` on a
`JobRegistry` of its own (the label is what the console's buttons say);
the registries are included into one (see `schedules.all_jobs`), which the ticker, the
console and the command line read — so a new job needs no edit anywhere else.

A job receives a `JobEnv` (the database, where files go, a hook for metrics), never the
Runtime: it sends through an `Outgoing` context like any handler, and nothing below bot/
knows how the process is wired.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Awaitable, Callable, Iterator

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import WorkCalendar
from bot.core.config import TenantConfig
from cards.texts import TEXTS, register, t
from handlers.context import Outgoing
from store.db import Database
from store.scheduled import record_run


Sweep = Callable[[TenantConfig, datetime, datetime, datetime], Awaitable[int]]


def _no_metrics(job: str, sent: int) -> None:
    pass


@dataclass
class JobEnv:
    """What every job may use."""

    db: Database
    data_dir: str = "var"
    on_run: Callable[[str, int], None] = field(default=_no_metrics)  # (job, sent) → metrics
    # Platform sweeps a job may run, put here by the bot's adapters (nothing below bot/ holds a client):
    # source → async (tenant, start, end, now) → how many missed facts were stored.
    sweeps: dict[str, Sweep] = field(default_factory=dict)

    def outgoing(self, session: AsyncSession, tenant: TenantConfig, now: datetime) -> Outgoing:
        return Outgoing(session=session, tenant=tenant, now=now, data_dir=self.data_dir)

    async def record_run(self, tenant: str, job: str, slot: str, sent: int) -> None:
        self.on_run(job, sent)
        await record_run(self.db, tenant, job, slot, sent)


JobFn = Callable[[JobEnv, TenantConfig, datetime], Awaitable[int]]
# When the ticker should run a job: (tenant, calendar, local now) → today's slot time, or None.
SlotFn = Callable[[TenantConfig, WorkCalendar, datetime], "time | None"]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFn
    at: SlotFn
    # Run on every tick for which `at` gives a time, instead of once in its slot's grace window.
    every_tick: bool = False
    # Run by hand (console, CLI), when that differs from the scheduled run (the pulse outside Friday).
    manual: JobFn | None = None


def label_key(job: str) -> str:
    return f"job.{job}"


class JobRegistry:
    def __init__(self) -> None:
        self.specs: dict[str, JobSpec] = {}

    def job(self, name: str, *, at: SlotFn, every_tick: bool = False,
            label: dict[str, str] | None = None) -> Callable[[JobFn], JobFn]:
        if label is not None:
            register({label_key(name): label})

        def deco(fn: JobFn) -> JobFn:
            self._add(JobSpec(name, fn, at, every_tick))
            return fn
        return deco

    def manual(self, name: str) -> Callable[[JobFn], JobFn]:
        """Declare how `name` runs when started by hand."""
        def deco(fn: JobFn) -> JobFn:
            spec = self.specs[name]
            self.specs[name] = JobSpec(spec.name, spec.fn, spec.at, spec.every_tick, manual=fn)
            return fn
        return deco

    def _add(self, spec: JobSpec) -> None:
        if spec.name in self.specs:
            raise ValueError(f"job {spec.name!r} registered twice")
        self.specs[spec.name] = spec

    def include(self, other: "JobRegistry") -> "JobRegistry":
        for spec in other.specs.values():
            self._add(spec)
        return self

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __getitem__(self, name: str) -> JobSpec:
        return self.specs[name]

    def names(self) -> list[str]:
        return sorted(self.specs)

    def labels(self, locale: str) -> dict[str, str]:
        """Each job's label in `locale` (its name where the job declared none)."""
        return {name: t(locale, label_key(name)) if label_key(name) in TEXTS else name for name in self.names()}

    async def run(self, env: JobEnv, name: str, tenant: TenantConfig, at: datetime) -> int:
        """Run a job by hand as of `at`: the same exactly-once claims apply."""
        spec = self.specs[name]
        return await (spec.manual or spec.fn)(env, tenant, at)

    async def tick(self, env: JobEnv, tenants: list[TenantConfig], now: datetime,
                   on_error: Callable[[str, str], None],
                   offset: Callable[[str], timedelta] = lambda key: timedelta(0)) -> int:
        """Run every job whose time today has come and is within the tenant's catch-up grace.

        `offset` is a console tenant's moved clock (the console's clock panel); platform tenants have none."""
        total = 0
        base = now
        for tenant in tenants:
            now = base + offset(tenant.key)
            cal = WorkCalendar(tenant)
            local = now.astimezone(tenant.tz)
            grace = timedelta(minutes=tenant.catch_up_grace_minutes)
            for name, spec in self.specs.items():
                due = spec.at(tenant, cal, local)
                if due is None:
                    continue
                start = local.replace(hour=due.hour, minute=due.minute, second=0, microsecond=0)
                # Down at 09:30 and back at 10:15: catch up; back at 12:00: too late to be useful.
                if spec.every_tick or start <= local <= start + grace:
                    try:
                        total += await spec.fn(env, tenant, now)
                    except Exception:
                        on_error(name, tenant.key)
        return total
