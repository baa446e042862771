"""Contributions (价值贡献): what a person claims they brought in, saved or made reusable, checked by a verifier.

A contribution is pending until its verifier confirms it (verified) or declines it. Only verified ones
count anywhere: the heat map, the ranked list, the reward suggestions. The cycle of every rule (the
reciprocal check, the caps) is the calendar month in the tenant's time zone, stored as `month`
('2026-12') when the contribution is recorded, so a late confirmation does not move it.

The heat map aggregates by department and type and drops every cell with fewer distinct people
than the threshold: a cell of three people would name them to anyone who knows the department.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from bot.core.calendar import week_days
from bot.core.timeutil import aware
from store.db import Database
from store.models import BigId, Employee, Feedback, WeeklyAction, _ts
from store.statuses import ActionStatus, Polarity

PENDING, VERIFIED, DECLINED = "pending", "verified", "declined"
# The three kinds of the article: 项目收益, 流程优化节省, 知识沉淀复用.
REVENUE, SAVING, REUSE = "revenue", "saving", "reuse"
KINDS = (REVENUE, SAVING, REUSE)
YUAN, HOURS, TIMES = "yuan", "hours", "times"
# Which units each kind may be counted in.
UNITS = {REVENUE: (YUAN,), SAVING: (YUAN, HOURS), REUSE: (TIMES,)}


class Contribution(SQLModel, table=True):
    __tablename__ = "contribution"
    __table_args__ = (Index("ix_contribution_month", "tenant", "month", "state"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    contributor_userid: str
    verifier_userid: str
    # The contributor's department when it was recorded: a later move does not shift old cells.
    department: str = ""
    kind: str = Field(max_length=12)  # revenue | saving | reuse
    unit: str = Field(max_length=8)  # yuan | hours | times
    amount: float
    description: str = Field(sa_column=Column(Text, nullable=False))
    # ["task:T3", "goal:O1-KR2", "feedback:12"]: what it is linked to, where given
    links: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    month: str = Field(max_length=7)  # 2026-12, the cycle
    state: str = Field(default=PENDING, max_length=10)
    created_at: datetime = _ts(nullable=False)
    decided_at: Optional[datetime] = _ts()
    decline_reason: str = ""


class Reward(SQLModel, table=True):
    """The amount a manager entered for a person's contributions of a month: a suggestion for payroll,
    never a payment (payroll reads the export and pays through its own process)."""

    __tablename__ = "contribution_reward"
    __table_args__ = (UniqueConstraint("tenant", "userid", "month"),)
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(index=True, max_length=40)
    userid: str
    month: str = Field(max_length=7)
    amount_fen: int  # in 分, so the sum payroll reads is exact
    evidence: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # contribution ids
    by_userid: str
    at: datetime = _ts(nullable=False)


def utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)


def month_of(now: datetime, tz: ZoneInfo) -> str:
    return now.astimezone(tz).strftime("%Y-%m")


def months_of(period: str) -> list[str]:
    """'2026-12' → ['2026-12']; '2026Q4' → ['2026-10', '2026-11', '2026-12']."""
    if "Q" in period:
        year, q = int(period[:4]), int(period[-1])
        return [f"{year}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]
    return [period]


def period_bounds(period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The period's first moment and the moment after it, as aware datetimes."""
    months = months_of(period)
    y, m = (int(x) for x in months[0].split("-"))
    y2, m2 = (int(x) for x in months[-1].split("-"))
    first = date(y, m, 1)
    after = date(y2 + (m2 == 12), m2 % 12 + 1, 1)
    return (datetime.combine(first, datetime.min.time(), tz), datetime.combine(after, datetime.min.time(), tz))


async def get(session: AsyncSession, tenant: str, cid: int) -> Contribution | None:
    return (await session.execute(select(Contribution).where(
        Contribution.tenant == tenant, Contribution.id == cid))).scalar_one_or_none()


