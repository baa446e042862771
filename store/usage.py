"""Uses of the bot by each person, and the figures made of them: the manager KPI and feature adoption.

"绩效系统的终极KPI，是管理者愿意主动打开它查看数据的频率": so each use is kept with its kind —
pull (a command the person started, the console's data tab, an export), prompted (a press on a
card the bot pushed) or action (feedback given, an escalation resolved, a calibration held) —
and its feature. The router adds one row per handled event, in the handler's own transaction
(handlers/router.py); the console adds its own. Definitions: docs/manager_kpi.md.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Index, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from bot.core.calendar import WorkCalendar, iso_week, week_back, week_days, working_hours_between
from store.models import BigId, Employee, Escalation, Task, Tenant, UTCDateTime
from store.statuses import split_userids

UsageKind = Literal["pull", "prompted", "action"]
KINDS: tuple[UsageKind, ...] = ("pull", "prompted", "action")

# Feature adoption (the article: a feature that needs three trainings should not exist).
ADOPTION_FLOOR = 0.20  # under this share of its eligible people …
MATURE_WEEKS = 6  # … this many weeks after the tenant started, it is listed as 建议关闭
WINDOW_WEEKS = 4  # "using it": at least one use in the last four weeks


class UsageEvent(SQLModel, table=True):
    __tablename__ = "usage_event"
    __table_args__ = (Index("ix_usage_event_week", "tenant", "week", "userid"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    userid: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    week: str = Field(max_length=10)  # ISO week in the tenant's time zone, as reports count
    kind: str = Field(max_length=10)  # pull | prompted | action
    feature: str = Field(max_length=40)  # the router (feature) it came in by, or console_data / export
    what: str = Field(default="", max_length=40)  # the command, card kind or button


def record_use(session: AsyncSession, tenant: str, userid: str, now: datetime, tz: ZoneInfo, *,
               kind: str, feature: str, what: str = "") -> None:
    """One INSERT at the caller's commit; no query."""
    if kind not in KINDS:
        raise ValueError(f"unknown use kind {kind!r}")
    session.add(UsageEvent(tenant=tenant, userid=userid, at=now.astimezone(timezone.utc),
                           week=iso_week(now.astimezone(tz).date()), kind=kind, feature=feature[:40], what=what[:40]))


# -- who counts ---------------------------------------------------------------------------------------
def managers_of(staff: list[Employee]) -> list[Employee]:
    """Active people with the manager role or with active reports (as the Friday pulse counts them)."""
    leads = {e.manager_userid for e in staff if e.manager_userid}
    return [e for e in staff if e.has_role("manager") or e.userid in leads]


async def _staff(session: AsyncSession, tenant: str) -> list[Employee]:
    return list((await session.execute(select(Employee).where(
        Employee.tenant == tenant, Employee.active.is_(True)).order_by(Employee.userid))).scalars())


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


# -- the manager KPI ---------------------------------------------------------------------------------
@dataclass
class ManagerUse:
    userid: str
    name: str
    department: str
    pulls: int = 0
    prompted: int = 0
    actions: int = 0
    escalations: int = 0  # escalation cards sent to them this week
    resolved: int = 0
    act_hours: list[float] = field(default_factory=list)  # working hours, sent → resolved

    @property
    def active(self) -> bool:
        return self.pulls > 0


@dataclass
class KpiFigures:
    """One scope (a department or the company) of one week."""

    department: str
    managers: list[ManagerUse] = field(default_factory=list)

    @property
    def active(self) -> int:
        return sum(m.active for m in self.managers)

    @property
    def active_rate(self) -> float | None:
        return self.active / len(self.managers) if self.managers else None

    @property
    def median_pulls(self) -> float | None:
        return median([float(m.pulls) for m in self.managers])

    @property
    def prompted(self) -> int:
        return sum(m.prompted for m in self.managers)

    @property
    def actions(self) -> int:
        return sum(m.actions for m in self.managers)

    @property
    def escalations(self) -> int:
        return sum(m.escalations for m in self.managers)

    @property
    def resolved(self) -> int:
        return sum(m.resolved for m in self.managers)

    @property
    def median_act_hours(self) -> float | None:
        return median([h for m in self.managers for h in m.act_hours])


