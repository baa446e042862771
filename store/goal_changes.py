"""Goal changes (目标调整): proposals, decisions, effective-dated versions and the calibration rate.

A change is one GoalAdjustment row: proposed in chat (status `proposed`), then approved or
rejected; an import writes its changes already approved by the importer. Only an approved
change touches the goal: its current row (Goal) and its versions (GoalVersion), which are
dated so that a closed week keeps the goal as it stood then.

The calibration rate (目标动态校准率) of a quarter: key tasks are goals of level 2 and 3
active at any time in the quarter; a key task is adjusted when at least one approved change
to it has the cause 市场, 技术 or 政策 and is more than a rename.
"""
from __future__ import annotations

import re
import statistics
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.timeutil import aware
from store.models import ActionEdit, Employee, Goal, GoalAdjustment, GoalVersion, WeeklyAction, holds_role
from store.people import names_of
from store.statuses import GoalStatus, Role


CAUSES = ("市场", "技术", "政策", "其他")
COUNTED_CAUSES = ("市场", "技术", "政策")
HEALTHY_RATE = 0.15  # the article's healthy line
TOP_RATE = 0.227  # the article's top-20 % companies
KEY_TASK_LEVELS = (2, 3)
# Fields whose change is a calibration when its cause counts; a rename is not.
NOT_COUNTED_FIELDS = ("title",)
PROPOSED, APPROVED, REJECTED = "proposed", "approved", "rejected"

# What people type for each cause: the word itself, what it is about, its English name, and
# the slips a Chinese input method makes (同音字).
_CAUSE_WORDS: dict[str, tuple[str, ...]] = {
    "市场": ("市场", "市埸", "市常", "shichang", "market", "客户", "需求", "竞争", "竞品", "价格"),
    "技术": ("技术", "技朮", "技木", "jishu", "tech", "technology", "技改", "工艺"),
    "政策": ("政策", "正策", "政册", "zhengce", "policy", "法规", "监管", "集采", "医保", "标准", "regulation"),
    "其他": ("其他", "其它", "其他原因", "别的", "qita", "other", "others"),
}
_PERIOD = re.compile(r"^(\d{4})Q([1-4])$")


def match_cause(text: str) -> str | None:
    """'政策' '政策变化' 'Policy' '正策' '集采' → '政策'; None when it names none (or several) of the causes."""
    t = unicodedata.normalize("NFKC", text or "").strip().casefold()
    t = re.sub(r"[\s:：,，。.!！]+", "", t)
    if not t:
        return None
    for cause, words in _CAUSE_WORDS.items():
        if t in words:
            return cause
    hits = {cause for cause, words in _CAUSE_WORDS.items() if any(t.startswith(w) for w in words)}
    return hits.pop() if len(hits) == 1 else None


# -- quarters -------------------------------------------------------------------------------------
def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarter_days(quarter: str) -> tuple[date, date]:
    """First and last day of '2026Q4'."""
    m = _PERIOD.match(quarter.strip().upper())
    if not m:
        raise ValueError(f"not a quarter: {quarter!r}")
    year, q = int(m.group(1)), int(m.group(2))
    first = date(year, 3 * q - 2, 1)
    nxt = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return first, nxt - timedelta(days=1)


def fmt_weight(w: float) -> str:
    return str(int(w)) if float(w).is_integer() else f"{w:g}"


def in_department(dept: str, scope: str | None) -> bool:
    return scope is None or dept == scope or dept.startswith(scope.rstrip("/") + "/")


# -- versions -------------------------------------------------------------------------------------
def _version_of(g: Goal, valid_from: date | None, change_id: int | None) -> GoalVersion:
    return GoalVersion(tenant=g.tenant, goal_code=g.code, valid_from=valid_from, title=g.title,
                       parent_code=g.parent_code, department=g.department, weight=g.weight, due=g.due,
                       level=g.level, status=g.status, change_id=change_id)


