"""The effects of external events: 留痕 records, 回款跟踪 rows and 风险响应 measurements.

Each row names the external_event(s) it came from, so every figure links back to its facts.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from bot.core.calendar import week_days
from cards import brief_texts  # noqa: F401  (the brief's texts join the catalogue)
from cards.brief_records import TraceLine
from cards.texts import t
from store.db import Database, try_insert
from store.external_events import ExternalEvent
from store.models import BigId, Employee, UTCDateTime


class TraceRecord(SQLModel, table=True):
    """留痕: one mapped event as a dated line in a person's brief."""

    __tablename__ = "trace_record"
    __table_args__ = (UniqueConstraint("tenant", "event_id", "userid"), Index("ix_trace_record_who", "tenant", "userid", "day"))
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    userid: str = Field(max_length=64)
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    day: str = Field(max_length=10)  # tenant-local date of the fact
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    source: str = Field(max_length=64)
    title: str = ""
    link: str = ""
    effect: str = Field(default="trace", max_length=16)  # trace | receivable | response


class Receivable(SQLModel, table=True):
    """回款跟踪: an approved contract's expected payment."""

    __tablename__ = "receivable"
    __table_args__ = (UniqueConstraint("tenant", "ref"), Index("ix_receivable_contract", "tenant", "contract_no"))
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    ref: str = Field(max_length=255)  # source:instance — one row per contract, whatever the redeliveries
    owner: str = Field(max_length=64)
    customer: str = ""
    amount_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    due: Optional[date] = None
    goal_code: str = ""
    title: str = ""
    status: str = Field(default="open", max_length=16)  # open | paid
    event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # the contract's own number (the form's 合同编号, else the approval's number): what people type
    contract_no: str = Field(default="", max_length=64)
    # payments recorded so far (回款 … 已到账); the row is paid once they reach the amount
    paid_cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    paid_at: Optional[datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))

    @property
    def outstanding_cents(self) -> int:
        return max(self.amount_cents - self.paid_cents, 0)


class ResponseMeasure(SQLModel, table=True):
    """风险响应: one approver's response to an assigned deviation investigation, in working hours."""

    __tablename__ = "response_measure"
    __table_args__ = (UniqueConstraint("tenant", "source", "task_ref"), Index("ix_response_measure_who", "tenant", "userid"))
    id: Optional[int] = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    tenant: str = Field(max_length=40)
    source: str = Field(max_length=64)
    task_ref: str = Field(max_length=255)  # the approval task (DingTalk taskId, WeCom SpNo:approver)
    instance: str = Field(default="", max_length=255)
    userid: str = Field(max_length=64)
    rule: str = Field(default="", max_length=64)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: Optional[datetime] = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    working_hours: Optional[float] = None
    sla_hours: float = 0.0
    on_time: Optional[bool] = None
    start_event_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    finish_event_id: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))


async def add_record(s: AsyncSession, tenant: str, userid: str, event_id: int, day: str, occurred_at: datetime,
                     source: str, title: str, link: str, effect: str) -> bool:
    return await try_insert(s, TraceRecord, dict(
        tenant=tenant, userid=userid, event_id=event_id, day=day, occurred_at=occurred_at.astimezone(timezone.utc),
        source=source, title=title[:500], link=link[:1000], effect=effect))


async def add_receivable(s: AsyncSession, **values: Any) -> bool:
    return await try_insert(s, Receivable, values)


async def find_receivables(s: AsyncSession, tenant: str, ref: str) -> list[Receivable]:
    """Tracking rows a person names by contract number, or by the approval's number (case and width folded)."""
    key = ref.strip().lower()
    if not key:
        return []
    rows = list((await s.execute(select(Receivable).where(
        Receivable.tenant == tenant,
        or_(func.lower(Receivable.contract_no) == key,
            func.lower(Receivable.ref).endswith(":" + key, autoescape=True))).order_by(Receivable.id))).scalars())
    return rows


async def record_payment(s: AsyncSession, row: Receivable, cents: int, now: datetime) -> Receivable:
    """Add a payment; the row is paid (and its reminders stop) once the payments reach its amount."""
    paid = row.paid_cents + cents
    status = "paid" if paid >= row.amount_cents else "open"
    await s.execute(update(Receivable).where(Receivable.id == row.id).values(
        paid_cents=Receivable.paid_cents + cents, status=status, paid_at=now.astimezone(timezone.utc)))
    row.paid_cents, row.status, row.paid_at = paid, status, now
    return row


async def start_response(s: AsyncSession, **values: Any) -> bool:
    return await try_insert(s, ResponseMeasure, values)


async def link_start(s: AsyncSession, tenant: str, source: str, task_ref: str, event_id: int) -> None:
    """The assignment event is the start's evidence, also when the answer's event (which repeats the
    start time) was handled first and opened the row."""
    await s.execute(update(ResponseMeasure).where(
        ResponseMeasure.tenant == tenant, ResponseMeasure.source == source, ResponseMeasure.task_ref == task_ref)
        .values(start_event_id=event_id))


