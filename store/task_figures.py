"""Task figures per project, department and person: on-time delivery, open escalations, resolution time.

A task is judged against its delivery due time: the due time as it stands,
unless the task was escalated, in which case the due time in force at its first
escalation — moving the due date after an escalation does not turn a late task
into an on-time one. A task counts in a period when that time falls in it and
its outcome is known: delivered (on time if completed at or before it) or past
it without delivery (late). Tasks not yet due and not delivered are left out.
Departments and people are the owner's.

An escalation episode (one stale spell of one task, whatever levels it
climbed) counts in the period of its first escalation; it is resolved when a
status update or a new due time ended it, and its resolution time runs from
its first escalation to that moment.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import week_days
from store.db import Database
from store.models import Employee, Escalation, Project, Task, TaskUpdate, Tenant
from store.statuses import TaskStatus
from bot.core.timeutil import aware

COMPANY = "全公司"
UNKNOWN_DEPARTMENT = "（未知部门）"
DONE = TaskStatus.DONE

HEADER = ["范围", "编号", "名称", "到期任务", "按时交付", "逾期交付", "逾期未交付", "按时交付率",
          "预警次数", "已解除", "未解除预警", "解除用时中位数（时:分）"]
SCOPE_LABELS = {"project": "项目", "department": "部门", "person": "个人", "total": "合计"}

DEFINITIONS: list[tuple[str, str]] = [
    ("到期任务", "考核截止时间落在统计期内、且已交付或已过该时间的任务数；未到期且未交付的任务不计。"),
    ("考核截止时间", "任务的截止时间；任务被阻塞预警过的，取首次预警时有效的截止时间（预警后再调整截止时间不改变按时与否）。"),
    ("按时交付", "完成时间不晚于考核截止时间的任务数。"),
    ("逾期交付", "完成时间晚于截止时间的任务数。"),
    ("逾期未交付", "已过截止时间仍未完成的任务数。"),
    ("按时交付率", "按时交付 ÷ 到期任务；分母为 0 时留空。"),
    ("预警次数", "首次阻塞预警发生在统计期内的停滞次数（同一次停滞逐级升级只算一次）。"),
    ("已解除", "上述预警中，已因进度更新或截止时间调整而解除的次数。"),
    ("未解除预警", "统计期末（期末在将来时为当前时刻）仍未解除的预警次数，含更早开始的。"),
    ("解除用时中位数（时:分）", "已解除预警从首次预警到解除的用时的中位数，以小时:分钟显示。"),
    ("部门 / 个人", "按任务负责人当前所在部门和负责人本人统计。"),
]


@dataclass
class TaskFigures:
    key: str  # project code, department path, userid, or 全公司
    label: str
    due: int = 0
    on_time: int = 0
    late_done: int = 0
    overdue_open: int = 0
    escalations: int = 0
    resolved: int = 0
    open_escalations: int = 0
    resolution_minutes: list[float] = field(default_factory=list)

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due if self.due else None

    @property
    def median_resolution_minutes(self) -> float | None:
        return statistics.median(self.resolution_minutes) if self.resolution_minutes else None

    def values(self) -> list[Any]:
        """The numbers in HEADER order (after scope, key and label)."""
        return [self.due, self.on_time, self.late_done, self.overdue_open, self.on_time_rate,
                self.escalations, self.resolved, self.open_escalations, self.median_resolution_minutes]


@dataclass
class TaskFigureSet:
    start: datetime
    end: datetime
    projects: list[TaskFigures]
    departments: list[TaskFigures]
    people: list[TaskFigures]
    total: TaskFigures

    def rows(self) -> list[list[Any]]:
        """One row per project, department, person and the total, in HEADER order."""
        out: list[list[Any]] = []
        for scope, figs in (("project", self.projects), ("department", self.departments), ("person", self.people)):
            out += [[SCOPE_LABELS[scope], f.key, f.label, *f.values()] for f in figs]
        out.append([SCOPE_LABELS["total"], COMPANY, COMPANY, *self.total.values()])
        return out


_DUE_FORMAT = "%Y-%m-%d %H:%M"  # how a due change is logged (tenant-local), see handlers.tasks.updates.change_due


def delivery_due(current_due: datetime, first_escalated: datetime | None,
                 due_changes: list[tuple[datetime, str]], tz: ZoneInfo) -> datetime:
    """The due time a delivery is judged against (see the module docstring).

    `due_changes` are (when, the due time before the change as logged) of one task.
    """
    current_due = aware(current_due)
    if first_escalated is None:
        return current_due
    later = sorted((aware(at), old) for at, old in due_changes if aware(at) >= aware(first_escalated))
    if not later:
        return current_due
    try:
        return datetime.strptime(later[0][1], _DUE_FORMAT).replace(tzinfo=tz)
    except ValueError:
        return current_due  # an unreadable log line: judge by the due time as it stands


async def delivery_dues(session: AsyncSession, tenant: str, tasks: list[Task], tz: ZoneInfo) -> dict[int, datetime]:
    """task id → delivery due time, for `tasks` (two queries whatever their number)."""
    first: dict[int, datetime] = {}
    for task_id, created in (await session.execute(select(Escalation.task_id, Escalation.created_at).where(
            Escalation.tenant == tenant))).all():
        if task_id not in first or aware(created) < first[task_id]:
            first[task_id] = aware(created)
    changes: dict[int, list[tuple[datetime, str]]] = {}
    if first:
        for task_id, at, old in (await session.execute(select(TaskUpdate.task_id, TaskUpdate.at, TaskUpdate.old_value)
                                                       .where(TaskUpdate.tenant == tenant, TaskUpdate.kind == "due"))).all():
            if task_id in first:
                changes.setdefault(task_id, []).append((at, old))
    return {t.id: delivery_due(t.due_at, first.get(t.id), changes.get(t.id, []), tz)
            for t in tasks if t.id is not None}


def weeks_window(weeks: list[str], tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[Monday 00:00 of the first week, Monday 00:00 after the last) in the tenant's time zone."""
    first = min(week_days(w)[0] for w in weeks)
    last = max(week_days(w)[-1] for w in weeks)
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start, end


