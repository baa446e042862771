"""The Friday pulse: team cards to managers and the company card, XLSX and 12-week chart to HR.

Figures are computed on a read session and each card is claimed and queued in a short
transaction of its own, once per person and week.
"""
from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.calendar import WorkCalendar, iso_week, week_days, week_label
from bot.core.config import TenantConfig
from bot.core.files import create_private, private_dir
from cards.chart import trend_png
from cards.model import Card, Message
from cards.texts import t
from handlers.context import Outgoing
from schedules import pulse_texts  # noqa: F401  (the job's texts join the catalogue)
from schedules.contributions import contribution_heatmaps
from handlers.goal_changes import rate_fields
from schedules.registry import JobEnv, JobRegistry
from schedules.trace import response_fields
from handlers import competencies_texts  # noqa: F401  (the competency lines of HR's card)
from handlers.usage import usage_lines
from store import competencies
from store.export import export_weekly
from store.goal_changes import calibration, common_department, quarter_of
from store.live import is_counted, live_from
from store.models import Employee, ScheduledSend
from store.statuses import Role
from store.pulse import compute_pulse, org_tree, trend
from store.scheduled import claim_send
from store.task_figures import combine, task_figures, weeks_window

jobs = JobRegistry()


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def _ratio(ctx: Outgoing, rate: float | None, n: int, d: int) -> str:
    return ctx.t("pulse.ratio", pct=_pct(rate), n=n, d=d)


def _task_fields(ctx: Outgoing, f) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A scope's cross-functional task figures for the pulse card, when there are any tasks."""
    if not (f.due or f.escalations or f.open_escalations):
        return []
    median = f.median_resolution_minutes
    return [(ctx.t("pulse.tasks_on_time"), _ratio(ctx, f.on_time_rate, f.on_time, f.due)),
            (ctx.t("pulse.escalations"), ctx.t("pulse.escalations.value", n=f.escalations, open=f.open_escalations)
             + (ctx.t("pulse.escalations.median", minutes=f"{median:.0f}") if median is not None else ""))]


def pulse_card(ctx: Outgoing, title: str, pulse, *, show_missing: list[str] | None = None,  # type: ignore[no-untyped-def]
               extra: list[tuple[str, str]] | None = None) -> Card:
    total = pulse.total
    fields = [(ctx.t("pulse.fill"), _ratio(ctx, total.fill_rate, total.filled, total.population - total.skipped)),
              (ctx.t("pulse.completion"), _ratio(ctx, total.completion_rate, total.done, total.actions)),
              (ctx.t("pulse.linkage"), _ratio(ctx, total.linkage_rate, total.linked, total.actions)),
              (ctx.t("pulse.witness"), _ratio(ctx, total.witness_rate, total.confirmed, total.done))]
    # Department names are the tenant's own (as people typed them), shown as they are.
    lines = [ctx.t("pulse.dept_line", dept=d.dept.split('/')[-1] or d.dept, fill=_pct(d.fill_rate),
                   done=_pct(d.completion_rate), linked=_pct(d.linkage_rate), witnessed=_pct(d.witness_rate))
             for d in pulse.departments]
    if show_missing:
        lines.append(ctx.t("pulse.missing", names=ctx.t("pulse.names_sep").join(show_missing)))
    return Card(title=title, body="\n".join(lines), fields=fields + (extra or []))


async def competency_lines(ctx: Outgoing) -> str:
    """HR's view of the latest assessment round: each manager's rating distribution (5 people or more)."""
    period = await competencies.latest_period(ctx.session, ctx.tenant.key)
    if period is None:
        return ""
    company, spread = await competencies.rating_spread(ctx.session, ctx.tenant.key, period)
    if company is None:
        return ""
    lines = [ctx.t("comp.spread.title", period=period, avg=f"{company:.1f}")]
    for m in spread:
        lines.append(ctx.t("comp.spread.row", name=await ctx.name_of(m.manager), n=m.people,
                           l1=m.counts[1], l2=m.counts[2], l3=m.counts[3], avg=f"{m.average:.1f}",
                           flag=ctx.t("comp.spread.lenient") if m.lenient else ""))
    return "\n".join(lines)


def _pulse_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.pulse_at if cal.last_working_day(iso_week(local.date())) == local.date() else None