async def open_response(s: AsyncSession, tenant: str, source: str, task_ref: str) -> ResponseMeasure | None:
    return (await s.execute(select(ResponseMeasure).where(
        ResponseMeasure.tenant == tenant, ResponseMeasure.source == source,
        ResponseMeasure.task_ref == task_ref))).scalar_one_or_none()


async def finish_response(s: AsyncSession, row: ResponseMeasure, finished_at: datetime, hours: float,
                          event_id: int) -> None:
    await s.execute(update(ResponseMeasure).where(ResponseMeasure.id == row.id, ResponseMeasure.finished_at.is_(None))
                    .values(finished_at=finished_at.astimezone(timezone.utc), working_hours=round(hours, 2),
                            on_time=hours <= row.sla_hours, finish_event_id=event_id))


async def records_of(s: AsyncSession, tenant: str, userid: str, start: str = "", end: str = "9999") -> list[TraceRecord]:
    return list((await s.execute(select(TraceRecord).where(
        TraceRecord.tenant == tenant, TraceRecord.userid == userid, TraceRecord.day >= start, TraceRecord.day <= end)
        .order_by(TraceRecord.occurred_at, TraceRecord.id))).scalars())


async def receivables(s: AsyncSession, tenant: str, *, owners: list[str] | None = None,
                      status: str | None = None) -> list[Receivable]:
    q = select(Receivable).where(Receivable.tenant == tenant)
    if owners is not None:
        q = q.where(Receivable.owner.in_(owners))
    if status is not None:
        q = q.where(Receivable.status == status)
    return list((await s.execute(q.order_by(Receivable.due, Receivable.id))).scalars())


async def responses(s: AsyncSession, tenant: str, *, userids: list[str] | None = None,
                    finished_only: bool = True) -> list[ResponseMeasure]:
    q = select(ResponseMeasure).where(ResponseMeasure.tenant == tenant)
    if userids is not None:
        q = q.where(ResponseMeasure.userid.in_(userids))
    if finished_only:
        q = q.where(ResponseMeasure.finished_at.is_not(None))
    return list((await s.execute(q.order_by(ResponseMeasure.started_at, ResponseMeasure.id))).scalars())


def rate(rows: list[ResponseMeasure]) -> float | None:
    """风险响应及时率: on-time share of finished responses; None when there are none."""
    done = [r for r in rows if r.on_time is not None]
    return sum(1 for r in done if r.on_time) / len(done) if done else None


async def rates_by(s: AsyncSession, tenant: str, *, start: datetime | None = None, end: datetime | None = None,
                   people: list[str] | None = None) -> dict[str, dict[str, tuple[int, int]]]:
    """{"person": {userid: (on_time, total)}, "department": {path: (on_time, total)}} of the responses
    assigned in [start, end) and answered before `end` (so a figure read again later is the same)."""
    rows = await responses(s, tenant, userids=people)
    if start is not None:
        rows = [r for r in rows if _utc(r.started_at) >= start]
    if end is not None:
        rows = [r for r in rows if _utc(r.started_at) < end and r.finished_at is not None and _utc(r.finished_at) < end]
    depts = dict((await s.execute(select(Employee.userid, Employee.department).where(Employee.tenant == tenant))).all())
    out: dict[str, dict[str, tuple[int, int]]] = {"person": {}, "department": {}}
    for r in rows:
        for kind, key in (("person", r.userid), ("department", depts.get(r.userid, ""))):
            ok, n = out[kind].get(key, (0, 0))
            out[kind][key] = (ok + bool(r.on_time), n + 1)
    return out


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


RESPONSE_HEADER = ["范围", "部门", "姓名", "已响应", "及时", "及时率", "平均用时（工作小时）", "约定（工作小时）", "来源事件"]


