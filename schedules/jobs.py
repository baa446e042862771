"""Scheduled jobs: a clock instead of a person, on the same path as a message.

A job asks the store who is due and writes outbox rows. Each send first
claims a `scheduled_send` row whose unique keys make it happen once per
(tenant, person, kind, day) — across restarts and several processes — and
enforce the budget of one bot-initiated reminder per person per day.
"""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from sqlalchemy import select, update

from bot.core.clock import utcnow
from bot.core.files import create_private, private_dir
from bot.core.config import TenantConfig
from bot.core.events import Event
from cards.model import Button, Card, Message
from bot.core.timeutil import aware
from handlers.context import Context
from schedules.briefs import review_briefs, review_briefs_at
from bot.core.calendar import WorkCalendar, iso_week
from store.db import try_insert
from store.models import Employee, JobRun, Leave, ScheduledSend, WeeklyAction

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

# Reminder kinds that count against the one-per-person-per-day budget.
BUDGETED = {"morning_prompt", "last_day", "witness_nudge"}


def job_context(session, tenant: TenantConfig, now: datetime) -> Context:  # type: ignore[no-untyped-def]
    event = Event(tenant=tenant.key, platform=tenant.platform, userid="", kind="enter", dedup_key="job")
    return Context(session=session, tenant=tenant, event=event, me=None, now=now)


async def claim_send(session, tenant: str, userid: str, kind: str, day: str, now: datetime) -> bool:  # type: ignore[no-untyped-def]
    """True if this process may send `kind` to `userid` for `day` (and nobody else will)."""
    return await try_insert(session, ScheduledSend, dict(
        tenant=tenant, userid=userid, kind=kind, day=day,
        budget_day=day if kind in BUDGETED else None, at=now))


async def _record_run(runtime: "Runtime", tenant: str, job: str, slot: str, sent: int) -> None:
    runtime.metrics.job_runs.labels(job).inc()
    runtime.metrics.job_sends.labels(job).inc(sent)
    async with runtime.db.transaction() as s:
        if not await try_insert(s, JobRun, dict(tenant=tenant, job=job, slot=slot, started_at=utcnow(),
                                                finished_at=utcnow(), sent=sent)):
            await s.execute(update(JobRun).where(JobRun.tenant == tenant, JobRun.job == job, JobRun.slot == slot)
                            .values(finished_at=utcnow(), sent=JobRun.sent + sent))


async def _on_leave(session, tenant: str, day: date) -> set[str]:  # type: ignore[no-untyped-def]
    rows = await session.execute(select(Leave.userid).where(
        Leave.tenant == tenant, Leave.start_day <= day, Leave.end_day >= day))
    return set(rows.scalars())


# -- 09:30 ------------------------------------------------------------------------
async def morning_prompt(runtime: "Runtime", tenant: TenantConfig, at: datetime) -> int:
    """Prompt people with no action this week; on the week's last working day ask
    those with an open action whether it is done; nudge silent witnesses."""
    from handlers.weekly_action import prompt_card

    cal = WorkCalendar(tenant)
    day = at.astimezone(tenant.tz).date()
    if not cal.is_working_day(day):
        return 0
    week = iso_week(day)
    last_day = cal.last_working_day(week) == day
    slot = day.isoformat()
    sent = 0
    async with runtime.db.transaction() as s:
        ctx = job_context(s, tenant, at)
        away = await _on_leave(s, tenant.key, day)
        prompted = await _claim_prompts(s, tenant.key, day, week, at)
        open_actions = [] if not last_day else list((await s.execute(select(WeeklyAction).where(
            WeeklyAction.tenant == tenant.key, WeeklyAction.week == week, WeeklyAction.status == "open"))).scalars())
        for action in open_actions:
            userid = action.userid
            if userid not in away:
                if await claim_send(s, tenant.key, userid, "last_day", slot, at):
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
    await _record_run(runtime, tenant.key, "morning_prompt", slot, sent)
    return sent


async def _claim_prompts(session, tenant: str, day: date, week: str, at: datetime) -> list[str]:  # type: ignore[no-untyped-def]
    """Claim today's prompt for everyone due, in one statement; returns who got a claim.

    Due: active, not on leave today, no action this week. INSERT … SELECT … ON
    CONFLICT DO NOTHING RETURNING is both the exactly-once claim (a second run or
    process gets nothing back) and the daily budget (one reminder per person per
    day), for 100,000 people as for 40.
    """
    from sqlalchemy import exists, literal
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from store.models import UTCDateTime

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