async def task_figures(session: AsyncSession, tenant: str, *, start: datetime, end: datetime, now: datetime,
                       people: set[str] | None = None) -> TaskFigureSet:
    """Figures for tasks due in [start, end) and escalations first raised then; `people` limits the owners."""
    start, end, now = aware(start), aware(end), aware(now)
    as_of = min(now, end)
    # Columns, not ORM objects: at 100,000 people this runs once per Friday pulse.
    staff = {u: (d, n) for u, d, n in (await session.execute(
        select(Employee.userid, Employee.department, Employee.name).where(Employee.tenant == tenant))).all()}
    projects = {p.id: p for p in (await session.execute(select(Project).where(Project.tenant == tenant))).scalars()}
    tasks = {t.id: t for t in (await session.execute(select(Task).where(Task.tenant == tenant))).scalars()
             if people is None or t.owner_userid in people}
    tenant_row = await session.get(Tenant, tenant)
    tz = ZoneInfo(tenant_row.timezone if tenant_row is not None else "Asia/Shanghai")
    dues = await delivery_dues(session, tenant, list(tasks.values()), tz)

    by_project: dict[str, TaskFigures] = {}
    by_dept: dict[str, TaskFigures] = {}
    by_person: dict[str, TaskFigures] = {}
    total = TaskFigures(COMPANY, COMPANY)

    def scopes(task: Task) -> list[TaskFigures]:
        project = projects.get(task.project_id)
        pkey = project.code if project else str(task.project_id)
        owner = staff.get(task.owner_userid)
        dept = (owner[0] if owner else "") or UNKNOWN_DEPARTMENT
        return [
            by_project.setdefault(pkey, TaskFigures(pkey, project.name if project else pkey)),
            by_dept.setdefault(dept, TaskFigures(dept, dept.split("/")[-1])),
            by_person.setdefault(task.owner_userid, TaskFigures(task.owner_userid,
                                                                owner[1] if owner else task.owner_userid)),
            total,
        ]

    for task in tasks.values():
        due = dues.get(task.id, aware(task.due_at))  # type: ignore[arg-type]
        if not start <= due < end:
            continue
        if task.status == DONE and task.completed_at is not None:
            on_time = aware(task.completed_at) <= due
            for f in scopes(task):
                f.due += 1
                f.on_time += on_time
                f.late_done += not on_time
        elif due < now:
            for f in scopes(task):
                f.due += 1
                f.overdue_open += 1

    # One episode = the escalation rows of one (task, episode): opened by its first row,
    # over when every level of it is resolved.
    steps: dict[tuple[int, int], list[Escalation]] = {}
    for e in (await session.execute(select(Escalation).where(Escalation.tenant == tenant))).scalars():
        if e.task_id in tasks:
            steps.setdefault((e.task_id, e.episode), []).append(e)
    episodes: dict[tuple[int, int], tuple[datetime, datetime | None]] = {}
    for key, levels in steps.items():
        first = min(aware(e.created_at) for e in levels)
        ends = [e.resolved_at for e in levels]
        episodes[key] = (first, None if any(r is None for r in ends) else max(aware(r) for r in ends if r))
    for (task_id, _), (first, resolved) in sorted(episodes.items()):
        in_period = start <= first < end
        still_open = first < as_of and (resolved is None or resolved > as_of)
        if not (in_period or still_open):
            continue
        for f in scopes(tasks[task_id]):
            if in_period:
                f.escalations += 1
                if resolved is not None:
                    f.resolved += 1
                    f.resolution_minutes.append((resolved - first).total_seconds() / 60)
            f.open_escalations += still_open

    return TaskFigureSet(start=start, end=end,
                         projects=[by_project[k] for k in sorted(by_project)],
                         departments=[by_dept[k] for k in sorted(by_dept)],
                         people=[by_person[k] for k in sorted(by_person)],
                         total=total)


def combine(figures: "list[TaskFigures]", key: str = COMPANY, label: str = COMPANY) -> TaskFigures:
    """The sum of several scopes' figures (e.g. the people of one manager's line)."""
    out = TaskFigures(key, label)
    for f in figures:
        out.due += f.due
        out.on_time += f.on_time
        out.late_done += f.late_done
        out.overdue_open += f.overdue_open
        out.escalations += f.escalations
        out.resolved += f.resolved
        out.open_escalations += f.open_escalations
        out.resolution_minutes += f.resolution_minutes
    return out


async def task_figures_for_weeks(db: Database, tenant_key: str, weeks: list[str], *, now: datetime,
                                 people: set[str] | None = None) -> TaskFigureSet:
    """The figures for a range of ISO weeks, e.g. what `export weekly --week … --to …` covers."""
    async with db.session() as s:
        tenant = await s.get(Tenant, tenant_key)
        if tenant is None:
            raise ValueError(f"租户 {tenant_key!r} 不存在")
        start, end = weeks_window(weeks, ZoneInfo(tenant.timezone))
        return await task_figures(s, tenant_key, start=start, end=end, now=now, people=people)