async def response_sheet(s: AsyncSession, tenant: str, start: datetime, end: datetime) -> list[list[Any]]:
    """风险响应及时率 export rows: each person, then each department, then the company, of the responses
    assigned in [start, end); every person's row names its events (assignment/answer ids)."""
    rows = [r for r in await responses(s, tenant) if start <= _utc(r.started_at) < end]
    people = {e.userid: e for e in (await s.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
    ids = sorted({i for r in rows for i in (r.start_event_id, r.finish_event_id) if i})
    refs = dict((await s.execute(select(ExternalEvent.id, ExternalEvent.source + ":" + ExternalEvent.external_id)
                                 .where(ExternalEvent.tenant == tenant, ExternalEvent.id.in_(ids or [-1])))).all())

    def figures(group: list[ResponseMeasure]) -> list[Any]:
        ok = sum(1 for r in group if r.on_time)
        hours = [r.working_hours for r in group if r.working_hours is not None]
        slas = sorted({r.sla_hours for r in group})
        return [len(group), ok, ok / len(group) if group else None,
                round(sum(hours) / len(hours), 1) if hours else None, "、".join(f"{x:g}" for x in slas)]

    by_person: dict[str, list[ResponseMeasure]] = {}
    for r in rows:
        by_person.setdefault(r.userid, []).append(r)
    out: list[list[Any]] = []
    by_dept: dict[str, list[ResponseMeasure]] = {}
    for userid, group in sorted(by_person.items(), key=lambda kv: (
            people[kv[0]].department if kv[0] in people else "", kv[0])):
        person = people.get(userid)
        dept = person.department if person else ""
        by_dept.setdefault(dept, []).extend(group)
        sources = "；".join(refs.get(i, "") for r in group for i in (r.start_event_id, r.finish_event_id) if i)
        out.append(["个人", dept, person.name if person else userid, *figures(group), sources])
    for dept, group in sorted(by_dept.items()):
        out.append(["部门", dept, "", *figures(group), ""])
    if rows:
        out.append(["全公司", "", "", *figures(rows), ""])
    return out


async def trace_lines(s: AsyncSession, tenant: str, userid: str, first: date,
                      last: date, locale: str = "zh") -> tuple[list[TraceLine], tuple[int, int] | None]:
    """The brief's 留痕 lines of [first, last] (details in `locale`) and the period's 风险响应及时率
    (on time, answered)."""
    recs = await records_of(s, tenant, userid, first.isoformat(), last.isoformat())
    ids = [r.event_id for r in recs]
    money = {r.event_id: r for r in (await s.execute(select(Receivable).where(
        Receivable.tenant == tenant, Receivable.event_id.in_(ids or [-1])))).scalars()}
    answered = [r for r in await responses(s, tenant, userids=[userid])
                if r.finished_at is not None and first.isoformat() <= r.started_at.date().isoformat() <= last.isoformat()]
    by_start = {r.start_event_id: r for r in answered}
    by_finish = {r.finish_event_id: r for r in answered}
    lines = []
    for r in recs:
        detail = ""
        if r.event_id in money:
            m = money[r.event_id]
            detail = t(locale, "brief.rec.money", customer=m.customer or "—", amount=f"{m.amount_cents / 100:,.2f}",
                       due=m.due.isoformat() if m.due else t(locale, "brief.rec.money.no_due"))
        measured = by_finish.get(r.event_id) or by_start.get(r.event_id)
        if measured is not None and measured.working_hours is not None:
            detail = t(locale, "brief.rec.response", hours=f"{measured.working_hours:g}",
                       sla=f"{measured.sla_hours:g}") + t(
                locale, "brief.rec.response.on_time" if measured.on_time else "brief.rec.response.late")
        lines.append(TraceLine(r.id or 0, date.fromisoformat(r.day), r.source, r.title, r.link, r.effect, detail))
    rate = (sum(1 for r in answered if r.on_time), len(answered)) if answered else None
    return lines, rate


RECEIVABLE_HEADER = ["负责人", "部门", "合同", "客户", "金额（元）", "回款日", "状态", "目标", "来源事件",
                     "合同编号", "已回款（元）", "未回款（元）"]
RECEIVABLE_MONEY = (4, 10, 11)  # the columns in yuan


async def receivable_sheet(s: AsyncSession, tenant: str, today: date) -> list[list[Any]]:
    """回款跟踪 export rows: every tracking row with its owner, state as of `today` and source event."""
    people = {e.userid: e for e in (await s.execute(select(Employee).where(Employee.tenant == tenant))).scalars()}
    rows = await receivables(s, tenant)
    sources = dict((await s.execute(select(ExternalEvent.id, ExternalEvent.source + ":" + ExternalEvent.external_id)
                                    .where(ExternalEvent.tenant == tenant,
                                           ExternalEvent.id.in_([r.event_id for r in rows] or [-1])))).all())
    out: list[list[Any]] = []
    for r in rows:
        owner = people.get(r.owner)
        state = "已回款" if r.status == "paid" else "未填回款日" if r.due is None else \
            "已逾期" if today > r.due else "未到期"
        if r.status != "paid" and r.paid_cents:
            state = "部分回款，" + state
        out.append([owner.name if owner else r.owner, owner.department if owner else "", r.title, r.customer,
                    r.amount_cents / 100, r.due, state, r.goal_code, sources.get(r.event_id, ""),
                    r.contract_no, r.paid_cents / 100, r.outstanding_cents / 100])
    return out


async def write_response_sheet(wb: Any, db: Database, tenant: str, weeks: list[str], tz: Any) -> None:
    """The 风险响应及时率 sheet of the export's weeks, on a write-only openpyxl workbook."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    first = min(week_days(w)[0] for w in weeks)
    last = max(week_days(w)[-1] for w in weeks)
    start = datetime.combine(first, time(0), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)
    ws = wb.create_sheet("风险响应及时率")
    for i, w in enumerate([7, 30, 10, 8, 7, 9, 12, 12, 60], 1):
        ws.column_dimensions[get_column_letter(i)].width = w
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    head = []
    for name in RESPONSE_HEADER:
        c = WriteOnlyCell(ws, value=name)
        c.font = bold
        head.append(c)
    ws.append(head)
    async with db.session() as s:
        rows = await response_sheet(s, tenant, start, end)
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            c = WriteOnlyCell(ws, value=v)
            if isinstance(v, str):
                c.data_type = "s"  # a department or name starting with "=" is text, never a formula
            elif i == RESPONSE_HEADER.index("及时率"):
                c.number_format = "0.0%"
            cells.append(c)
        ws.append(cells)