async def verified_by(session: AsyncSession, tenant: str, verifier: str, contributor: str, month: str) -> bool:
    """Did `verifier` verify (or is asked to verify) a contribution of `contributor` in `month`?"""
    found = await session.execute(select(Contribution.id).where(
        Contribution.tenant == tenant, Contribution.verifier_userid == verifier,
        Contribution.contributor_userid == contributor, Contribution.month == month,
        Contribution.state.in_((PENDING, VERIFIED))).limit(1))
    return found.first() is not None


async def month_totals(session: AsyncSession, tenant: str, userid: str, month: str) -> tuple[int, dict[str, float]]:
    """How many contributions `userid` has pending or verified in `month`, and their sum per unit."""
    rows = (await session.execute(select(Contribution.unit, func.count(), func.sum(Contribution.amount)).where(
        Contribution.tenant == tenant, Contribution.contributor_userid == userid, Contribution.month == month,
        Contribution.state.in_((PENDING, VERIFIED))).group_by(Contribution.unit))).all()
    return sum(int(n) for _, n, _ in rows), {str(u): float(s or 0) for u, _, s in rows}


async def pending_for(session: AsyncSession, tenant: str, verifier: str) -> list[Contribution]:
    return list((await session.execute(select(Contribution).where(
        Contribution.tenant == tenant, Contribution.verifier_userid == verifier, Contribution.state == PENDING)
        .order_by(Contribution.created_at.desc(), Contribution.id.desc()))).scalars())


async def verified_in(session: AsyncSession, tenant: str, period: str,
                      people: set[str] | None = None) -> list[Contribution]:
    q = select(Contribution).where(Contribution.tenant == tenant, Contribution.state == VERIFIED,
                                   Contribution.month.in_(months_of(period)))
    rows = list((await session.execute(q.order_by(Contribution.created_at, Contribution.id))).scalars())
    return [c for c in rows if people is None or c.contributor_userid in people]


# -- the heat map --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    department: str
    kind: str
    evidence: int  # verified contributions
    people: int  # distinct contributors
    yuan: float
    hours: float
    times: float
    suppressed: bool


@dataclass
class HeatMap:
    period: str
    departments: list[str]
    kinds: tuple[str, ...]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    min_people: int = 5

    def cell(self, department: str, kind: str) -> Cell | None:
        return self.cells.get((department, kind))


def department_at(path: str, depth: int) -> str:
    """The department a path is counted under: its first `depth` levels (康骨医疗/研发中心)."""
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[:depth]) if parts else ""


def heat_map(rows: Iterable[Contribution], period: str, *, depth: int, min_people: int) -> HeatMap:
    """Department × kind of the verified contributions; a cell of fewer than `min_people` people is
    kept as suppressed, with its figures zeroed, so nothing downstream can show them by mistake."""
    groups: dict[tuple[str, str], list[Contribution]] = {}
    for c in rows:
        groups.setdefault((department_at(c.department, depth), c.kind), []).append(c)
    out = HeatMap(period=period, departments=sorted({d for d, _ in groups}), kinds=KINDS, min_people=min_people)
    for (dept, kind), items in groups.items():
        people = len({c.contributor_userid for c in items})
        if people < min_people:
            out.cells[(dept, kind)] = Cell(dept, kind, 0, 0, 0.0, 0.0, 0.0, True)
            continue
        sums = {u: sum(c.amount for c in items if c.unit == u) for u in (YUAN, HOURS, TIMES)}
        out.cells[(dept, kind)] = Cell(dept, kind, len(items), people, sums[YUAN], sums[HOURS], sums[TIMES], False)
    return out


# -- the ranked list ------------------------------------------------------------------------------------

@dataclass
class Standing:
    userid: str
    contributions: int = 0
    yuan: float = 0.0
    hours: float = 0.0
    times: float = 0.0
    witnessed: int = 0  # colleagues' weekly actions this person confirmed as witness
    recognitions: int = 0  # 认可 feedback received
    ids: list[int] = field(default_factory=list)