async def record_version(session: AsyncSession, g: Goal, effective: date | None, change_id: int | None = None) -> None:
    """The goal as it now stands holds from `effective`; the version before it ends there.

    A second change on the same day replaces that day's version, so a day has one version."""
    current = (await session.execute(select(GoalVersion).where(
        GoalVersion.tenant == g.tenant, GoalVersion.goal_code == g.code, GoalVersion.valid_to.is_(None))
        .order_by(GoalVersion.id.desc()))).scalars().first()
    if current is not None and current.valid_from == effective:
        await session.delete(current)
        await session.flush()
    elif current is not None:
        current.valid_to = effective
        session.add(current)
    session.add(_version_of(g, effective, change_id))


async def versions(session: AsyncSession, tenant: str, codes: Iterable[str] | None = None) -> dict[str, list[GoalVersion]]:
    stmt = select(GoalVersion).where(GoalVersion.tenant == tenant)
    if codes is not None:
        stmt = stmt.where(GoalVersion.goal_code.in_(list(codes) or [""]))
    out: dict[str, list[GoalVersion]] = {}
    for v in (await session.execute(stmt.order_by(GoalVersion.goal_code, GoalVersion.id))).scalars():
        out.setdefault(v.goal_code, []).append(v)
    for vs in out.values():
        vs.sort(key=lambda v: v.valid_from or date.min)
    return out


def version_on(vs: list[GoalVersion], day: date) -> GoalVersion | None:
    """The version that held on `day` (a closed week's figures read the goal this way)."""
    for v in vs:
        if (v.valid_from is None or v.valid_from <= day) and (v.valid_to is None or day < v.valid_to):
            return v
    return None


def _overlap(v: GoalVersion, first: date, last: date) -> int:
    start = max(v.valid_from or first, first)
    end = min((v.valid_to - timedelta(days=1)) if v.valid_to else last, last)
    return max((end - start).days + 1, 0)


def time_weighted_weight(vs: list[GoalVersion], first: date, last: date) -> float | None:
    """The weight averaged over the days of [first, last] the goal was active; None when it never was."""
    days = [(v.weight, _overlap(v, first, last)) for v in vs if v.status == GoalStatus.ACTIVE]
    total = sum(n for _, n in days)
    return sum(w * n for w, n in days) / total if total else None


# -- proposing and deciding -----------------------------------------------------------------------
def propose(session: AsyncSession, tenant: str, *, goal_code: str, field_name: str, old: str, new: str,
            cause: str, note: str, event_date: date, by: str, approver: str, now: datetime,
            detail: dict[str, Any] | None = None) -> GoalAdjustment:
    if cause not in CAUSES:
        raise ValueError(f"cause {cause!r} is not one of {CAUSES}")
    row = GoalAdjustment(tenant=tenant, goal_code=goal_code, by_userid=by, at=now, field_name=field_name,
                         old_value=old, new_value=new, reason=cause, note=note, event_date=event_date,
                         status=PROPOSED, approver_userid=approver, detail=detail or {})
    session.add(row)
    return row


async def pending(session: AsyncSession, tenant: str, code: str | None = None) -> list[GoalAdjustment]:
    stmt = select(GoalAdjustment).where(GoalAdjustment.tenant == tenant, GoalAdjustment.status == PROPOSED)
    if code is not None:
        stmt = stmt.where(GoalAdjustment.goal_code == code)
    return list((await session.execute(stmt.order_by(GoalAdjustment.id))).scalars())


async def goal(session: AsyncSession, tenant: str, code: str) -> Goal | None:
    return (await session.execute(select(Goal).where(Goal.tenant == tenant, Goal.code == code))).scalar_one_or_none()