@jobs.job("pulse", at=_pulse_at, label={"zh": "周五组织脉搏", "en": "Friday pulse"})
async def pulse(env: JobEnv, tenant: TenantConfig, at: datetime, *, forced: bool = False) -> int:
    """Team cards to managers and the company card (with XLSX and trend chart) to HR, once per week."""
    cal = WorkCalendar(tenant)
    day = at.astimezone(tenant.tz).date()
    week = iso_week(day)
    if not forced and cal.last_working_day(week) != day:
        return 0
    async with env.db.session() as s:
        if not is_counted(week, await live_from(s, tenant.key)):
            return 0  # before go-live: there is nothing to report yet
    # Figures are computed on a read session, and each card is claimed and queued in a
    # short transaction of its own: at 100,000 people the figures take minutes, and
    # one long write transaction would keep every callback waiting meanwhile.
    cards: list[tuple[str, str, Any]] = []  # (userid, kind, card builder input)
    async with env.db.session() as s:
        ctx = env.outgoing(s, tenant, at)
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
        # The quarter's goal calibration as of the week's end, so a pulse run again later reads the same.
        week_end = week_days(week)[-1]
        quarter, upto = quarter_of(week_end), datetime.combine(week_end + timedelta(days=1), time(0), tenant.tz)
        dept_of = {e.userid: e.department for e in staff}
        for boss in staff:
            if not (boss.has_role(Role.MANAGER) or boss.userid in has_reports) or (boss.userid, "pulse_team") in done:
                continue
            # The manager and their line, counted as HR's card and the export count the department.
            team = tree.team(boss.userid)
            if not team:
                continue
            p = await compute_pulse(s, tenant.key, week, people=team)
            cards.append((boss.userid, "pulse_team", pulse_card(
                ctx, ctx.t("pulse.title.manager", week=week_label(week, tenant.locale)), p,
                show_missing=[names.get(u, u) for u in p.missing if u != boss.userid],
                extra=_task_fields(ctx, combine([tasks_by_owner[u] for u in team if u in tasks_by_owner]))
                + rate_fields(ctx, await calibration(s, tenant.key, quarter, tenant.tz, upto=upto,
                                                     department=common_department(dept_of.get(u, "") for u in team)))
                + await response_fields(ctx, week, team))))
        hr = [e.userid for e in staff if e.has_role(Role.HR) and (e.userid, "pulse_company") not in done]
        if hr:
            company = pulse_card(ctx, ctx.t("pulse.title.hr", week=week_label(week, tenant.locale)),
                                 await compute_pulse(s, tenant.key, week),
                                 extra=_task_fields(ctx, tasks.total)
                                 + rate_fields(ctx, await calibration(s, tenant.key, quarter, tenant.tz, upto=upto))
                                 + await response_fields(ctx, week))
            company.body = "\n".join(x for x in (company.body, await competency_lines(ctx),
                                                 await usage_lines(ctx, week)) if x)
            cards += [(u, "pulse_company", company) for u in hr]
    sent = 0
    hr_due: list[str] = []
    for userid, kind, card in cards:
        async with env.db.transaction() as s:
            if not await claim_send(s, tenant.key, userid, kind, week, at):
                continue  # another process got there first
            await env.outgoing(s, tenant, at).issue_card(userid, "pulse", Card.from_dict(card.to_dict()))
        sent += 1
        if kind == "pulse_company":
            hr_due.append(userid)
    if hr_due:
        await _send_hr_files(env, tenant, at, week, hr_due)
    await env.record_run(tenant.key, "pulse", week, sent)
    return sent


async def _send_hr_files(env: JobEnv, tenant: TenantConfig, at: datetime, week: str, userids: list[str]) -> None:
    """The XLSX export and the 12-week chart for HR (written after the claim so they go once)."""
    out_dir = Path(env.data_dir) / "exports" / tenant.key
    private_dir(out_dir)
    xlsx = out_dir / f"动线周报-{week}-{uuid.uuid4().hex[:6]}.xlsx"
    await export_weekly(env.db, tenant.key, [week], xlsx, now=at)
    say = partial(t, tenant.locale)
    messages = [Message(kind="file", path=str(xlsx), filename=say("pulse.file.xlsx", week=week),
                        text=say("pulse.file.xlsx.caption", week=week))]
    png = await _trend_chart(env, tenant, week, out_dir)
    messages.append(Message(kind="image", path=str(png), filename=say("pulse.file.trend", week=week),
                            text=say("pulse.file.trend.caption")))
    messages += await contribution_heatmaps(env, tenant, at, out_dir)
    async with env.db.transaction() as s:
        ctx = env.outgoing(s, tenant, at)
        for userid in userids:
            for m in messages:
                ctx.send(userid, m)


async def _trend_chart(env: JobEnv, tenant: TenantConfig, week: str, out_dir: Path) -> Path:
    async with env.db.session() as s:
        points = await trend(s, tenant.key, week, weeks=12)
    png = out_dir / f"trend-{week}-{uuid.uuid4().hex[:6]}.png"
    create_private(png)
    png.write_bytes(trend_png(points, tenant.locale))
    return png




@jobs.manual("pulse")
async def pulse_now(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    """By hand the pulse runs on any day (HR trying it out on a Wednesday)."""
    return await pulse(env, tenant, at, forced=True)
