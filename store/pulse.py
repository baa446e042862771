"""The weekly figures (组织脉搏): fill, completion, goal linkage and witness rates.

Everything is computed with a handful of aggregate queries whatever the head
count; a restricted scope (a manager's reporting line) is passed to SQL in
chunks, so the per-query parameter count stays bounded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from sqlalchemy import and_, case, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.calendar import normalize_week, week_back, week_days, week_range
from cards.texts import t
from store.live import counted_weeks
from store.models import Employee, Leave, Tenant, WeeklyAction

DONE_STATUSES = ("done", "confirmed")
DIVERSITY_WEEKS = 8
TOTAL_LABEL = "全公司"
SCOPE_TOTAL_LABEL = "合计"
# Both PostgreSQL (asyncpg: 32767) and SQLite (32766) cap bound parameters per statement.
_CHUNK = 5000

# Each figure's definition, worded exactly as computed below; the export prints this list.
DEFINITIONS: list[tuple[str, str]] = [
    ("人数", "统计时在职（active）的员工人数，按员工当前所在部门（完整部门路径）归类。"),
    ("请假/跳过", "本周没有关键动作、且有请假或“本周跳过”记录与本周（周一至周日）有重叠的人数；这些人不计入填写率的分母。"),
    ("已填写", "本周填写了关键动作的在职人数（每人每周最多一条）。"),
    ("关键动作数", "本周在职员工填写的关键动作条数。"),
    ("已完成", "状态为“已完成”或“已确认”的关键动作条数。"),
    ("关联目标", "填写了目标编号的关键动作条数。"),
    ("见证确认", "见证人已确认完成的关键动作条数。"),
    ("填写率", "已填写 ÷（人数 − 请假/跳过）；分母为 0 时留空。"),
    ("完成率", "已完成 ÷ 关键动作数；分母为 0 时留空。"),
    ("目标关联度", "关联目标 ÷ 关键动作数；分母为 0 时留空。"),
    ("见证确认率", "见证确认 ÷ 已完成（含已确认）；分母为 0 时留空。"),
    ("见证次数", "本周某人作为见证人确认他人关键动作的次数。"),
    ("见证多样性", f"截至本周的最近 {DIVERSITY_WEEKS} 周内，某人的关键动作中不同见证人的个数 ÷ 其关键动作条数。"),
    ("互相见证", f"最近 {DIVERSITY_WEEKS} 周内，两人各自至少 2 条关键动作，且见证人始终只有对方。"),
    ("状态：已确认", "见证人已确认完成。"),
    ("状态：已完成", "本人已标记完成，本周尚未结束，等待见证人确认。"),
    ("状态：待见证", "本人已标记完成，但到周末见证人仍未确认。"),
    ("状态：进行中", "本周尚未结束，还未标记完成。"),
    ("状态：未完成", "本人表示未完成，或到周末仍未标记完成。"),
]


@dataclass
class DeptFigures:
    dept: str
    population: int = 0
    skipped: int = 0
    filled: int = 0
    actions: int = 0
    done: int = 0
    linked: int = 0
    confirmed: int = 0

    @property
    def fill_rate(self) -> float | None:
        return _rate(self.filled, self.population - self.skipped)

    @property
    def completion_rate(self) -> float | None:
        return _rate(self.done, self.actions)

    @property
    def linkage_rate(self) -> float | None:
        return _rate(self.linked, self.actions)

    @property
    def witness_rate(self) -> float | None:
        return _rate(self.confirmed, self.done)

    def add(self, other: "DeptFigures") -> None:
        for name in ("population", "skipped", "filled", "actions", "done", "linked", "confirmed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _rate(num: int, den: int) -> float | None:
    return num / den if den > 0 else None


@dataclass
class Pulse:
    week: str
    departments: list[DeptFigures]
    total: DeptFigures
    missing: list[str] = field(default_factory=list)
    # every active person in scope → confirmations they gave as a witness this week
    witness_counts: dict[str, int] = field(default_factory=dict)
    # people with actions in the last DIVERSITY_WEEKS weeks → distinct witnesses / actions
    witness_diversity: dict[str, float] = field(default_factory=dict)
    mutual_pairs: list[tuple[str, str]] = field(default_factory=list)


def action_status(action: Any, week_over: bool, locale: str = "zh") -> str:
    """The status people see: 已确认, 已完成, 待见证, 进行中 or 未完成 (in the tenant's locale)."""
    status = str(action.status)
    shown = {"confirmed": "confirmed", "done": "unwitnessed" if week_over else "done",
             "open": "not_done" if week_over else "open", "not_done": "not_done"}.get(status)
    return t(locale, f"action.shown.{shown}") if shown else status


def _chunks(people: set[str] | None) -> Iterator[list[str] | None]:
    """`people` in bounded chunks; a single None stands for everyone."""
    if people is None:
        yield None
        return
    ordered = sorted(people)
    for i in range(0, len(ordered), _CHUNK):
        yield ordered[i:i + _CHUNK]


def _within(column: Any, chunk: list[str] | None) -> Any:
    return true() if chunk is None else column.in_(chunk)


def _scopes(column: Any, people: set[str] | None) -> Iterator[Any]:
    """WHERE clauses covering `people` in bounded chunks (one always-true clause for everyone)."""
    for chunk in _chunks(people):
        yield _within(column, chunk)


def _on_leave(tenant: str, week: str) -> Any:
    """EXISTS: the employee of the outer row has leave overlapping the week.

    A correlated EXISTS uses the index on leave.userid; a join to a DISTINCT subquery
    makes SQLite scan that subquery once per employee.
    """
    days = week_days(week)
    return (
        select(Leave.id)
        .where(
            Leave.tenant == tenant, Leave.userid == Employee.userid,
            Leave.start_day <= days[-1], Leave.end_day >= days[0],
        )
        .exists()
    )


def _linked(col: Any) -> Any:
    return and_(col.is_not(None), col != "")


async def department_figures(
    session: AsyncSession, tenant: str, week: str, *, people: set[str] | None = None
) -> list[DeptFigures]:
    """Per-department counts for one week, sorted by department path."""
    week = normalize_week(week)
    on_leave = _on_leave(tenant, week)
    a = WeeklyAction
    no_action = a.id.is_(None)
    stmt_base = (
        select(
            Employee.department,
            func.count(Employee.id),
            func.sum(case((and_(no_action, on_leave), 1), else_=0)),
            func.count(a.id),
            func.sum(case((a.status.in_(DONE_STATUSES), 1), else_=0)),
            func.sum(case((_linked(a.goal_code), 1), else_=0)),
            func.sum(case((a.status == "confirmed", 1), else_=0)),
        )
        .select_from(Employee)
        .outerjoin(a, and_(a.tenant == Employee.tenant, a.userid == Employee.userid, a.week == week))
        .group_by(Employee.department)
    )
    by_dept: dict[str, DeptFigures] = {}
    for clause in _scopes(Employee.userid, people):
        stmt = stmt_base.where(Employee.tenant == tenant, Employee.active.is_(True), clause)
        for dept, pop, skipped, actions, done, linked, confirmed in (await session.execute(stmt)).all():
            f = DeptFigures(
                dept, population=pop, skipped=int(skipped or 0), filled=actions, actions=actions,
                done=int(done or 0), linked=int(linked or 0), confirmed=int(confirmed or 0),
            )
            if dept in by_dept:
                by_dept[dept].add(f)
            else:
                by_dept[dept] = f
    return [by_dept[d] for d in sorted(by_dept)]


def _total(depts: Iterable[DeptFigures], people: set[str] | None) -> DeptFigures:
    total = DeptFigures(TOTAL_LABEL if people is None else SCOPE_TOTAL_LABEL)
    for d in depts:
        total.add(d)
    return total


async def compute_pulse(
    session: AsyncSession, tenant: str, week: str, *, people: set[str] | None = None
) -> Pulse:
    """All figures of one week for the whole tenant, or for `people` only."""
    week = normalize_week(week)
    depts = await department_figures(session, tenant, week, people=people)
    pulse = Pulse(week=week, departments=depts, total=_total(depts, people))
    pulse.missing = await _missing(session, tenant, week, people)
    pulse.witness_counts = await _witness_counts(session, tenant, week, people)
    # One pass over the diversity window gives both the diversity figure and the sole witnesses;
    # the counts above already list the active people in scope.
    stats = await _window_stats(session, tenant, week, people, active=set(pulse.witness_counts))
    pulse.witness_diversity = {u: distinct / n for u, (n, distinct, _w) in sorted(stats.items())}
    sole = {u: w for u, (n, distinct, w) in stats.items() if n >= 2 and distinct == 1}
    pulse.mutual_pairs = await _mutual_pairs(session, tenant, week, people, sole=sole)
    return pulse


async def _missing(session: AsyncSession, tenant: str, week: str, people: set[str] | None) -> list[str]:
    on_leave = _on_leave(tenant, week)
    a = WeeklyAction
    out: list[str] = []
    for clause in _scopes(Employee.userid, people):
        stmt = (
            select(Employee.userid)
            .outerjoin(a, and_(a.tenant == Employee.tenant, a.userid == Employee.userid, a.week == week))
            .where(Employee.tenant == tenant, Employee.active.is_(True), clause, a.id.is_(None), ~on_leave)
        )
        out.extend((await session.execute(stmt)).scalars())
    return sorted(out)


async def _witness_counts(session: AsyncSession, tenant: str, week: str, people: set[str] | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    a = WeeklyAction
    for chunk in _chunks(people):
        # Aggregate per witness first: joining people to actions on the witness column has no index.
        given = (
            select(a.witness_userid.label("userid"), func.count(a.id).label("n"))
            .where(a.tenant == tenant, a.week == week, a.status == "confirmed", _within(a.witness_userid, chunk))
            .group_by(a.witness_userid)
            .subquery()
        )
        # Start from the people so that those who witnessed nobody show as 0.
        stmt = (
            select(Employee.userid, given.c.n)
            .outerjoin(given, given.c.userid == Employee.userid)
            .where(Employee.tenant == tenant, Employee.active.is_(True), _within(Employee.userid, chunk))
        )
        counts.update({u: int(n or 0) for u, n in (await session.execute(stmt)).all()})
    return dict(sorted(counts.items()))


def _window(week: str) -> list[str]:
    return week_range(week_back(week, DIVERSITY_WEEKS - 1), week)


async def _window_stats(
    session: AsyncSession, tenant: str, week: str, people: set[str] | None, *, active: set[str]
) -> dict[str, tuple[int, int, str]]:
    """Per person of `active` with actions in the diversity window: (actions, distinct witnesses, one witness).

    The active filter is applied here rather than by a join: joining employees
    made SQLite probe the action index once per person and week (half the pulse's time at 100k).
    """
    a = WeeklyAction
    weeks = _window(week)
    out: dict[str, tuple[int, int, str]] = {}
    for clause in _scopes(a.userid, people):
        stmt = (
            select(a.userid, func.count(a.id), func.count(a.witness_userid.distinct()), func.min(a.witness_userid))
            .where(a.tenant == tenant, a.week.in_(weeks), clause)
            .group_by(a.userid)
        )
        out.update({u: (n, distinct, w) for u, n, distinct, w in (await session.execute(stmt)).all() if u in active})
    return out


async def _sole_witness(
    session: AsyncSession, tenant: str, weeks: list[str], people: set[str] | None
) -> dict[str, str]:
    """Active people with ≥ 2 actions in `weeks`, all naming one and the same witness → that witness."""
    a = WeeklyAction
    out: dict[str, str] = {}
    for clause in _scopes(a.userid, people):
        stmt = (
            select(a.userid, func.min(a.witness_userid))
            .join(Employee, and_(Employee.tenant == a.tenant, Employee.userid == a.userid, Employee.active.is_(True)))
            .where(a.tenant == tenant, a.week.in_(weeks), clause)
            .group_by(a.userid)
            .having(and_(func.count(a.id) >= 2, func.count(a.witness_userid.distinct()) == 1))
        )
        out.update(dict((await session.execute(stmt)).all()))
    return out


async def _mutual_pairs(
    session: AsyncSession, tenant: str, week: str, people: set[str] | None, *, sole: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """Pairs who only ever witness each other; a pair shows when at least one of them is in scope.

    `sole` is the sole-witness map of the people in scope when the caller has it already.
    """
    weeks = _window(week)
    sole = dict(sole) if sole is not None else await _sole_witness(session, tenant, weeks, people)
    if people is not None:
        # The partners may sit outside the scope; fetch their side too.
        partners = {w for w in sole.values() if w not in sole}
        if partners:
            sole.update(await _sole_witness(session, tenant, weeks, partners))
    pairs = {tuple(sorted((u, w))) for u, w in sole.items() if u != w and sole.get(w) == u}
    return sorted(pairs)  # type: ignore[arg-type]


@dataclass
class OrgTree:
    """Who reports to whom in one tenant, loaded once; lines are walked in memory."""

    reports: dict[str, list[str]]
    active: set[str]

    def line(self, manager_userid: str) -> set[str]:
        """Active direct and indirect reports (not the manager).

        The chain is followed through people who have left, so a vacant middle
        manager does not cut a team off.
        """
        seen = {manager_userid}  # also what stops a cycle that leads back to the manager
        queue = [manager_userid]
        while queue:
            for child in self.reports.get(queue.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    queue.append(child)
        seen.discard(manager_userid)
        return seen & self.active


    def team(self, manager_userid: str) -> set[str]:
        """The people a manager's figures count: their line and the manager, as in the department's.

        The manager fills in a weekly action like everyone else; leaving them out made
        the manager's card say 3/4 where HR's card, counting the whole department, said 4/5.
        Empty when the manager leads nobody.
        """
        line = self.line(manager_userid)
        if not line:
            return set()
        return line | ({manager_userid} & self.active)


async def org_tree(session: AsyncSession, tenant: str) -> OrgTree:
    """One query for the whole tenant: the Friday job asks for every manager's line."""
    rows = (await session.execute(
        select(Employee.userid, Employee.manager_userid, Employee.active).where(Employee.tenant == tenant)
    )).all()
    reports: dict[str, list[str]] = {}
    active: set[str] = set()
    for userid, manager, is_active in rows:
        if manager:
            reports.setdefault(manager, []).append(userid)
        if is_active:
            active.add(userid)
    return OrgTree(reports, active)


async def reporting_line(session: AsyncSession, tenant: str, manager_userid: str) -> set[str]:
    """Active direct and indirect reports of a manager (not the manager), following manager_userid."""
    return (await org_tree(session, tenant)).line(manager_userid)


async def in_line(session: AsyncSession, tenant: str, manager_userid: str, userid: str) -> bool:
    """Whether `userid` is in `manager_userid`'s reporting line (as OrgTree.line says), asked for one person.

    Walks up from the person through manager_userid (through people who have left, like the
    line), a few indexed rows in one query, where loading the whole org tree read every
    employee of the tenant for one yes or no (the witness invitation's feedback check).
    """
    if userid == manager_userid:
        return False
    e = Employee.__table__
    chain = select(e.c.manager_userid.label("boss"), literal(1).label("depth")).where(
        e.c.tenant == tenant, e.c.userid == userid, e.c.active.is_(True)).cte("chain", recursive=True)
    chain = chain.union_all(select(e.c.manager_userid, chain.c.depth + 1).where(
        e.c.tenant == tenant, e.c.userid == chain.c.boss, chain.c.boss != manager_userid,
        chain.c.depth < _MAX_CHAIN))  # the bound also ends a cycle that does not reach the manager
    found = await session.execute(select(func.count()).select_from(chain).where(chain.c.boss == manager_userid))
    return bool(found.scalar_one())


_MAX_CHAIN = 64


async def team_of(session: AsyncSession, tenant: str, manager_userid: str) -> set[str]:
    """A manager's team for the figures (see OrgTree.team)."""
    return (await org_tree(session, tenant)).team(manager_userid)


async def trend(
    session: AsyncSession, tenant: str, end_week: str, weeks: int = 12, people: set[str] | None = None
) -> list[tuple[str, DeptFigures]]:
    """Scope totals for the `weeks` weeks ending with `end_week`, oldest first; none before go-live."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    out = []
    live = (await session.get(Tenant, tenant))
    for week in counted_weeks(week_range(week_back(end_week, weeks - 1), end_week), live.live_from if live else None):
        depts = await department_figures(session, tenant, week, people=people)
        out.append((week, _total(depts, people)))
    return out