async def apply_change(session: AsyncSession, change: GoalAdjustment, *, by: str, now: datetime,
                       effective: date) -> Goal:
    """Approve `change`: the goal takes the new value from `effective` on."""
    g = await goal(session, change.tenant, change.goal_code)
    name, new = change.field_name, change.new_value
    if name == "new":
        d = change.detail
        parent = await goal(session, change.tenant, d.get("parent_code") or "") if d.get("parent_code") else None
        if g is None:
            g = Goal(tenant=change.tenant, code=change.goal_code, title=new)
        g.title, g.parent_code, g.department = new, d.get("parent_code"), str(d.get("department") or "")
        g.weight, g.period = float(d.get("weight") or 0), str(d.get("period") or (parent.period if parent else ""))
        g.level, g.status = (parent.level + 1) if parent else 1, GoalStatus.ACTIVE
    elif g is None:
        raise ValueError(f"goal {change.goal_code} is gone")
    elif name == "weight":
        g.weight = float(new)
    elif name == "title":
        g.title = new
    elif name == "due":
        g.due = date.fromisoformat(new) if new else None
    elif name == "parent_code":
        parent = await goal(session, change.tenant, new)
        g.parent_code, g.level = new, (parent.level + 1) if parent else g.level
    elif name == "cancelled":
        g.status = GoalStatus.CANCELLED
    session.add(g)
    await session.flush()
    change.status, change.decided_by, change.decided_at, change.effective_from = APPROVED, by, now, effective
    session.add(change)
    await record_version(session, g, effective, change.id)
    return g


def reject_change(session: AsyncSession, change: GoalAdjustment, *, by: str, now: datetime, reason: str) -> None:
    change.status, change.decided_by, change.decided_at, change.decision_note = REJECTED, by, now, reason
    session.add(change)


async def sibling_weights(session: AsyncSession, tenant: str, parent: str | None, *, code: str,
                          weight: float) -> float:
    """What the goals under `parent` would weigh together with `code` at `weight`, pending changes included."""
    if not parent:
        return weight
    rows = {g.code: g.weight for g in (await session.execute(select(Goal).where(
        Goal.tenant == tenant, Goal.parent_code == parent, Goal.status == GoalStatus.ACTIVE))).scalars()}
    for p in await pending(session, tenant):
        if p.field_name == "weight" and p.goal_code in rows:
            rows[p.goal_code] = float(p.new_value)
        elif p.field_name == "new" and p.detail.get("parent_code") == parent:
            rows[p.goal_code] = float(p.detail.get("weight") or 0)
        elif p.field_name == "cancelled":
            rows.pop(p.goal_code, None)
    rows[code] = weight
    return sum(rows.values())


async def department_managers(session: AsyncSession, tenant: str, department: str) -> list[Employee]:
    """Managers whose department is the goal's or one above it (研发中心's head manages 注册部's goals)."""
    people = (await session.execute(select(Employee).where(
        Employee.tenant == tenant, Employee.active.is_(True), holds_role(Role.MANAGER)))).scalars()
    return [e for e in people if e.department and department
            and in_department(department, e.department)]


async def linked_people(session: AsyncSession, tenant: str, code: str, week: str) -> list[str]:
    """Whoever's weekly action of `week` links to the goal."""
    return sorted(set((await session.execute(select(WeeklyAction.userid).where(
        WeeklyAction.tenant == tenant, WeeklyAction.week == week, WeeklyAction.goal_code == code))).scalars()))


# -- the calibration rate -------------------------------------------------------------------------
@dataclass
class Calibration:
    scope: str  # a department path, or '' for the company
    quarter: str
    key_tasks: list[str] = field(default_factory=list)
    adjusted: list[str] = field(default_factory=list)
    lead_days: list[int] = field(default_factory=list)  # event → approval, per counted change
    rescopes: int = 0  # 周动作调整: weekly actions edited before their witness confirmed

    @property
    def rate(self) -> float | None:
        return len(self.adjusted) / len(self.key_tasks) if self.key_tasks else None

    @property
    def median_lead_days(self) -> float | None:
        return statistics.median(self.lead_days) if self.lead_days else None

    @property
    def healthy(self) -> bool:
        return self.rate is not None and self.rate >= HEALTHY_RATE

    @property
    def top(self) -> bool:
        return self.rate is not None and self.rate >= TOP_RATE


def _local_day(dt: datetime, tz: ZoneInfo) -> date:
    return aware(dt).astimezone(tz).date()


