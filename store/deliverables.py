"""Deliverable checks of tasks: record one, the latest of a task, the owner's confirmation, a PMO's override;
the intake of files sent in chat, and the export sheet."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.core.events import Event
from store.db import Database, try_insert
from store.models import DeliverableCheck, DeliverableIntake, Employee, InboxEvent, Task
from store.tasks import utc


async def record_check(session: AsyncSession, tenant: str, task_id: int, *, at: datetime, by_userid: str,
                       source: str, filename: str, template: str, method: str, problem: str, light: str,
                       reason: str, fields: list[dict[str, Any]]) -> DeliverableCheck:
    row = DeliverableCheck(tenant=tenant, task_id=task_id, by_userid=by_userid, created_at=utc(at), source=source,
                           filename=filename[:200], template=template, method=method, problem=problem, light=light,
                           reason=reason, fields=fields)
    session.add(row)
    await session.flush()
    return row


async def latest_check(session: AsyncSession, tenant: str, task_id: int) -> DeliverableCheck | None:
    return (await session.execute(select(DeliverableCheck).where(
        DeliverableCheck.tenant == tenant, DeliverableCheck.task_id == task_id)
        .order_by(DeliverableCheck.created_at.desc(), DeliverableCheck.id.desc()).limit(1))).scalar_one_or_none()  # type: ignore[union-attr]


async def checks_of(session: AsyncSession, tenant: str, task_ids: list[int]) -> dict[int, DeliverableCheck]:
    """The latest check of each task (for the PMO's view and the task-delivery export)."""
    if not task_ids:
        return {}
    rows = (await session.execute(select(DeliverableCheck).where(
        DeliverableCheck.tenant == tenant, DeliverableCheck.task_id.in_(task_ids))  # type: ignore[attr-defined]
        .order_by(DeliverableCheck.created_at, DeliverableCheck.id))).scalars()
    return {r.task_id: r for r in rows}


def update_fields(row: DeliverableCheck, fields: list[dict[str, Any]], light: str, reason: str) -> None:
    """The owner's answer to 待确认 changes the values and the light of the same check."""
    row.fields, row.light, row.reason = fields, light, reason


def closable(row: DeliverableCheck | None) -> bool:
    """A red deliverable closes only with a PMO's override."""
    return row is None or row.light != "red" or bool(row.override_by)


# -- the intake of files sent in chat -------------------------------------------------------------
CLAIM_SECONDS = 300  # a worker that died mid-read gives the file back after this
MAX_ATTEMPTS = 5  # platform failures (not the file's own problems) before the person is told


def add_intake(session: AsyncSession, tenant: str, userid: str, platform: str, *, at: datetime,
               task_id: int | None, file_type: str, filename: str, event: dict[str, Any]) -> DeliverableIntake:
    row = DeliverableIntake(tenant=tenant, userid=userid, platform=platform, task_id=task_id, file_type=file_type,
                            filename=filename[:200], event=event, status="pending" if task_id else "choose",
                            created_at=utc(at))
    session.add(row)
    return row


async def claim_intakes(db: Database, now: datetime, limit: int = 5) -> list[DeliverableIntake]:
    """Pending files (and ones whose reader died) → reading, each claimed by one worker (a conditional update)."""
    now = utc(now)
    async with db.session() as s:
        rows = list((await s.execute(select(DeliverableIntake).where(
            or_(col(DeliverableIntake.status) == "pending",
                (col(DeliverableIntake.status) == "reading") & (col(DeliverableIntake.claimed_until) < now)),
            or_(col(DeliverableIntake.claimed_until).is_(None), col(DeliverableIntake.claimed_until) < now))
            .order_by(col(DeliverableIntake.id)).limit(limit))).scalars())
    claimed = []
    for row in rows:
        async with db.transaction() as s:
            took = await s.execute(update(DeliverableIntake).where(
                col(DeliverableIntake.id) == row.id, col(DeliverableIntake.status) == row.status,
                col(DeliverableIntake.attempts) == row.attempts).values(
                status="reading", attempts=row.attempts + 1, claimed_until=now + timedelta(seconds=CLAIM_SECONDS)))
        if took.rowcount:  # type: ignore[attr-defined]
            row.status, row.attempts = "reading", row.attempts + 1
            claimed.append(row)
    return claimed


async def retry_intake(db: Database, intake_id: int, now: datetime, delay: float, error: str) -> None:
    async with db.transaction() as s:
        await s.execute(update(DeliverableIntake).where(col(DeliverableIntake.id) == intake_id).values(
            status="pending", claimed_until=utc(now) + timedelta(seconds=delay), error=error[:500]))


OUTCOME_KEY = "deliverable-outcome:"  # + the intake's id: the dedup key of its outcome in the inbox


async def queue_outcome(db: Database, row: DeliverableIntake, event: Event, now: datetime) -> bool:
    """Hand what was read to the dispatcher: an inbox event of the person, in the same transaction that
    marks the intake read. The light, the replies and the question are then written in the person's order,
    never beside a message of theirs being handled. False when the claim was lost (another reader has it)
    or the outcome is already queued (its dedup key is the intake's)."""
    async with db.transaction() as s:
        took = await s.execute(update(DeliverableIntake).where(
            col(DeliverableIntake.id) == row.id, col(DeliverableIntake.status) == "reading",
            col(DeliverableIntake.attempts) == row.attempts).values(
            status="read", claimed_until=None, filename=row.filename[:200]))
        if not took.rowcount:  # type: ignore[attr-defined]
            return False
        return await try_insert(s, InboxEvent, dict(
            tenant=event.tenant, platform=event.platform, dedup_key=event.dedup_key[:255], userid=event.userid,
            payload=event.to_dict(), status="pending", received_at=utc(now)))


def finish_intake(row: DeliverableIntake, status: str, *, check_id: int | None = None, error: str = "") -> None:
    row.status, row.check_id, row.error, row.claimed_until = status, check_id, error[:500], None


async def set_override(session: AsyncSession, row: DeliverableCheck, by: str, reason: str, at: datetime) -> None:
    row.override_by, row.override_at, row.override_reason = by, utc(at), reason[:500]
    session.add(row)


# -- the export ---------------------------------------------------------------------------------
DELIVERABLE_HEADER = ["任务编号", "任务", "负责人", "交付物模板", "灯", "原因", "字段", "数值", "字段灯", "读取方式",
                      "来源片段", "文件", "检查时间", "放行人", "放行原因"]
_LIGHT_WORDS = {"green": "绿灯", "yellow": "黄灯", "red": "红灯", "none": "—", "": "—"}


async def deliverable_sheet(session: AsyncSession, tenant: str, tz: ZoneInfo) -> list[list[Any]]:
    """The latest check of every task of the tenant, one row per field: its value, light and where it was read."""
    checks = list((await session.execute(select(DeliverableCheck).where(col(DeliverableCheck.tenant) == tenant)
                                         .order_by(col(DeliverableCheck.created_at), col(DeliverableCheck.id)))).scalars())
    latest = {c.task_id: c for c in checks}
    if not latest:
        return []
    tasks = {t.id: t for t in (await session.execute(select(Task).where(
        col(Task.tenant) == tenant, col(Task.id).in_(list(latest))))).scalars()}
    names = {e.userid: e.name for e in (await session.execute(select(Employee).where(
        col(Employee.tenant) == tenant))).scalars()}
    out: list[list[Any]] = []
    for task_id, c in sorted(latest.items(), key=lambda kv: tasks[kv[0]].code if kv[0] in tasks else ""):
        task = tasks.get(task_id)
        if task is None:
            continue
        when = utc(c.created_at).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        head = [task.code, task.title, names.get(task.owner_userid, task.owner_userid), c.template,
                _LIGHT_WORDS.get(c.light, c.light), c.reason or c.problem]
        tail = [c.filename, when, names.get(c.override_by, c.override_by), c.override_reason]
        for f in c.fields or [{}]:
            value = f.get("raw") or ("" if f.get("value") is None else f"{f['value']:g}{f.get('unit', '')}")
            out.append(head + [f.get("label", ""), value, _LIGHT_WORDS.get(f.get("light", ""), f.get("light", "")),
                               f.get("method", ""), f.get("snippet", "")] + tail)
    return out


async def deliverable_sheet_into(ws: Any, db: Database, tenant: str, tz: ZoneInfo, header: Any, text_cell: Any,
                                 layout: Any) -> None:
    """The 交付物检查 sheet of the HR export: the export's own header, cell and layout helpers, these rows."""
    layout(ws, [9, 24, 10, 18, 7, 24, 12, 12, 7, 10, 40, 22, 16, 10, 24])
    header(ws, DELIVERABLE_HEADER)
    async with db.session() as s:
        rows = await deliverable_sheet(s, tenant, tz)
    for row in rows:
        ws.append([text_cell(ws, v) if isinstance(v, str) else v for v in row])
