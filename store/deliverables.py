"""Deliverable checks of tasks: record one, the latest of a task, the owner's confirmation, a PMO's override."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import DeliverableCheck
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