async def calibration(session: AsyncSession, tenant: str, quarter: str, tz: ZoneInfo, *,
                      department: str | None = None, upto: datetime | None = None) -> Calibration:
    """The quarter's rate for the company (department None) or one department and those under it.

    `upto`: count only changes decided before it (a pulse of an earlier week reads its own figures)."""
    first, last = quarter_days(quarter)
    goals = [g for g in (await session.execute(select(Goal).where(
        Goal.tenant == tenant, Goal.level.in_(KEY_TASK_LEVELS)))).scalars()
        if in_department(g.department, department)]
    vs = await versions(session, tenant, [g.code for g in goals])
    out = Calibration(department or "", quarter)
    for g in sorted(goals, key=lambda g: g.code):
        gv = vs.get(g.code) or []
        if upto is not None:
            gv = [v for v in gv if v.valid_from is None or v.valid_from < _local_day(upto, tz)]
        active = any(v.status == GoalStatus.ACTIVE and _overlap(v, first, last) for v in gv)
        if active and (not g.period or g.period == quarter):
            out.key_tasks.append(g.code)
    start = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    if upto is not None:
        end = min(end, upto)
    changes = (await session.execute(select(GoalAdjustment).where(
        GoalAdjustment.tenant == tenant, GoalAdjustment.status == APPROVED,
        GoalAdjustment.goal_code.in_(out.key_tasks or [""]), GoalAdjustment.reason.in_(COUNTED_CAUSES),
        GoalAdjustment.field_name.not_in(NOT_COUNTED_FIELDS),
        GoalAdjustment.decided_at >= start, GoalAdjustment.decided_at < end)
        .order_by(GoalAdjustment.id))).scalars()
    adjusted: set[str] = set()
    for c in changes:
        adjusted.add(c.goal_code)
        if c.event_date is not None and c.decided_at is not None:
            out.lead_days.append((_local_day(c.decided_at, tz) - c.event_date).days)
    out.adjusted = sorted(adjusted)
    out.rescopes = await _rescopes(session, tenant, start, end, department)
    return out


async def _rescopes(session: AsyncSession, tenant: str, start: datetime, end: datetime,
                    department: str | None) -> int:
    """Weekly actions re-scoped in the window: edited before their witness confirmed them."""
    a = WeeklyAction
    rows = (await session.execute(
        select(ActionEdit.action_id, Employee.department)
        .join(a, and_(a.tenant == ActionEdit.tenant, a.id == ActionEdit.action_id))
        .join(Employee, and_(Employee.tenant == a.tenant, Employee.userid == a.userid))
        .where(ActionEdit.tenant == tenant, ActionEdit.at >= start, ActionEdit.at < end,
               or_(a.confirmed_at.is_(None), ActionEdit.at < a.confirmed_at)))).all()
    return len({action for action, dept in rows if in_department(dept or "", department)})


def common_department(paths: Iterable[str]) -> str | None:
    """The deepest department holding all of `paths` (a manager's scope); None when they share none."""
    split = [p.split("/") for p in paths if p]
    if not split:
        return None
    common: list[str] = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common) or None


async def calibration_by_department(session: AsyncSession, tenant: str, quarter: str, tz: ZoneInfo,
                                    upto: datetime | None = None) -> list[Calibration]:
    """The company first, then every department that holds a key task of the quarter."""
    company = await calibration(session, tenant, quarter, tz, upto=upto)
    depts = sorted({g.department for g in (await session.execute(select(Goal).where(
        Goal.tenant == tenant, Goal.code.in_(company.key_tasks or [""])))).scalars()})
    return [company] + [await calibration(session, tenant, quarter, tz, department=d, upto=upto) for d in depts]


async def changes_between(session: AsyncSession, tenant: str, start: datetime, end: datetime,
                          codes: Iterable[str] | None = None) -> list[GoalAdjustment]:
    """Every change proposed or decided in [start, end), oldest first (the export's 目标校准 sheet)."""
    stmt = select(GoalAdjustment).where(GoalAdjustment.tenant == tenant, or_(
        and_(GoalAdjustment.at >= start, GoalAdjustment.at < end),
        and_(GoalAdjustment.decided_at >= start, GoalAdjustment.decided_at < end)))
    if codes is not None:
        stmt = stmt.where(GoalAdjustment.goal_code.in_(list(codes) or [""]))
    return list((await session.execute(stmt.order_by(GoalAdjustment.at, GoalAdjustment.id))).scalars())


