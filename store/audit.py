"""The audit trail of who looked at (or was sent) someone else's feedback or brief."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditLog

VIEW_FEEDBACK = "view_feedback"
VIEW_BRIEF = "view_brief"
SEND_BRIEF = "send_brief"


def record(session: AsyncSession, tenant: str, actor: str, action: str, subject: str, at: datetime) -> None:
    """Add one audit row in the caller's transaction, so it exists exactly when the view happened."""
    session.add(AuditLog(tenant=tenant, actor_userid=actor, action=action, subject=subject,
                         at=at.astimezone(timezone.utc)))  # SQLite would otherwise keep local wall time


async def entries(session: AsyncSession, tenant: str, *, subject: str | None = None) -> list[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.tenant == tenant)
    if subject is not None:
        stmt = stmt.where(AuditLog.subject == subject)
    return list((await session.execute(stmt.order_by(AuditLog.id))).scalars())
