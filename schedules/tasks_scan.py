"""The overdue scan: task cards to owners and escalations of stale tasks.

It runs on every tick during working hours and is idempotent: each card is
claimed first (a `scheduled_send` row for owner cards, an `escalation` row for
escalations), so restarts and several processes send each one once.

Blocking rule: a task that is past due and has had no status update for
`[tenants.tasks] escalate_after_hours` goes to the owner's manager and the project's PMO
(level 1). Still stale `escalate_climb_hours` after the last level was told, it
goes one level further up the management chain. Nothing goes out outside the
tenant's working hours; what fell due then goes at the next working moment.
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from sqlalchemy import select

from bot.core.calendar import WorkCalendar
from bot.core.config import TenantConfig
from bot.core.timeutil import aware, utc
from handlers.context import Outgoing
from handlers.tasks.cards import ESCALATION_CARD, send_escalation_card, send_owner_card
from handlers.tasks.formatting import fmt_hours, fmt_time
from handlers.tasks.sends import assign_send_kind, due_card_day, due_send_kind
from handlers.tasks.settings import TaskSettings
from schedules.registry import JobEnv, JobRegistry
from store.db import Database, try_insert
from store.models import Employee, Escalation, IssuedCard, Project, ScheduledSend, Task
from store.scheduled import claim_send
from store.statuses import join_userids
from store.tasks import DONE, OPEN_STATUSES, episode_of, management_chain, stale_anchor

jobs = JobRegistry()
log = logging.getLogger(__name__)

JOB = "overdue_scan"


def in_working_hours(cal: WorkCalendar, tenant: TenantConfig, at: datetime) -> bool:
    local = at.astimezone(tenant.tz)
    return cal.next_working_moment(local, tenant.work_hours_start, tenant.work_hours_end) == local


def scan_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    """For the ticker: due right now during working hours, not at all outside them."""
    return local.time() if in_working_hours(cal, tenant, local) else None


@jobs.job(JOB, at=scan_at, every_tick=True, label={"zh": "阻塞预警扫描", "en": "Overdue task scan"})
async def overdue_scan(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    """Run the scan as of `at`; returns the number of cards sent."""
    sent = await scan(env.db, tenant, at)
    if sent:
        await env.record_run(tenant.key, JOB, at.astimezone(tenant.tz).date().isoformat(), sent)
    return sent


async def scan(db: Database, tenant: TenantConfig, at: datetime) -> int:
    cal = WorkCalendar(tenant)
    if not in_working_hours(cal, tenant, at):
        return 0
    await settle_episodes(db, tenant, at)
    sent = await escalate(db, tenant, cal, at)
    sent += await owner_cards(db, tenant, cal, at)
    return sent


# -- escalation ----------------------------------------------------------------------------
async def escalate(db: Database, tenant: TenantConfig, cal: WorkCalendar, at: datetime) -> int:
    cutoff = utc(at - timedelta(hours=TaskSettings.of(tenant).escalate_after_hours))
    async with db.session() as s:
        ids = list((await s.execute(select(Task.id).where(
            Task.tenant == tenant.key, Task.status.in_(OPEN_STATUSES),
            Task.due_at <= cutoff, Task.status_updated_at <= cutoff).order_by(Task.id))).scalars())
    sent = 0
    for task_id in ids:
        # One transaction per task: a problem with one task does not hold back the others.
        try:
            async with db.transaction() as s:
                sent += await _escalate_one(s, tenant, cal, at, task_id)
        except Exception:
            log.exception("escalating task %s of tenant %s failed", task_id, tenant.key)
    return sent


async def _escalate_one(s, tenant: TenantConfig, cal: WorkCalendar, at: datetime, task_id: int) -> int:  # type: ignore[no-untyped-def]
    # The row lock (PostgreSQL) orders this against a status update of the same task, so an
    # escalation is never sent for an episode that has just ended.
    task = (await s.execute(select(Task).where(Task.tenant == tenant.key, Task.id == task_id)
                            .with_for_update())).scalar_one_or_none()
    if task is None or task.status == DONE:
        return 0
    stale_at = stale_anchor(task) + timedelta(hours=TaskSettings.of(tenant).escalate_after_hours)
    if at < _next_working(cal, tenant, stale_at):
        return 0
    episode = episode_of(task)
    steps = list((await s.execute(select(Escalation).where(
        Escalation.tenant == tenant.key, Escalation.task_id == task.id, Escalation.episode == episode)
        .order_by(Escalation.level))).scalars())
    told = [u for step in steps for u in step.recipients]
    if not steps:
        level = 1
        recipients = await _first_level(s, tenant.key, task)
    else:
        last = steps[-1]
        if last.resolved_at is not None:
            return 0
        climb_at = aware(last.created_at) + timedelta(hours=TaskSettings.of(tenant).escalate_climb_hours)
        if at < _next_working(cal, tenant, climb_at):
            return 0
        level = last.level + 1
        chain = await management_chain(s, tenant.key, task.owner_userid)
        recipients = [p.userid for p in chain[level - 1:] if p.userid not in told][:1]
    if not recipients:
        return 0
    if not await try_insert(s, Escalation, dict(tenant=tenant.key, task_id=task.id, episode=episode, level=level,
                                                to_userids=join_userids(recipients), created_at=utc(at))):
        return 0  # another process told them
    ctx = Outgoing(session=s, tenant=tenant, now=utc(at))
    for userid in recipients:
        await send_escalation_card(ctx, task, userid=userid, level=level, episode=episode, told_before=told)
    return len(recipients)


def _next_working(cal: WorkCalendar, tenant: TenantConfig, when: datetime) -> datetime:
    return cal.next_working_moment(when.astimezone(tenant.tz), tenant.work_hours_start, tenant.work_hours_end)


async def _first_level(s, tenant: str, task: Task) -> list[str]:  # type: ignore[no-untyped-def]
    """The owner's manager and the project's PMO (active, not the owner, each once)."""
    out: list[str] = []
    chain = await management_chain(s, tenant, task.owner_userid)
    if chain:
        out.append(chain[0].userid)
    project = (await s.execute(select(Project).where(
        Project.tenant == tenant, Project.id == task.project_id))).scalar_one_or_none()
    if project is not None and project.pmo_userid:
        pmo = (await s.execute(select(Employee).where(
            Employee.tenant == tenant, Employee.userid == project.pmo_userid))).scalar_one_or_none()
        if pmo is not None and pmo.active:
            out.append(pmo.userid)
    return [u for u in dict.fromkeys(out) if u != task.owner_userid]


async def settle_episodes(db: Database, tenant: TenantConfig, at: datetime) -> int:
    """Close what a status update or a new due time left behind: open escalations of an
    ended episode (a status update racing a scan) and their cards (a due time moved by import)."""
    async with db.transaction() as s:
        ctx = Outgoing(session=s, tenant=tenant, now=utc(at))
        rows = list((await s.execute(select(Escalation, Task)
                                     .join(Task, Task.id == Escalation.task_id, isouter=True)
                                     .where(Escalation.tenant == tenant.key, Escalation.resolved_at.is_(None))
                                     .order_by(Escalation.id))).all())
        closed = 0
        for esc, task in rows:
            if task is not None and task.status != DONE and esc.episode == episode_of(task):
                continue
            moved = utc(task.status_updated_at) if task is not None else None
            esc.resolved_at = moved if moved is not None and moved >= aware(esc.created_at) else utc(at)
            s.add(esc)
            closed += 1
        cards = list((await s.execute(select(IssuedCard, Task)
                                      .join(Task, Task.id == IssuedCard.ref_id, isouter=True)
                                      .where(IssuedCard.tenant == tenant.key, IssuedCard.kind == ESCALATION_CARD,
                                             IssuedCard.state == "open")
                                      .order_by(IssuedCard.id))).all())
        for card, task in cards:
            if task is None or task.status == DONE or card.data.get("episode") != episode_of(task):
                await ctx.close_card(card, ctx.t("task.esc.over"))
        return closed


# -- owner cards --------------------------------------------------------------------------------
async def owner_cards(db: Database, tenant: TenantConfig, cal: WorkCalendar, at: datetime) -> int:
    """The assignment card (once per owner) and the due-day card (once per due day)."""
    today = at.astimezone(tenant.tz).date()
    next_working = cal.next_working_day(today)
    sent = 0
    async with db.transaction() as s:
        ctx = Outgoing(session=s, tenant=tenant, now=utc(at))
        tasks = list((await s.execute(select(Task).where(
            Task.tenant == tenant.key, Task.status.in_(OPEN_STATUSES)).order_by(Task.id))).scalars())
        if not tasks:
            return 0
        active = set((await s.execute(select(Employee.userid).where(
            Employee.tenant == tenant.key, Employee.active.is_(True)))).scalars())
        claimed = {tuple(r) for r in (await s.execute(select(ScheduledSend.userid, ScheduledSend.kind, ScheduledSend.day)
                                                     .where(ScheduledSend.tenant == tenant.key,
                                                            ScheduledSend.kind.like("task\\_%", escape="\\")))).all()}
        projects = {p.id: p for p in (await s.execute(select(Project).where(Project.tenant == tenant.key))).scalars()}
        for task in tasks:
            owner = task.owner_userid
            if owner not in active or task.id is None:
                continue
            due_day = aware(task.due_at).astimezone(tenant.tz).date().isoformat()
            due_now = due_card_day(ctx, task, today, next_working)
            if (owner, assign_send_kind(task.id), "assign") not in claimed:
                if not await claim_send(s, tenant.key, owner, assign_send_kind(task.id), "assign", utc(at)):
                    continue
                if due_now:
                    await claim_send(s, tenant.key, owner, due_send_kind(task.id), due_day, utc(at))
                project = projects.get(task.project_id)
                await send_owner_card(ctx, task, title_key="task.card.new",
                                      body=ctx.t("task.card.new.body.import", project=project.name if project else "—"))
                sent += 1
            elif due_now and (owner, due_send_kind(task.id), due_day) not in claimed:
                if await claim_send(s, tenant.key, owner, due_send_kind(task.id), due_day, utc(at)):
                    await send_owner_card(ctx, task, title_key="task.card.due",
                                          body=ctx.t("task.card.due.body", due=fmt_time(ctx, task.due_at)))
                    sent += 1
            sent += await _due_reminder(ctx, cal, tenant, task, at, claimed)
    return sent


async def _due_reminder(ctx, cal: WorkCalendar, tenant: TenantConfig, task: Task, at: datetime,  # type: ignore[no-untyped-def]
                        claimed: set[tuple[str, str, str]]) -> int:
    """The owner's reminder before the due time and the one at it, each once per due time.

    The claim's day is the due time itself, so a moved due time is reminded of again.
    """
    settings = TaskSettings.of(tenant)
    due = aware(task.due_at)
    slot = utc(due).strftime("%Y-%m-%dT%H:%M")
    owner, task_id = task.owner_userid, task.id or 0
    if at < due:
        if settings.remind_before_working_hours <= 0:
            return 0
        if at < cal.working_hours_before(due, settings.remind_before_working_hours,
                                         tenant.work_hours_start, tenant.work_hours_end):
            return 0
        kind, title, body = before_send_kind(task_id), "task.card.soon", ctx.t(
            "task.card.soon.body", due=fmt_time(ctx, due), left=fmt_left(ctx, due))
    else:
        if not settings.remind_at_due:
            return 0
        # Once escalated, the manager's card has taken over; the owner gets the nudge from there.
        escalated = (await ctx.session.execute(select(Escalation.id).where(
            Escalation.tenant == tenant.key, Escalation.task_id == task_id,
            Escalation.episode == episode_of(task)))).first()
        if escalated is not None or aware(task.status_updated_at) >= due:
            return 0
        kind, title, body = at_send_kind(task_id), "task.card.now", ctx.t(
            "task.card.now.body", due=fmt_time(ctx, due), hours=fmt_hours(settings.escalate_after_hours))
    if (owner, kind, slot) in claimed or not await claim_send(ctx.session, tenant.key, owner, kind, slot, utc(at)):
        return 0
    await send_owner_card(ctx, task, title_key=title, body=body)
    return 1


def before_send_kind(task_id: int) -> str:
    return f"task_before:{task_id}"


def at_send_kind(task_id: int) -> str:
    return f"task_at:{task_id}"


def fmt_left(ctx, due: datetime) -> str:  # type: ignore[no-untyped-def]
    minutes = max(1, int((due - ctx.now).total_seconds() // 60))
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{ctx.t('time.hours', h=hours)} {ctx.t('time.minutes', m=mins)}"
    return ctx.t("time.hours", h=hours) if hours else ctx.t("time.minutes", m=mins)
