"""The audit trail of who looked at (or was sent) someone else's feedback or brief."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditLog

VIEW_FEEDBACK = "view_feedback"
VIEW_BRIEF = "view_brief"
SEND_BRIEF = "send_brief"
VIEW_AUDIT = "view_audit"


def record(session: AsyncSession, tenant: str, actor: str, action: str, subject: str, at: datetime) -> None:
    """Add one audit row in the caller's transaction, so it exists exactly when the view happened."""
    session.add(AuditLog(tenant=tenant, actor_userid=actor, action=action, subject=subject,
                         at=at.astimezone(timezone.utc)))  # SQLite would otherwise keep local wall time


async def entries(session: AsyncSession, tenant: str, *, subject: str | None = None) -> list[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.tenant == tenant)
    if subject is not None:
        stmt = stmt.where(AuditLog.subject == subject)
    return list((await session.execute(stmt.order_by(AuditLog.id))).scalars())


async def search(session: AsyncSession, tenant: str, *, person: str | None = None, start: datetime | None = None,
                 end: datetime | None = None, limit: int = 500) -> list[AuditLog]:
    """Entries of one tenant in [start, end), newest first; with `person`, those by or about them.

    "About" is a subject naming the person: their userid (a feedback or brief view) or
    `userid: …` (a role change).
    """
    stmt = select(AuditLog).where(AuditLog.tenant == tenant)
    if person:
        stmt = stmt.where(or_(AuditLog.actor_userid == person, AuditLog.subject == person,
                              AuditLog.subject.startswith(person + ":", autoescape=True)))
    if start is not None:
        stmt = stmt.where(AuditLog.at >= start.astimezone(timezone.utc))
    if end is not None:
        stmt = stmt.where(AuditLog.at < end.astimezone(timezone.utc))
    return list((await session.execute(stmt.order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit))).scalars())
