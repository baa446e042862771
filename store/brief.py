"""The fact brief (多维事实简报): one person's records for one period, collected from the tables.

The records and their figures are plain data (cards/brief_records.py); the HTML
document is rendered from them by cards/brief_html.py.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import iso_week, week_days
from cards import brief_texts  # noqa: F401  (the brief's texts join the catalogue)
from cards.brief_records import (ActionRecord, AdjustmentRecord, Brief, CalibrationFigure, CompetencyRecord,
                                 EscalationRecord, FeedbackRecord, TraceLine,
                                 LeaveRecord, TaskRecord)
from cards.texts import t
from store import competencies
from store.feedback import local_day_start
from store.goal_changes import APPROVED, calibration, counts
from store.models import (Employee, Escalation, Feedback, Goal, GoalAdjustment, Leave, Task, WeeklyAction)
from store.statuses import Impact, Polarity, TaskOutcome, TaskStatus
from store.people import names_of
from store.pulse import DONE_STATUSES, action_status
from store.live import counted_weeks, live_from
from store.task_figures import delivery_dues
from store.trace import trace_lines
from bot.core.timeutil import aware

_PERIOD = re.compile(r"^\s*(\d{4})\s*[-_ ]?\s*[Qq]\s*([1-4])\s*$")
DONE_TASK = TaskStatus.DONE


# -- periods -----------------------------------------------------------------------------

def parse_period(text: str) -> str | None:
    """`2026Q4`, `2026 q4`, `2026-Q4` → '2026Q4'; None otherwise."""
    m = _PERIOD.match(unicodedata.normalize("NFKC", text or ""))
    return f"{m.group(1)}Q{m.group(2)}" if m else None


def quarter_of(d: date) -> str:
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def period_days(period: str) -> tuple[date, date]:
    """First and last day of a quarter."""
    canonical = parse_period(period)
    if canonical is None:
        raise ValueError(f"期间格式不对：{period!r}，应写成 2026Q4 这样的形式")
    year, q = int(canonical[:4]), int(canonical[-1])
    first = date(year, 3 * q - 2, 1)
    last = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    return first, last


def period_weeks(period: str, until: date | None = None) -> list[str]:
    """ISO weeks of a quarter (a week belongs where its Thursday falls), started by `until`."""
    first, last = period_days(period)
    thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    weeks = []
    while thursday <= last:
        monday = thursday - timedelta(days=3)
        if until is None or monday <= until:
            weeks.append(iso_week(thursday))
        thursday += timedelta(weeks=1)
    return weeks


# -- building -------------------------------------------------------------------------------

async def build_brief(session: AsyncSession, tenant: str, userid: str, period: str, *, now: datetime,
                      tz: ZoneInfo, locale: str = "zh") -> Brief:
    """Collect one person's records of `period` as of `now`; the labels they carry are in `locale`."""
    person = (await session.execute(select(Employee).where(
        Employee.tenant == tenant, Employee.userid == userid))).scalar_one_or_none()
    if person is None:
        raise LookupError(f"no employee {userid!r} in tenant {tenant!r}")
    period = parse_period(period) or period
    first, last = period_days(period)
    today = now.astimezone(tz).date()
    as_of = min(today, last)
    start, end = local_day_start(first, tz), local_day_start(last + timedelta(days=1), tz)
    # Weeks before the go-live date are nobody's missed weeks.
    weeks = counted_weeks(period_weeks(period, until=today), await live_from(session, tenant))

    action_rows = list((await session.execute(select(WeeklyAction).where(
        WeeklyAction.tenant == tenant, WeeklyAction.userid == userid,
        WeeklyAction.week.in_(weeks or [""])).order_by(WeeklyAction.week))).scalars())
    leave_rows = []
    if weeks:
        span_first, span_last = week_days(weeks[0])[0], week_days(weeks[-1])[-1]
        leave_rows = list((await session.execute(select(Leave).where(
            Leave.tenant == tenant, Leave.userid == userid, Leave.start_day <= span_last,
            Leave.end_day >= span_first).order_by(Leave.start_day, Leave.id))).scalars())
    filled = {a.week for a in action_rows}
    skipped = [w for w in weeks if w not in filled and any(
        l.start_day <= week_days(w)[-1] and l.end_day >= week_days(w)[0] for l in leave_rows)]
    skipped_set = set(skipped)
    leaves = [LeaveRecord(l.id or 0, l.start_day, l.end_day, l.reason) for l in leave_rows
              if any(l.start_day <= week_days(w)[-1] and l.end_day >= week_days(w)[0] for w in skipped_set)]

    fb_rows = list((await session.execute(select(Feedback).where(
        Feedback.tenant == tenant, Feedback.receiver_userid == userid, Feedback.created_at >= start,
        Feedback.created_at < end).order_by(Feedback.created_at, Feedback.id))).scalars())

    codes = sorted({a.goal_code for a in action_rows if a.goal_code})
    goal_rows = list((await session.execute(select(Goal).where(
        Goal.tenant == tenant, Goal.code.in_(codes or [""])))).scalars())
    titles = {g.code: g.title for g in goal_rows}
    # Approved changes of the served goals decided in the period; setting a goal up is no adjustment
    # (the import does not log it), and a proposal still waiting or rejected changed nothing.
    decided = func.coalesce(GoalAdjustment.decided_at, GoalAdjustment.at)
    adj_rows = list((await session.execute(select(GoalAdjustment).where(
        GoalAdjustment.tenant == tenant, GoalAdjustment.goal_code.in_(codes or [""]),
        GoalAdjustment.status == APPROVED, GoalAdjustment.field_name != "new",
        decided >= start, decided < end).order_by(decided, GoalAdjustment.id))).scalars())
    try:
        goal_rate = await calibration(session, tenant, period, tz, upto=min(now, end))
    except ValueError:  # a period that is not a quarter has no quarterly rate
        goal_rate = None

    task_rows = list((await session.execute(select(Task).where(
        Task.tenant == tenant, Task.owner_userid == userid, Task.due_at >= start, Task.due_at < end)
        .order_by(Task.due_at, Task.id))).scalars())
    owned_ids = list((await session.execute(select(Task.id).where(
        Task.tenant == tenant, Task.owner_userid == userid))).scalars())
    esc_rows = list((await session.execute(select(Escalation).where(
        Escalation.tenant == tenant, Escalation.task_id.in_(owned_ids or [-1]), Escalation.created_at >= start,
        Escalation.created_at < end).order_by(Escalation.created_at, Escalation.id))).scalars())
    task_codes = {t.id: t.code for t in task_rows}
    missing = sorted({e.task_id for e in esc_rows} - set(task_codes))
    if missing:
        task_codes.update({i: c for i, c in (await session.execute(select(Task.id, Task.code).where(
            Task.tenant == tenant, Task.id.in_(missing)))).all()})

    names = await names_of(session, tenant, {a.witness_userid for a in action_rows} | {f.giver_userid for f in fb_rows}
                         | {g.by_userid for g in adj_rows if g.by_userid}
                         | {g.decided_by for g in adj_rows if g.decided_by})

    def week_over(week: str) -> bool:
        return week_days(week)[-1] < today

    actions = [ActionRecord(a.id or 0, a.week, a.goal_code or "", a.thing, names.get(a.witness_userid, a.witness_userid),
                            action_status(a, week_over(a.week), locale), a.status in DONE_STATUSES, a.status == "confirmed")
               for a in action_rows]
    action_weeks = {a.id: a.week for a in action_rows}
    feedback = [FeedbackRecord(f.id or 0, aware(f.created_at).astimezone(tz).date(),
                               names.get(f.giver_userid, f.giver_userid), f.tag,
                               # The stored values: the document labels them in its locale.
                               str(Polarity(f.polarity)), str(Impact(f.impact)), f.event,
                               _ref(f, action_weeks, task_codes, locale)) for f in fb_rows]
    adjustments = [AdjustmentRecord(g.id or 0, g.goal_code, aware(g.decided_at or g.at).astimezone(tz).date(),
                                    names.get(g.by_userid, g.by_userid), g.field_name, g.old_value, g.new_value,
                                    g.reason, g.note, event_date=g.event_date,
                                    approver=names.get(g.decided_by, g.decided_by), counted=counts(g))
                   for g in adj_rows]
    # The same delivery due time as the task figures of the cards and the export.
    dues = await delivery_dues(session, tenant, task_rows, tz)
    tasks = [TaskRecord(t.id or 0, t.code, t.title, aware(t.due_at), aware(t.completed_at) if t.completed_at else None,
                        TaskStatus(t.status).label(locale), _outcome(t, now, dues.get(t.id or 0))) for t in task_rows]
    escalations = [EscalationRecord(e.id or 0, task_codes.get(e.task_id, str(e.task_id)), e.level, e.episode,
                                    aware(e.created_at), aware(e.resolved_at) if e.resolved_at else None)
                   for e in esc_rows]
    trace, response_rate = await trace_lines(session, tenant, userid, first, last, locale)
    return Brief(tenant=tenant, userid=userid, name=person.name, department=person.department, period=period,
                 first=first, last=last, as_of=as_of, generated_at=now, tz=tz, weeks=weeks, skipped_weeks=skipped,
                 actions=actions, leaves=leaves, goals={c: titles.get(c, "") for c in codes}, feedback=feedback,
                 adjustments=adjustments, tasks=tasks, escalations=escalations, trace=trace,
                 response_rate=response_rate,
                 competencies=await competency_records(session, tenant, userid, period, locale),
                 calibration=CalibrationFigure(len(goal_rate.key_tasks), len(goal_rate.adjusted),
                                               goal_rate.median_lead_days) if goal_rate is not None else None,
                 locale=locale)


