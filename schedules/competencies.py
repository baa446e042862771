"""The competency round and the calibration watch.

- `competency_round`: when a review period opens (the `review_periods` the brief uses), each
  active person gets a self-assessment card and each reviewer one card per direct report.
  Claimed in `scheduled_send` per (person, `comp_self` / `comp_mgr:<subject>`, period): once.
- `competency_nudge`: `nudge_after_working_days` working days after the round opened, in the
  afternoon (after the 09:30 prompt has had its turn at the daily budget), one card to whoever
  still has a self-assessment or a report's assessment open, with a button to each. Once per
  person and period; it counts against the one-reminder-a-day budget, so a person already
  reminded that day is tried again the next working day.
- `calibration_watch`: each working morning, a calibration not held by its due day (N working
  days after it opened) sends one reminder to the person and the manager; still not held
  `hr_after_reminder_working_days` later, HR is told. Both claimed once per calibration.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import WorkCalendar
from bot.core.config import TenantConfig
from cards.model import Button, Card
from handlers import competencies as feature
from schedules.briefs import first_working_day, open_periods, reviewer
from schedules.registry import JobEnv, JobRegistry
from store import audit
from store import competencies as comp
from store.models import Employee, Leave, ScheduledSend
from store.scheduled import claim_send

jobs = JobRegistry()


def round_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.work_hours_start if open_periods(tenant, cal, local.date()) else None


def watch_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.work_hours_start if cal.is_working_day(local.date()) else None


@jobs.job("competency_round", at=round_at, label={"zh": "能力评估开启", "en": "Competency round"})
async def competency_round(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    cal = WorkCalendar(tenant)
    periods = open_periods(tenant, cal, at.astimezone(tenant.tz).date())
    sent = 0
    for period in periods:
        count = 0
        async with env.db.transaction() as s:
            out = env.outgoing(s, tenant, at)
            if not await comp.library(s, tenant.key):
                continue
            everyone = {e.userid: e for e in (await s.execute(select(Employee).where(
                Employee.tenant == tenant.key))).scalars()}
            for userid in sorted(u for u, e in everyone.items() if e.active):
                person = everyone[userid]
                codes = await comp.focus_codes(s, tenant.key, person.department)
                if not codes:
                    continue
                body = out.t("comp.round.body", n=len(codes), codes=out.t("list.sep").join(codes),
                             minutes=len(codes) * feature.MINUTES_PER_COMPETENCY)
                if await claim_send(s, tenant.key, userid, "comp_self", period.period, at):
                    card = Card(title=out.t("comp.round.title.self", period=period.period), body=body, buttons=[
                        Button(feature.StartAssessment(subject=userid, period=period.period, side="self").pack(),
                               out.t("comp.btn.start"), "primary")])
                    await out.issue_card(userid, feature.ROUND_CARD, card, ttl_hours=feature.CARD_TTL_HOURS)
                    count += 1
                boss = reviewer(everyone, userid)
                if boss and await claim_send(s, tenant.key, boss, f"comp_mgr:{userid}", period.period, at):
                    card = Card(title=out.t("comp.round.title.manager", period=period.period, name=person.name),
                                body=body, buttons=[Button(feature.StartAssessment(
                                    subject=userid, period=period.period, side="manager").pack(),
                                    out.t("comp.btn.start"), "primary")])
                    await out.issue_card(boss, feature.ROUND_CARD, card, ttl_hours=feature.CARD_TTL_HOURS)
                    count += 1
        await env.record_run(tenant.key, "competency_round", period.period, count)
        sent += count
    return sent


NUDGE_AT = time(14, 0)
NUDGE_WINDOW_DAYS = 30  # a round older than this is not chased any more
MAX_BUTTONS = 6  # a WeCom button card's limit


def nudge_periods(tenant: TenantConfig, cal: WorkCalendar, today: date) -> list[str]:
    """Periods whose round opened `nudge_after_working_days` working days ago or more (and not too long ago)."""
    after = feature.CompetencySettings.of(tenant).nudge_after_working_days
    if not after or not cal.is_working_day(today):
        return []
    out = []
    for p in tenant.review_periods:
        opened = first_working_day(cal, p.opens)
        if cal.add_working_days(opened, after) <= today < opened + timedelta(days=NUDGE_WINDOW_DAYS):
            out.append(p.period)
    return out


def nudge_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return NUDGE_AT if nudge_periods(tenant, cal, local.date()) else None


async def _open_sides(s: AsyncSession, tenant: str, period: str) -> dict[str, list[tuple[str, str]]]:
    """Who still has an assessment of `period` to submit: userid → [(side, subject)].

    Only assessments the round asked for (its `comp_self` / `comp_mgr:<subject>` claims), so a
    person who joined after the round is not chased for a card they never got."""
    asked = (await s.execute(select(ScheduledSend.userid, ScheduledSend.kind).where(
        ScheduledSend.tenant == tenant, ScheduledSend.day == period))).all()
    submitted = {(a.subject_userid, a.side) for a in (await s.execute(select(comp.Assessment).where(
        comp.Assessment.tenant == tenant, comp.Assessment.period == period,
        comp.Assessment.state == comp.SUBMITTED))).scalars()}
    out: dict[str, list[tuple[str, str]]] = {}
    for userid, kind in sorted(asked):
        if kind == "comp_self":
            side, subject = comp.SELF, userid
        elif kind.startswith("comp_mgr:"):
            side, subject = comp.MANAGER, kind.removeprefix("comp_mgr:")
        else:
            continue
        if (subject, side) not in submitted:
            out.setdefault(userid, []).append((side, subject))
    return out


@jobs.job("competency_nudge", at=nudge_at, label={"zh": "能力评估未提交提醒", "en": "Competency reminder"})
async def competency_nudge(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    cal = WorkCalendar(tenant)
    today = at.astimezone(tenant.tz).date()
    sent = 0
    for period in nudge_periods(tenant, cal, today):
        kind = f"comp_nudge:{period}"
        async with env.db.transaction() as s:
            out = env.outgoing(s, tenant, at)
            chased = set((await s.execute(select(ScheduledSend.userid).where(
                ScheduledSend.tenant == tenant.key, ScheduledSend.kind == kind))).scalars())
            away = set((await s.execute(select(Leave.userid).where(
                Leave.tenant == tenant.key, Leave.start_day <= today, Leave.end_day >= today))).scalars())
            for userid, sides in (await _open_sides(s, tenant.key, period)).items():
                person = await out.employee(userid)
                if userid in chased or userid in away or person is None or not person.active:
                    continue
                # The day's claim is also the day's budget; the kind names the period, so a
                # person reminded on an earlier day (`chased`) is never reminded again.
                if not await claim_send(s, tenant.key, userid, kind, today.isoformat(), at, budgeted=True):
                    continue
                names = [out.t("comp.nudge.self") if side == comp.SELF else
                         out.t("comp.nudge.manager", name=await out.name_of(subject)) for side, subject in sides]
                buttons = [Button(feature.StartAssessment(subject=subject, period=period, side=side).pack(),
                                  out.t("comp.btn.self") if side == comp.SELF else await out.name_of(subject),
                                  "primary" if side == comp.SELF else "default")
                           for side, subject in sides[:MAX_BUTTONS]]
                card = Card(title=out.t("comp.nudge.title", period=period),
                            body=out.t("comp.nudge.body", missing="、".join(names),
                                       minutes=feature.MINUTES_PER_COMPETENCY * comp.DEFAULT_FOCUS),
                            buttons=buttons)
                await out.issue_card(userid, feature.ROUND_CARD, card, ttl_hours=feature.CARD_TTL_HOURS)
                sent += 1
        await env.record_run(tenant.key, "competency_nudge", f"{period}:{today.isoformat()}", sent)
    return sent


@jobs.job("calibration_watch", at=watch_at, label={"zh": "对齐会跟进", "en": "Calibration follow-up"})
async def calibration_watch(env: JobEnv, tenant: TenantConfig, at: datetime) -> int:
    cal_days = WorkCalendar(tenant)
    today = at.astimezone(tenant.tz).date()
    settings = feature.CompetencySettings.of(tenant)
    sent = 0
    async with env.db.transaction() as s:
        out = env.outgoing(s, tenant, at)
        for c in await comp.open_calibrations(s, tenant.key):
            if not c.due_on or today <= date.fromisoformat(c.due_on):
                continue
            name, manager = await out.name_of(c.subject_userid), await out.name_of(c.manager_userid)
            if c.reminded_at is None:
                if await claim_send(s, tenant.key, c.manager_userid, f"calib_remind:{c.id}", c.period, at):
                    text = out.t("comp.cal.remind", name=name, period=c.period, due=c.due_on)
                    for userid in (c.manager_userid, c.subject_userid):
                        out.send(userid, text)
                    c.reminded_at = comp.utc(at)
                    s.add(c)
                    audit.record(s, tenant.key, c.manager_userid, feature.AUDIT_REMIND, c.subject_userid, at)
                    sent += 2
                continue
            told_on = cal_days.add_working_days(c.reminded_at.astimezone(tenant.tz).date(),
                                                settings.hr_after_reminder_working_days)
            if c.hr_told_at is None and today >= told_on:
                hr = [h for h in await feature.hr_people(out) if h not in (c.subject_userid, c.manager_userid)]
                for userid in hr:
                    if await claim_send(s, tenant.key, userid, f"calib_hr:{c.id}", c.period, at):
                        out.send(userid, out.t("comp.cal.hr", name=name, period=c.period, manager=manager,
                                               due=c.due_on))
                        sent += 1
                c.hr_told_at = comp.utc(at)
                s.add(c)
                audit.record(s, tenant.key, c.manager_userid, feature.AUDIT_HR, c.subject_userid, at)
    await env.record_run(tenant.key, "calibration_watch", today.isoformat(), sent)
    return sent