async def standings(session: AsyncSession, tenant: str, period: str, tz: ZoneInfo,
                    people: set[str] | None) -> list[Standing]:
    """Everyone in `people` (None: the tenant's active people) with what they did in the period,
    ranked by verified contributions, then their ¥ sum."""
    if people is None:
        people = set((await session.execute(select(Employee.userid).where(
            Employee.tenant == tenant, Employee.active.is_(True)))).scalars())
    out = {u: Standing(u) for u in people}
    for c in await verified_in(session, tenant, period, people):
        s = out[c.contributor_userid]
        s.contributions += 1
        s.ids.append(c.id or 0)
        if c.unit == YUAN:
            s.yuan += c.amount
        elif c.unit == HOURS:
            s.hours += c.amount
        else:
            s.times += c.amount
    start, end = period_bounds(period, tz)
    for userid, n in (await session.execute(select(WeeklyAction.witness_userid, func.count()).where(
            WeeklyAction.tenant == tenant, WeeklyAction.status == ActionStatus.CONFIRMED,
            WeeklyAction.confirmed_at >= utc(start), WeeklyAction.confirmed_at < utc(end))
            .group_by(WeeklyAction.witness_userid))).all():
        if userid in out:
            out[userid].witnessed = int(n)
    for userid, n in (await session.execute(select(Feedback.receiver_userid, func.count()).where(
            Feedback.tenant == tenant, Feedback.polarity == Polarity.PRAISE,
            Feedback.created_at >= utc(start), Feedback.created_at < utc(end))
            .group_by(Feedback.receiver_userid))).all():
        if userid in out:
            out[userid].recognitions = int(n)
    return sorted(out.values(), key=lambda s: (-s.contributions, -s.yuan, -s.hours, -s.times, s.userid))


def hidden(rows: list[Standing], *, min_witnessed: int, max_recognised: int) -> list[Standing]:
    """Who confirms many colleagues' work yet is seldom recognised: witness confirmations at least
    `min_witnessed`, recognitions and contributions together at most `max_recognised`."""
    found = [s for s in rows if s.witnessed >= min_witnessed and s.recognitions + s.contributions <= max_recognised]
    return sorted(found, key=lambda s: (-s.witnessed, s.userid))


# -- rewards ----------------------------------------------------------------------------------------------

async def set_reward(session: AsyncSession, tenant: str, userid: str, month: str, fen: int, evidence: list[int],
                     by: str, now: datetime) -> Reward:
    row = (await session.execute(select(Reward).where(
        Reward.tenant == tenant, Reward.userid == userid, Reward.month == month))).scalar_one_or_none()
    if row is None:
        row = Reward(tenant=tenant, userid=userid, month=month, amount_fen=fen, evidence=evidence, by_userid=by,
                     at=utc(now))
    else:
        row.amount_fen, row.evidence, row.by_userid, row.at = fen, evidence, by, utc(now)
    session.add(row)
    await session.flush()
    return row


async def rewards(session: AsyncSession, tenant: str, month: str, people: set[str] | None = None) -> list[Reward]:
    rows = (await session.execute(select(Reward).where(Reward.tenant == tenant, Reward.month == month)
                                  .order_by(Reward.userid))).scalars()
    return [r for r in rows if people is None or r.userid in people]


def previous_month(month: str) -> str:
    y, m = (int(x) for x in month.split("-"))
    d = date(y, m, 1) - timedelta(days=1)
    return f"{d.year}-{d.month:02d}"


# -- the payroll export ------------------------------------------------------------------------------------

REWARD_HEADER = ["月份", "工号", "姓名", "部门", "奖励建议（元）", "依据：已核实贡献", "填写人", "填写时间"]
_REWARD_WIDTHS = [9, 14, 10, 30, 14, 70, 10, 17]
NOT_PAID = "仅为主管填写的奖励建议，供发薪核对；系统不会自动发放任何款项。"
# A cell starting with one of these is run as a formula by Excel; user text must never be.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