@dataclass
class Kpi:
    week: str
    total: KpiFigures
    departments: list[KpiFigures]
    by_manager: dict[str, ManagerUse]


def _week_bounds(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    first = week_days(week)[0]
    start = datetime.combine(first, time(0), tz)
    return start, start + timedelta(days=7)


async def uses_of(session: AsyncSession, tenant: str, weeks: list[str], userid: str | None = None
                  ) -> dict[tuple[str, str, str], int]:
    """(week, userid, kind) → uses, for the given weeks (and one person)."""
    q = select(UsageEvent.week, UsageEvent.userid, UsageEvent.kind, func.count()).where(
        UsageEvent.tenant == tenant, UsageEvent.week.in_(weeks))
    if userid is not None:
        q = q.where(UsageEvent.userid == userid)
    rows = await session.execute(q.group_by(UsageEvent.week, UsageEvent.userid, UsageEvent.kind))
    return {(w, u, k): int(n) for w, u, k, n in rows.all()}


async def manager_kpi(session: AsyncSession, tenant: str, week: str, cal: WorkCalendar) -> Kpi:
    """The week's figures of every manager, per department (the manager's own) and for the company."""
    staff = await _staff(session, tenant)
    bosses = managers_of(staff)
    by_manager = {m.userid: ManagerUse(m.userid, m.name, m.department) for m in bosses}
    for (_, userid, kind), n in (await uses_of(session, tenant, [week])).items():
        m = by_manager.get(userid)
        if m is not None:
            if kind == "pull":
                m.pulls += n
            elif kind == "prompted":
                m.prompted += n
            else:
                m.actions += n
    for userid, hours in await _escalation_hours(session, tenant, week, cal):
        m = by_manager.get(userid)
        if m is None:
            continue  # a PMO who manages nobody: not a manager's figure
        m.escalations += 1
        if hours is not None:
            m.resolved += 1
            m.act_hours.append(hours)
    depts: dict[str, KpiFigures] = {}
    for m in by_manager.values():
        depts.setdefault(m.department, KpiFigures(m.department)).managers.append(m)
    total = KpiFigures("", list(by_manager.values()))
    return Kpi(week, total, [depts[k] for k in sorted(depts)], by_manager)


async def _escalation_hours(session: AsyncSession, tenant: str, week: str, cal: WorkCalendar
                            ) -> list[tuple[str, float | None]]:
    """(recipient, working hours from sent to resolved, or None while open) of the escalations
    sent in the week; one sent to two people counts for each."""
    start, end = _week_bounds(week, cal.tz)
    out: list[tuple[str, float | None]] = []
    for e in (await session.execute(select(Escalation).where(
            Escalation.tenant == tenant, Escalation.created_at >= start.astimezone(timezone.utc),
            Escalation.created_at < end.astimezone(timezone.utc)))).scalars():
        hours = None
        if e.resolved_at is not None:
            hours = working_hours_between(cal, _aware(e.created_at), _aware(e.resolved_at))
        out += [(u, hours) for u in sorted(set(e.recipients))]
    return out


async def escalations_of(session: AsyncSession, tenant: str, week: str, cal: WorkCalendar, userid: str
                         ) -> list[float | None]:
    """One person's escalations of the week: working hours to resolve each (None while open)."""
    return [h for u, h in await _escalation_hours(session, tenant, week, cal) if u == userid]


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# -- feature adoption --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    zh: str
    en: str
    eligible: str  # everyone | managers | managers_hr | hr | task_people
    since: date | None = None  # a feature shipped after the tenant started is measured from here


SHIPPED_2026_12 = date(2026, 12, 7)

# Every feature whose uses are recorded, by the name they are recorded under (the router's name).
FEATURES: dict[str, Feature] = {
    "weekly_action": Feature("周关键动作", "Weekly action", "everyone"),
    "feedback": Feature("微反馈", "Feedback", "managers"),
    "brief": Feature("简报", "Brief", "managers_hr"),
    "tasks": Feature("跨部门任务", "Cross-functional tasks", "task_people"),
    "competencies": Feature("能力评估", "Competency assessment", "everyone"),
    "goal_changes": Feature("目标调整", "Goal changes", "managers"),
    "console_data": Feature("控制台数据页", "Console data tab", "managers_hr"),
    "export": Feature("导出周报", "Weekly export", "hr"),
    "usage": Feature("我的使用", "My usage", "managers"),
    # Shipped in December 2026: a tenant that went live earlier is measured from then.
    "contributions": Feature("贡献与激励", "Contributions and rewards", "everyone", since=SHIPPED_2026_12),
    "profiles": Feature("岗位画像", "Role capability profiles", "hr", since=SHIPPED_2026_12),
    "deliverable_intake": Feature("交付物检查", "Deliverable check", "task_people", since=SHIPPED_2026_12),
}
ELIGIBLE = {
    "everyone": ("所有在职员工", "everyone on the roster"),
    "managers": ("经理（经理角色或有下属）", "managers (the role, or people with reports)"),
    "managers_hr": ("经理与 HR", "managers and HR"),
    "hr": ("HR", "HR"),
    "task_people": ("任务负责人、协作人、PMO 与经理", "task owners, collaborators, PMOs and managers"),
}


@dataclass
class Adoption:
    feature: str
    info: Feature
    eligible: int
    users: int
    weeks: int  # whole weeks since the feature's start, at the week's end
    mature: bool

    @property
    def share(self) -> float | None:
        return self.users / self.eligible if self.eligible else None

    @property
    def turn_off(self) -> bool:
        """建议关闭: measured long enough and still used by fewer than the floor."""
        return self.mature and self.share is not None and self.share < ADOPTION_FLOOR


async def _eligible(session: AsyncSession, tenant: str, staff: list[Employee]) -> dict[str, set[str]]:
    everyone = {e.userid for e in staff}
    managers = {e.userid for e in managers_of(staff)}
    hr = {e.userid for e in staff if e.has_role("hr")}
    on_tasks = {e.userid for e in staff if e.has_role("pmo")}
    for owner, collaborators in (await session.execute(select(Task.owner_userid, Task.collaborators).where(
            Task.tenant == tenant))).all():
        on_tasks.add(owner)
        on_tasks.update(split_userids(collaborators or ""))
    # Managers too: escalations of their people's tasks come to them.
    return {"everyone": everyone, "managers": managers, "managers_hr": managers | hr, "hr": hr,
            "task_people": (on_tasks & everyone) | managers}


async def tenant_start(session: AsyncSession, tenant: str) -> date | None:
    """The go-live date; without one, the day of the first recorded use."""
    row = await session.get(Tenant, tenant)
    if row is not None and row.live_from is not None:
        return row.live_from
    first = (await session.execute(select(func.min(UsageEvent.at)).where(UsageEvent.tenant == tenant))).scalar()
    tz = ZoneInfo(row.timezone) if row is not None else ZoneInfo("Asia/Shanghai")
    return _aware(first).astimezone(tz).date() if first is not None else None


async def adoption(session: AsyncSession, tenant: str, week: str) -> list[Adoption]:
    """Every feature's share of its eligible people with a use in the WINDOW_WEEKS weeks up to `week`."""
    staff = await _staff(session, tenant)
    eligible = await _eligible(session, tenant, staff)
    window = [week_back(week, n) for n in range(WINDOW_WEEKS - 1, -1, -1)]
    used: dict[str, set[str]] = {}
    for feature, userid in (await session.execute(select(UsageEvent.feature, UsageEvent.userid).where(
            UsageEvent.tenant == tenant, UsageEvent.week.in_(window)).distinct())).all():
        used.setdefault(feature, set()).add(userid)
    start = await tenant_start(session, tenant)
    end = week_days(week)[-1]
    out = []
    for name, info in FEATURES.items():
        since = max(d for d in (start, info.since) if d is not None) if (start or info.since) else None
        weeks = max(0, (end - since).days + 1) // 7 if since is not None else 0
        people = eligible[info.eligible]
        out.append(Adoption(name, info, len(people), len(used.get(name, set()) & people), weeks,
                            weeks >= MATURE_WEEKS))
    return out


# -- the export's sheet ------------------------------------------------------------------------------
KPI_HEADER = ["周", "部门", "经理人数", "主动使用经理", "周活跃率", "人均主动使用中位数", "卡片触发使用", "行动",
              "升级预警", "已解决", "处理用时中位数（工时）"]
ADOPTION_HEADER = ["功能", "适用人群", "适用人数", f"近{WINDOW_WEEKS}周使用人数", "使用率", "已计周数", "建议"]
COMPANY = "全公司"
TURN_OFF = "建议关闭"

DEFINITIONS: list[tuple[str, str]] = [
    ("管理者使用", "每次使用按种类记录：主动（经理自己发起的命令，如 简报、反馈 查看、我的使用，控制台数据页，导出）、"
                   "卡片触发（点按机器人推送的卡片）、行动（给出反馈、处理升级预警、完成校准、审批目标调整）。"),
    ("经理", "在职且有经理角色或有在职下属的人；部门为经理本人的部门。"),
    ("周活跃率", "本周至少有一次主动使用的经理 ÷ 经理人数。"),
    ("人均主动使用中位数", "每位经理本周主动使用次数（没有使用记为 0）的中位数。"),
    ("处理用时中位数", "本周发给经理的升级预警，从发出到解决（负责人更新进度或调整截止）的工作时长（工作日 09:00–18:00）的中位数；"
                       "发给几位经理的预警，每位各计一次。"),
    ("功能使用率", f"近 {WINDOW_WEEKS} 周至少用过一次该功能的适用人数 ÷ 适用人数；适用人群按功能规定（见“适用人群”列）。"),
    ("建议关闭", f"自租户上线（或功能上线）满 {MATURE_WEEKS} 周后，使用率仍低于 {ADOPTION_FLOOR:.0%} 的功能。"),
]


def _cal_for(tenant: Tenant) -> WorkCalendar:
    """The statutory calendar of the tenant's time zone (the export has no tenant configuration)."""
    class _Cfg:
        key, timezone = tenant.key, tenant.timezone
        extra_holidays: tuple[date, ...] = ()
        extra_workdays: tuple[date, ...] = ()
    return WorkCalendar(_Cfg())  # type: ignore[arg-type]


async def usage_sheet(session: AsyncSession, tenant: str, weeks: list[str]) -> tuple[list[list[Any]], list[list[Any]]]:
    """(KPI rows per week and department, company first; adoption rows as of the last week)."""
    row = await session.get(Tenant, tenant)
    if row is None:
        return [], []
    cal = _cal_for(row)
    kpi_rows: list[list[Any]] = []
    for week in weeks:
        k = await manager_kpi(session, tenant, week, cal)
        for f in [k.total, *k.departments]:
            kpi_rows.append([week, f.department or COMPANY, len(f.managers), f.active, f.active_rate, f.median_pulls,
                             f.prompted, f.actions, f.escalations, f.resolved,
                             None if f.median_act_hours is None else round(f.median_act_hours, 1)])
    adoption_rows = [[a.info.zh, ELIGIBLE[a.info.eligible][0], a.eligible, a.users, a.share, a.weeks,
                      TURN_OFF if a.turn_off else ""]
                     for a in await adoption(session, tenant, weeks[-1])] if weeks else []
    return kpi_rows, adoption_rows


async def write_usage_sheet(wb: Any, db: Any, tenant: str, weeks: list[str], *, header: Any, text_cell: Any,
                            formatted: Any) -> None:
    """The export's 管理者使用 sheet: the KPI per week and department, then feature adoption
    (the write-only workbook's helpers are passed in, so cells look like the other sheets')."""
    ws = wb.create_sheet("管理者使用")
    for i, width in enumerate([10, 30, 9, 12, 9, 18, 12, 7, 9, 7, 20]):
        ws.column_dimensions[chr(ord("A") + i)].width = width
    async with db.session() as s:
        kpi_rows, adoption_rows = await usage_sheet(s, tenant, weeks)
    header(ws, KPI_HEADER, numeric_from=2)
    for row in kpi_rows:
        ws.append([text_cell(ws, v) if isinstance(v, str) else formatted(ws, v, "0%") if i == 4
                   else v for i, v in enumerate(row)])
    ws.append([])
    header(ws, ADOPTION_HEADER, numeric_from=2)
    for row in adoption_rows:
        ws.append([text_cell(ws, v) if isinstance(v, str) else formatted(ws, v, "0%") if i == 4
                   else v for i, v in enumerate(row)])