async def _nudge_witnesses(ctx: Context, cal: WorkCalendar, day: date, away: set[str]) -> int:
    """One nudge to a witness who has not answered a confirmation for a working day."""
    s, tenant = ctx.session, ctx.tenant
    rows = (await s.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant.key, WeeklyAction.status == "done",
        WeeklyAction.nudged_at.is_(None), WeeklyAction.done_at.is_not(None)))).scalars()
    sent = 0
    for action in list(rows):
        done_day = aware(action.done_at).astimezone(tenant.tz).date()  # type: ignore[arg-type]
        if cal.working_days_between(done_day, day) < 1 or action.witness_userid in away:
            continue
        if not await claim_send(s, tenant.key, action.witness_userid, "witness_nudge", day.isoformat(), ctx.now):
            continue  # already reminded today; the budget holds, try next working day
        owner = (await ctx.employee(action.userid))
        ctx.send(action.witness_userid, ctx.t("nudge.body", name=owner.name if owner else action.userid, thing=action.thing))
        action.nudged_at = ctx.now
        s.add(action)
        sent += 1
    return sent


# -- Friday pulse --------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def _task_fields(f) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A scope's cross-functional task figures for the pulse card, when there are any tasks."""
    if not (f.due or f.escalations or f.open_escalations):
        return []
    median = f.median_resolution_minutes
    return [("任务按时交付率", f"{_pct(f.on_time_rate)}（{f.on_time}/{f.due}）"),
            ("升级", f"{f.escalations} 次，未关闭 {f.open_escalations}"
                    + (f"，解决中位 {median:.0f} 分钟" if median is not None else ""))]


def pulse_card(ctx: Context, title: str, pulse, *, show_missing: list[str] | None = None,  # type: ignore[no-untyped-def]
               extra: list[tuple[str, str]] | None = None) -> Card:
    total = pulse.total
    fields = [(ctx.t("pulse.fill"), f"{_pct(total.fill_rate)}（{total.filled}/{total.population - total.skipped}）"),
              (ctx.t("pulse.completion"), f"{_pct(total.completion_rate)}（{total.done}/{total.actions}）"),
              (ctx.t("pulse.linkage"), f"{_pct(total.linkage_rate)}（{total.linked}/{total.actions}）"),
              (ctx.t("pulse.witness"), f"{_pct(total.witness_rate)}（{total.confirmed}/{total.done}）")]
    lines = [f"{d.dept.split('/')[-1] or d.dept}：填写 {_pct(d.fill_rate)} · 完成 {_pct(d.completion_rate)} · "
             f"关联 {_pct(d.linkage_rate)} · 见证 {_pct(d.witness_rate)}" for d in pulse.departments]
    if show_missing:
        lines.append(ctx.t("pulse.missing", names="、".join(show_missing)))
    return Card(title=title, body="\n".join(lines), fields=fields + (extra or []))


async def pulse(runtime: "Runtime", tenant: TenantConfig, at: datetime, *, forced: bool = False) -> int:
    """Team cards to managers and the company card (with XLSX and trend chart) to HR, once per week."""
    from store.pulse import compute_pulse, org_tree
    from store.task_figures import combine, task_figures, weeks_window

    cal = WorkCalendar(tenant)
    day = at.astimezone(tenant.tz).date()
    week = iso_week(day)
    if not forced and cal.last_working_day(week) != day:
        return 0
    # Figures are computed on a read session, and each card is claimed and queued in a
    # short transaction of its own: at 100,000 people the figures take minutes, and
    # one long write transaction would keep every callback waiting meanwhile.
    cards: list[tuple[str, str, Any]] = []  # (userid, kind, card builder input)
    async with runtime.db.session() as s:
        ctx = job_context(s, tenant, at)
        done = set((await s.execute(select(ScheduledSend.userid, ScheduledSend.kind).where(
            ScheduledSend.tenant == tenant.key, ScheduledSend.day == week,
            ScheduledSend.kind.in_(("pulse_team", "pulse_company"))))).all())
        staff = list((await s.execute(select(Employee).where(
            Employee.tenant == tenant.key, Employee.active.is_(True)))).scalars())
        names = {e.userid: e.name for e in staff}
        has_reports = {e.manager_userid for e in staff if e.manager_userid}
        tree = await org_tree(s, tenant.key)
        # Task figures once for everybody; each manager's card sums their people's.
        start, end = weeks_window([week], tenant.tz)
        tasks = await task_figures(s, tenant.key, start=start, end=end, now=at)
        tasks_by_owner = {f.key: f for f in tasks.people}
        for boss in staff:
            if not (boss.has_role("manager") or boss.userid in has_reports) or (boss.userid, "pulse_team") in done:
                continue
            line = tree.line(boss.userid)
            if not line:
                continue
            p = await compute_pulse(s, tenant.key, week, people=line)
            cards.append((boss.userid, "pulse_team", pulse_card(
                ctx, ctx.t("pulse.title.manager", week=week), p, show_missing=[names.get(u, u) for u in p.missing],
                extra=_task_fields(combine([tasks_by_owner[u] for u in line if u in tasks_by_owner])))))
        hr = [e.userid for e in staff if e.has_role("hr") and (e.userid, "pulse_company") not in done]
        if hr:
            company = pulse_card(ctx, ctx.t("pulse.title.hr", week=week), await compute_pulse(s, tenant.key, week),
                                 extra=_task_fields(tasks.total))
            cards += [(u, "pulse_company", company) for u in hr]
    sent = 0
    hr_due: list[str] = []
    for userid, kind, card in cards:
        async with runtime.db.transaction() as s:
            if not await claim_send(s, tenant.key, userid, kind, week, at):
                continue  # another process got there first
            await job_context(s, tenant, at).issue_card(userid, "pulse", Card.from_dict(card.to_dict()))
        sent += 1
        if kind == "pulse_company":
            hr_due.append(userid)
    if hr_due:
        await _send_hr_files(runtime, tenant, at, week, hr_due)
    await _record_run(runtime, tenant.key, "pulse", week, sent)
    return sent