async def reward_rows(session: AsyncSession, tenant: str, month: str, tz: ZoneInfo,
                      people: set[str] | None = None) -> list[list[object]]:
    names = {e.userid: e for e in (await session.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
    evidence = {c.id: c for c in await verified_in(session, tenant, month)}
    out: list[list[object]] = []
    for r in await rewards(session, tenant, month, people):
        who, by = names.get(r.userid), names.get(r.by_userid)
        items = [evidence[i] for i in r.evidence if i in evidence]
        basis = "；".join(f"#{c.id} {c.description}" for c in items)
        out.append([month, r.userid, who.name if who else r.userid, who.department if who else "",
                    r.amount_fen / 100, _safe(basis), by.name if by else r.by_userid,
                    aware(r.at).astimezone(tz).strftime("%Y-%m-%d %H:%M")])
    return out


async def write_rewards_xlsx(session: AsyncSession, tenant: str, month: str, path: Path, *, tz: ZoneInfo,
                             people: set[str] | None = None) -> int:
    """The month's reward suggestions as one sheet for payroll; the number of rows written."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    rows = await reward_rows(session, tenant, month, tz, people)
    wb = Workbook()
    ws = wb.active
    ws.title = "奖励建议"
    ws.append(REWARD_HEADER)
    for row in rows:
        ws.append(row)
    ws.append([])
    ws.append([NOT_PAID])
    for i, w in enumerate(_REWARD_WIDTHS, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    wb.save(path)
    return len(rows)


# -- the 贡献 sheet of HR's weekly export -----------------------------------------------------------------

CONTRIBUTION_HEADER = ["核实时间", "月份", "工号", "贡献人", "部门", "类型", "数额", "单位", "说明", "核实人", "关联"]
_CONTRIBUTION_WIDTHS = [17, 9, 14, 10, 30, 10, 12, 6, 50, 10, 24]
KIND_LABELS = {REVENUE: "项目收益", SAVING: "流程节省", REUSE: "知识复用"}
UNIT_LABELS = {YUAN: "元", HOURS: "小时", TIMES: "次"}


async def contribution_rows(session: AsyncSession, tenant: str, start: datetime, end: datetime,
                            tz: ZoneInfo) -> list[list[object]]:
    """Contributions verified in [start, end), oldest first: only verified ones count anywhere."""
    names = {e.userid: e for e in (await session.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
    rows = (await session.execute(select(Contribution).where(
        Contribution.tenant == tenant, Contribution.state == VERIFIED, Contribution.decided_at >= utc(start),
        Contribution.decided_at < utc(end)).order_by(Contribution.decided_at, Contribution.id))).scalars()
    out: list[list[object]] = []
    for c in rows:
        who, by = names.get(c.contributor_userid), names.get(c.verifier_userid)
        decided = aware(c.decided_at).astimezone(tz).strftime("%Y-%m-%d %H:%M") if c.decided_at else ""
        out.append([decided, c.month, c.contributor_userid, who.name if who else c.contributor_userid,
                    c.department, KIND_LABELS.get(c.kind, c.kind), c.amount, UNIT_LABELS.get(c.unit, c.unit),
                    _safe(c.description), by.name if by else c.verifier_userid, "、".join(c.links)])
    return out


async def write_contribution_sheet(wb: Any, db: Database, tenant: str, weeks: list[str], tz: ZoneInfo) -> None:
    """The 贡献 sheet of the export's weeks, on a write-only openpyxl workbook (every text cell typed as
    text, so a description starting with "=" is never run as a formula)."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    start = datetime.combine(min(week_days(w)[0] for w in weeks), time(0), tzinfo=tz)
    end = datetime.combine(max(week_days(w)[-1] for w in weeks) + timedelta(days=1), time(0), tzinfo=tz)
    ws = wb.create_sheet("贡献")
    for i, w in enumerate(_CONTRIBUTION_WIDTHS, 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    head = []
    for name in CONTRIBUTION_HEADER:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = Font(bold=True)
        head.append(cell)
    ws.append(head)
    async with db.session() as s:
        rows = await contribution_rows(s, tenant, start, end, tz)
    for row in rows:
        cells = []
        for v in row:
            cell = WriteOnlyCell(ws, value=v)
            if isinstance(v, str):
                cell.data_type = "s"
            cells.append(cell)
        ws.append(cells)
