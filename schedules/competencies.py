"""The competency round and the calibration watch.

- `competency_round`: when a review period opens (the `review_periods` the brief uses), each
  active person gets a self-assessment card and each reviewer one card per direct report.
  Claimed in `scheduled_send` per (person, `comp_self` / `comp_mgr:<subject>`, period): once.
- `calibration_watch`: each working morning, a calibration not held by its due day (N working
  days after it opened) sends one reminder to the person and the manager; still not held
  `hr_after_reminder_working_days` later, HR is told. Both claimed once per calibration.
"""
from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import select

from bot.core.calendar import WorkCalendar
from bot.core.config import TenantConfig
from cards.model import Button, Card
from handlers import competencies as feature
from schedules.briefs import open_periods, reviewer
from schedules.registry import JobEnv, JobRegistry
from store import audit
from store import competencies as comp
from store.models import Employee
from store.scheduled import claim_send

jobs = JobRegistry()


def round_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.work_hours_start if open_periods(tenant, cal, local.date()) else None


def watch_at(tenant: TenantConfig, cal: WorkCalendar, local: datetime) -> time | None:
    return tenant.work_hours_start if cal.is_working_day(local.date()) else None


@jobs.job("competency_round", at=round_at)
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


@jobs.job("calibration_watch", at=watch_at)
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