# -- the export's 目标校准 sheet ---------------------------------------------------------------------
FIELD_LABELS = {"weight": "权重", "title": "标题", "due": "截止", "parent_code": "上级", "department": "部门",
                "period": "周期", "new": "新增", "cancelled": "取消", "status": "恢复"}
STATUS_LABELS = {PROPOSED: "待审批", APPROVED: "已批准", REJECTED: "已驳回"}
CHANGE_HEADER = ["目标", "目标名称", "调整项", "原值", "新值", "原因", "事件日期", "说明", "提议人", "提议时间",
                 "审批人", "状态", "审批时间", "生效日期", "驳回原因", "计入校准率"]
RATE_HEADER = ["季度", "部门", "关键任务数", "已校准数", "目标校准率", "健康线 15%", "前20% 22.7%",
               "事件→批准中位天数", "周动作调整"]
WEIGHT_HEADER = ["季度", "目标", "目标名称", "时间加权权重", "期末权重"]


@dataclass
class CalibrationSheet:
    changes: list[list[Any]]
    rates: list[list[Any]]
    weights: list[list[Any]]


def counts(c: GoalAdjustment) -> bool:
    return c.status == APPROVED and c.reason in COUNTED_CAUSES and c.field_name not in NOT_COUNTED_FIELDS


async def calibration_sheet(session: AsyncSession, tenant: str, quarters: list[str], tz: ZoneInfo,
                            upto: datetime) -> CalibrationSheet:
    """Every change of the quarters known at `upto` (who, when, old → new, cause, event, approver,
    effective day), the rate per department, and the time-weighted weights beside the end-of-quarter ones."""
    names = await names_of(session, tenant)
    titles = {g.code: g.title for g in (await session.execute(select(Goal).where(Goal.tenant == tenant))).scalars()}
    out = CalibrationSheet([], [], [])
    for quarter in quarters:
        first, last = quarter_days(quarter)
        start = datetime.combine(first, datetime.min.time(), tz)
        end = min(datetime.combine(last + timedelta(days=1), datetime.min.time(), tz), upto)
        if end <= start:
            continue
        cal = {c.scope: c for c in await calibration_by_department(session, tenant, quarter, tz, upto=end)}
        company = cal.pop("")
        for scope, c in [(COMPANY_LABEL, company), *sorted(cal.items())]:
            median = c.median_lead_days
            out.rates.append([quarter, scope, len(c.key_tasks), len(c.adjusted), c.rate,
                              "达到" if c.healthy else "未达到", "达到" if c.top else "未达到",
                              median, c.rescopes])
        for c in await changes_between(session, tenant, start, end):
            decided = c.decided_at if c.decided_at is not None and aware(c.decided_at) < end else None
            status = c.status if decided is not None or c.status == PROPOSED else PROPOSED
            out.changes.append([
                c.goal_code, titles.get(c.goal_code, c.new_value if c.field_name == "new" else ""),
                FIELD_LABELS.get(c.field_name, c.field_name), c.old_value, c.new_value, c.reason, c.event_date,
                c.note, names.get(c.by_userid, c.by_userid), aware(c.at).astimezone(tz).replace(tzinfo=None),
                names.get(c.decided_by or c.approver_userid, c.decided_by or c.approver_userid),
                STATUS_LABELS.get(status, status),
                aware(decided).astimezone(tz).replace(tzinfo=None) if decided else None,
                c.effective_from if decided else None, c.decision_note if decided else "",
                "是" if decided and counts(c) else "否"])
        vs = await versions(session, tenant, company.key_tasks)
        upto_day = min(last, (end - timedelta(seconds=1)).astimezone(tz).date())
        for code in company.key_tasks:
            gv = [v for v in vs.get(code, []) if v.valid_from is None or v.valid_from <= upto_day]
            tw = time_weighted_weight(gv, first, upto_day)
            now_v = version_on(gv, upto_day)
            out.weights.append([quarter, code, titles.get(code, ""), None if tw is None else round(tw, 2),
                                now_v.weight if now_v else None])
    return out


COMPANY_LABEL = "全公司"
