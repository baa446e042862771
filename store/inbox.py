"""The durable inbox: an event is stored before the platform is answered.

The unique (tenant, platform, dedup_key) makes platform retries and
redeliveries harmless: the second copy is refused by the database itself.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import random

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.core.events import Event
from store.db import Database, try_insert
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
    """Take up to `limit` pending events (or ones whose claimer died) in arrival order.

    One person's events are handled one at a time across all processes: an event is
    taken only with every older unfinished event of the same person (see _in_person_order).
    """
    # Short: the handler marks the row done only while this claim holds, so a slow handler whose
    # claim lapsed is never run twice; after a crash the row is taken up again within seconds.
    due = or_((InboxEvent.status == "pending") & or_(InboxEvent.not_before.is_(None), InboxEvent.not_before <= now),
              (InboxEvent.status == "processing") & (InboxEvent.claimed_until < now))
    async with db.transaction() as s:
        q = select(InboxEvent.id, InboxEvent.tenant, InboxEvent.userid).where(due).order_by(InboxEvent.id).limit(limit)
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)  # rows another claimer holds are skipped
        candidates = (await s.execute(q)).all()
        if not candidates:
            return []
        ids = await _in_person_order(s, candidates)
        if not ids:
            return []
        await s.execute(update(InboxEvent).where(InboxEvent.id.in_(ids)).values(
            status="processing", claimed_until=now + timedelta(seconds=lease)))
        rows = await s.execute(select(InboxEvent).where(InboxEvent.id.in_(ids)).order_by(InboxEvent.id))
        return list(rows.scalars())


async def _in_person_order(s: Any, candidates: list[Any]) -> list[int]:
    """The candidates that may run now: per person, the unbroken run from their oldest unfinished event.

    An older event of the same person that is not among ours is being handled (a live
    claim), or was just locked by another claimer, or lies beyond our limit; either way
    this person's later events wait, so two instances never handle one person's
    messages at the same time or out of order. The read sees uncommitted-elsewhere rows
    as they were (pending), which is what makes two simultaneous claims safe: each sees
    the other's older rows as unfinished.
    """
    mine = {row.id for row in candidates}
    users = {row.userid for row in candidates}
    tenants = {row.tenant for row in candidates}
    unfinished = await s.execute(
        select(InboxEvent.id, InboxEvent.tenant, InboxEvent.userid)
        .where(InboxEvent.status.in_(("pending", "processing")), InboxEvent.userid.in_(users),
               InboxEvent.tenant.in_(tenants))
        .order_by(InboxEvent.id))
    blocked: set[tuple[str, str]] = set()
    take: list[int] = []
    for row in unfinished:
        person = (row.tenant, row.userid)
        if person in blocked:
            continue
        if row.id in mine:
            take.append(row.id)
        else:
            blocked.add(person)
    return take


async def finish(db: Database, event_id: int, now: datetime, error: str = "") -> None:
    async with db.transaction() as s:
        await s.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(status="failed" if error else "done", processed_at=now, error=error[:2000])
        )


# A handler that fails for a reason of its own (a bug, not the database) this many times in a
# row is put aside as a dead letter: retrying it for ever would only repeat the failure.
MAX_FAILURES = 5


def retry_delay(tries: int) -> float:
    """Seconds before the next try: 1, 2, 4 … up to a minute, with jitter so instances spread out."""
    base = min(60.0, 2.0 ** max(tries - 1, 0))
    return random.uniform(base / 2, base)


async def retry_later(db: Database, event_id: int, now: datetime, *, failures: int, error: str, delay: float) -> None:
    """Back to pending after `delay` seconds; `failures` counts only the handler's own failures."""
    async with db.transaction() as s:
        await s.execute(update(InboxEvent).where(InboxEvent.id == event_id).values(
            status="pending", claimed_until=None, not_before=now + timedelta(seconds=delay),
            failures=failures, error=error[:2000]))


async def status_counts(db: Database, tenant: str | None = None) -> dict[tuple[str, str], int]:
    """{(platform, status): count} for operators."""
    async with db.session() as s:
        q = select(InboxEvent.platform, InboxEvent.status, func.count()).group_by(InboxEvent.platform, InboxEvent.status)
        if tenant:
            q = q.where(InboxEvent.tenant == tenant)
        return {(p, st): n for p, st, n in (await s.execute(q)).all()}


async def dead_letters(db: Database, tenant: str | None = None, limit: int = 50) -> list[InboxEvent]:
    async with db.session() as s:
        q = select(InboxEvent).where(InboxEvent.status == "failed").order_by(InboxEvent.id.desc()).limit(limit)
        if tenant:
            q = q.where(InboxEvent.tenant == tenant)
        return list((await s.execute(q)).scalars())


async def retry_dead(db: Database, now: datetime, tenant: str | None = None) -> int:
    """Handle dead-lettered events again (after the cause was fixed); returns how many."""
    async with db.transaction() as s:
        q = update(InboxEvent).where(InboxEvent.status == "failed")
        if tenant:
            q = q.where(InboxEvent.tenant == tenant)
        res = await s.execute(q.values(status="pending", failures=0, not_before=None, claimed_until=None,
                                       processed_at=None))
        return int(res.rowcount or 0)


def summarize(counts: dict[tuple[str, str], int]) -> str:
    by_platform: dict[str, dict[str, int]] = {}
    for (platform, status), n in counts.items():
        by_platform.setdefault(platform, {})[status] = by_platform.get(platform, {}).get(status, 0) + n
    if not by_platform:
        return "inbox is empty"
    return "\n".join(
        f"{p}: " + ", ".join(f"{st}={c[st]}" for st in ("pending", "processing", "done", "failed") if c.get(st))
        for p, c in sorted(by_platform.items()))


async def pending_count(db: Database) -> int:
    async with db.session() as s:
        return int(
            (await s.execute(select(func.count()).where(InboxEvent.status.in_(("pending", "processing"))))).scalar_one()
        )
