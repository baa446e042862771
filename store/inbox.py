"""The durable inbox: an event is stored before the platform is answered.

The unique (tenant, platform, dedup_key) makes platform retries and
redeliveries harmless: the second copy is refused by the database itself.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.core.events import Event
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


def _accept_statement(postgres: bool):  # type: ignore[no-untyped-def]
    t = InboxEvent.__table__
    return ((pg_insert if postgres else sqlite_insert)(t).on_conflict_do_nothing()
            .returning(t.c.tenant, t.c.platform, t.c.dedup_key))


_ACCEPT = {False: _accept_statement(False), True: _accept_statement(True)}


async def accept_many(db: Database, events: list[Event], now: datetime) -> list[bool]:
    """Persist several events in one transaction; for each, False if it was already accepted.

    One multi-row INSERT … ON CONFLICT DO NOTHING RETURNING: a commit per event
    would cap a SQLite inbox at a few hundred callbacks a second.
    """
    keys = [e.dedup_key[:255] for e in events]
    first: dict[tuple[str, str, str], int] = {}
    rows = []
    for i, (e, key) in enumerate(zip(events, keys)):
        ident = (e.tenant, e.platform, key)
        if ident in first:
            continue  # the same event twice in one batch: the later copy is a duplicate
        first[ident] = i
        rows.append(dict(tenant=e.tenant, platform=e.platform, dedup_key=key, userid=e.userid,
                         payload=e.to_dict(), status="pending", received_at=now))
    async with db.transaction() as s:
        # One statement with a list of parameter sets: SQLAlchemy batches it into multi-row
        # VALUES itself ("insertmanyvalues") from one cached compilation, where .values(rows)
        # compiled a new statement for every batch size.
        inserted = {tuple(r) for r in (await s.execute(_ACCEPT[db.is_postgres], rows)).all()}
    return [first.get((e.tenant, e.platform, k)) == i and (e.tenant, e.platform, k) in inserted
            for i, (e, k) in enumerate(zip(events, keys))]


async def claim(db: Database, now: datetime, *, limit: int = 50, lease: float = 10.0) -> list[InboxEvent]:
    """Take up to `limit` pending events (or ones whose claimer died) in arrival order."""
    # Short: the handler marks the row done only while this claim holds, so a slow handler whose
    # claim lapsed is never run twice; after a crash the row is taken up again within seconds.
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
