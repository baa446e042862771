"""The durable inbox: an event is stored before the platform is answered.

The unique (tenant, platform, dedup_key) makes platform retries and
redeliveries harmless: the second copy is refused by the database itself.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from bot.events import Event
from store.db import Database, claim_rows, try_insert
from store.models import InboxEvent


async def accept(db: Database, event: Event, now: datetime) -> bool:
    """Persist the event; False if the same event was already accepted."""
    async with db.transaction() as s:
        return await try_insert(
            s,
            InboxEvent,
            dict(
                tenant=event.tenant,
                platform=event.platform,
                dedup_key=event.dedup_key[:255],
                userid=event.userid,
                payload=event.to_dict(),
                status="pending",
                received_at=now,
            ),
        )


async def claim(db: Database, now: datetime, *, limit: int = 50, lease: float = 60.0) -> list[InboxEvent]:
    """Take up to `limit` pending events (or ones whose claimer died) in arrival order."""
    due = or_(InboxEvent.status == "pending",
              (InboxEvent.status == "processing") & (InboxEvent.claimed_until < now))
    return await claim_rows(db, InboxEvent, due, dict(status="processing", claimed_until=now + timedelta(seconds=lease)),
                            limit=limit)


async def finish(db: Database, event_id: int, now: datetime, error: str = "") -> None:
    async with db.transaction() as s:
        await s.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(status="failed" if error else "done", processed_at=now, error=error[:2000])
        )


async def pending_count(db: Database) -> int:
    from sqlalchemy import func

    async with db.session() as s:
        return int(
            (await s.execute(select(func.count()).where(InboxEvent.status.in_(("pending", "processing"))))).scalar_one()
        )