_REF_ANCHOR = {"action": "a", "feedback": "f", "task": "t"}


async def competency_records(session: AsyncSession, tenant: str, userid: str, period: str,
                             locale: str = "zh") -> list[CompetencyRecord]:
    """The person's revealed assessment of the period (blind until both sides have submitted)."""
    lib = await competencies.library(session, tenant)
    out = []
    for r in await competencies.period_rows(session, tenant, period, {userid}):
        anchors = [f"{_REF_ANCHOR[ref[0]]}{ref[1]}" for ref in map(competencies.parse_ref, r.evidence) if ref]
        out.append(CompetencyRecord(r.code, lib[r.code].name if r.code in lib else "", r.self_level, r.manager_level,
                                    r.agreed_level, anchors, t(locale, f"brief.rec.cal.{r.state}") if r.state else ""))
    return out


def _outcome(t: Task, now: datetime, due: datetime | None = None) -> TaskOutcome:
    due = due or aware(t.due_at)
    if t.status == DONE_TASK and t.completed_at is not None:
        return TaskOutcome.ON_TIME if aware(t.completed_at) <= due else TaskOutcome.LATE
    return TaskOutcome.OVERDUE if due < now else TaskOutcome.NOT_DUE


def _ref(f: Feedback, action_weeks: dict[int | None, str], task_codes: dict[int, str], locale: str = "zh") -> str:
    if f.ref_kind == "action" and f.ref_id is not None:
        week = action_weeks.get(f.ref_id)
        return t(locale, "brief.rec.ref.action", week=week) if week else t(locale, "brief.rec.ref.action_id", id=f.ref_id)
    if f.ref_kind == "task" and f.ref_id is not None:
        return t(locale, "brief.rec.ref.task", code=task_codes.get(f.ref_id, '#' + str(f.ref_id)))
    return ""