async def _send_hr_files(runtime: "Runtime", tenant: TenantConfig, at: datetime, week: str, userids: list[str]) -> None:
    """The XLSX export and the 12-week chart for HR (written after the claim so they go once)."""
    from store.export import export_weekly

    out_dir = Path(runtime.config.server.data_dir) / "exports" / tenant.key
    private_dir(out_dir)
    xlsx = out_dir / f"动线周报-{week}-{uuid.uuid4().hex[:6]}.xlsx"
    await export_weekly(runtime.db, tenant.key, [week], xlsx, now=at)
    messages = [Message(kind="file", path=str(xlsx), filename=f"动线周报-{week}.xlsx",
                        text=f"{week} 组织脉搏明细")]
    png = await _trend_chart(runtime, tenant, week, out_dir)
    if png is not None:
        messages.append(Message(kind="image", path=str(png), filename=f"趋势-{week}.png", text="近12周趋势"))
    async with runtime.db.transaction() as s:
        ctx = job_context(s, tenant, at)
        for userid in userids:
            for m in messages:
                ctx.send(userid, m)


async def _trend_chart(runtime: "Runtime", tenant: TenantConfig, week: str, out_dir: Path) -> Path | None:
    try:
        from cards.chart import trend_png
    except ImportError:
        return None
    from store.pulse import trend

    async with runtime.db.session() as s:
        points = await trend(s, tenant.key, week, weeks=12)
    png = out_dir / f"trend-{week}-{uuid.uuid4().hex[:6]}.png"
    create_private(png)
    png.write_bytes(trend_png(points, tenant.locale))
    return png


# -- registry ------------------------------------------------------------------------
JobFn = Callable[["Runtime", TenantConfig, datetime], Awaitable[int]]


@dataclass(frozen=True)
class JobSpec:
    fn: JobFn
    # When the ticker should run it: (tenant, calendar, local now) -> slot time today or None.
    at: Callable[[TenantConfig, WorkCalendar, datetime], time | None]
    # Run on every tick for which `at` gives a time, instead of once in its slot's grace window.
    every_tick: bool = False


def _morning_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.morning_prompt_at if cal.is_working_day(local.date()) else None


def _pulse_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.pulse_at if cal.last_working_day(iso_week(local.date())) == local.date() else None


async def _overdue_scan(runtime: "Runtime", tenant: TenantConfig, at: datetime) -> int:
    from schedules.tasks_scan import overdue_scan  # it imports this module
    return await overdue_scan(runtime, tenant, at)


def _overdue_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    from schedules.tasks_scan import scan_at
    return scan_at(tenant, cal, local)


JOBS: dict[str, JobSpec] = {
    "morning_prompt": JobSpec(morning_prompt, _morning_at),
    "pulse": JobSpec(pulse, _pulse_at),
    "overdue_scan": JobSpec(_overdue_scan, _overdue_at, every_tick=True),
    "review_briefs": JobSpec(review_briefs, review_briefs_at),
}


async def run_job(runtime: "Runtime", name: str, tenant: TenantConfig, at: datetime) -> int:
    """Run a job by hand (console, CLI) as of `at`: the same exactly-once claims apply."""
    if name == "pulse":
        return await pulse(runtime, tenant, at, forced=True)
    return await JOBS[name].fn(runtime, tenant, at)


async def tick(runtime: "Runtime", now: datetime) -> int:
    """Run every job whose time today has come and is within the catch-up grace."""
    total = 0
    base = now
    for tenant in runtime.config.tenants:
        now = base + runtime.offset(tenant.key)  # a console tenant's clock may be moved
        cal = WorkCalendar(tenant)
        local = now.astimezone(tenant.tz)
        grace = timedelta(minutes=tenant.catch_up_grace_minutes)
        for name, spec in JOBS.items():
            due = spec.at(tenant, cal, local)
            if due is None:
                continue
            start = local.replace(hour=due.hour, minute=due.minute, second=0, microsecond=0)
            # Down at 09:30 and back at 10:15: catch up; back at 12:00: too late to be useful.
            if spec.every_tick or start <= local <= start + grace:
                try:
                    total += await spec.fn(runtime, tenant, now)
                except Exception:
                    log.exception("job %s failed for tenant %s", name, tenant.key)
    return total
