"""The outbox: every message the bot sends is a row first, written in the same
transaction as the business change that caused it, then delivered by the relay.
"""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from cards.model import Message
from store.db import Database, claim_rows
from store.models import OutboxMessage

MAX_ATTEMPTS = 12


def enqueue(session: AsyncSession, *, tenant: str, platform: str, userid: str, message: Message) -> OutboxMessage:
    # Delivery runs on the real clock even when the domain clock is simulated:
    # a message written "on Friday 17:30" in a demo must still go out now.
    now = utcnow()
    row = OutboxMessage(
        tenant=tenant,
        platform=platform,
        userid=userid,
        payload=message.to_dict(),
        status="pending",
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    return row


# A message to many people (the 09:30 prompt) is stored as rows of up to this many
# recipients, so 100,000 prompts are 100 rows, not 100,000.
FANOUT = 1000
# DingTalk's batchSend takes 20 people and has no idempotency key: a row the size of
# one call bounds what a crash mid-send can repeat to those 20.
FANOUT_BY_PLATFORM = {"dingtalk": 20}
EVERYONE = "*"  # OutboxMessage.userid of a row whose recipients are payload["to"]


def enqueue_many(session: AsyncSession, *, tenant: str, platform: str, userids: list[str], message: Message) -> int:
    """One message to many people, as fan-out rows; returns how many rows were written."""
    now = utcnow()
    body = message.to_dict()
    size = FANOUT_BY_PLATFORM.get(platform, FANOUT)
    n = 0
    for i in range(0, len(userids), size):
        session.add(OutboxMessage(tenant=tenant, platform=platform, userid=EVERYONE,
                                  payload={**body, "to": userids[i:i + size]},
                                  status="pending", created_at=now, next_attempt_at=now))
        n += 1
    return n


def recipients(row: OutboxMessage) -> list[str]:
    return list(row.payload.get("to") or []) if row.userid == EVERYONE else [row.userid]


async def split_fanout(db: Database, row: OutboxMessage, now: datetime, *, retry: list[str], retry_after: float | None,
                       retry_error: str, dead: list[str], dead_error: str) -> None:
    """Part of a fan-out row went out: close it, and carry the rest in new rows (to retry, or dead)."""
    body = {k: v for k, v in row.payload.items() if k != "to"}
    async with db.transaction() as s:
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(
            status="sent", sent_at=now, claimed_until=None,
            last_error=f"partly sent; {len(retry)} to retry, {len(dead)} undeliverable"))
        if retry:
            s.add(OutboxMessage(tenant=row.tenant, platform=row.platform, userid=EVERYONE, payload={**body, "to": retry},
                                status="pending", attempts=row.attempts, created_at=row.created_at,
                                next_attempt_at=now + timedelta(seconds=backoff(row.attempts, retry_after)),
                                last_error=retry_error[:2000]))
        if dead:
            s.add(OutboxMessage(tenant=row.tenant, platform=row.platform, userid=EVERYONE, payload={**body, "to": dead},
                                status="dead", attempts=row.attempts, created_at=row.created_at,
                                next_attempt_at=now, last_error=dead_error[:2000]))


# A claim outlives one relay chunk (adapters give up on a call within 15 s); after a crash the
# claimed rows are taken up again this long after the claim was last renewed.
LEASE_SECONDS = 30.0


async def claim(db: Database, now: datetime, *, limit: int = 200, lease: float = LEASE_SECONDS) -> list[OutboxMessage]:
    """Claim due messages (and ones whose sender died mid-send) for delivery."""
    due = or_((OutboxMessage.status == "pending") & (OutboxMessage.next_attempt_at <= now),
              (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now))
    return await claim_rows(db, OutboxMessage, due, dict(
        status="sending", claimed_until=now + timedelta(seconds=lease), attempts=OutboxMessage.attempts + 1),
        limit=limit)


async def extend_claim(db: Database, ids: list[int], now: datetime, lease: float = LEASE_SECONDS) -> None:
    """Renew the claim on rows still being sent."""
    async with db.transaction() as s:
        await s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids), OutboxMessage.status == "sending")
                        .values(claimed_until=now + timedelta(seconds=lease)))


async def mark_sent(db: Database, ids: list[int], now: datetime, refs: dict[int, str] | None = None) -> None:
    if not ids:
        return
    refs = refs or {}
    async with db.transaction() as s:
        if any(refs.values()):
            for i in ids:
                await s.execute(
                    update(OutboxMessage).where(OutboxMessage.id == i)
                    .values(status="sent", sent_at=now, claimed_until=None, platform_ref=refs.get(i, "")[:255])
                )
        else:
            await s.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                .values(status="sent", sent_at=now, claimed_until=None)
            )


def backoff(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, at least what the platform asked for."""
    base = min(300.0, 0.5 * (2 ** min(attempts, 10)))
    return max(retry_after or 0.0, random.uniform(base / 2, base))


async def mark_failed(db: Database, row: OutboxMessage, now: datetime, error: str, retry_after: float | None, permanent: bool) -> str:
    """Schedule a retry, or dead-letter the message; returns the new status."""
    dead = permanent or row.attempts >= MAX_ATTEMPTS
    async with db.transaction() as s:
        await s.execute(
            update(OutboxMessage).where(OutboxMessage.id == row.id).values(
                status="dead" if dead else "pending",
                last_error=error[:2000],
                claimed_until=None,
                next_attempt_at=now + timedelta(seconds=0 if dead else backoff(row.attempts, retry_after)),
            )
        )
    return "dead" if dead else "pending"


async def status_counts(db: Database, tenant: str | None = None) -> dict[tuple[str, str], int]:
    """{(platform, status): count} for operators."""
    async with db.session() as s:
        q = select(OutboxMessage.platform, OutboxMessage.status, func.count()).group_by(
            OutboxMessage.platform, OutboxMessage.status
        )
        if tenant:
            q = q.where(OutboxMessage.tenant == tenant)
        return {(p, st): n for p, st, n in (await s.execute(q)).all()}


async def dead_letters(db: Database, tenant: str | None = None, limit: int = 50) -> list[OutboxMessage]:
    async with db.session() as s:
        q = select(OutboxMessage).where(OutboxMessage.status == "dead").order_by(OutboxMessage.id.desc()).limit(limit)
        if tenant:
            q = q.where(OutboxMessage.tenant == tenant)
        return list((await s.execute(q)).scalars())


async def retry_dead(db: Database, now: datetime, tenant: str | None = None) -> int:
    """Put dead-lettered messages back in the queue (after the operator fixed the cause)."""
    async with db.transaction() as s:
        q = update(OutboxMessage).where(OutboxMessage.status == "dead")
        if tenant:
            q = q.where(OutboxMessage.tenant == tenant)
        res = await s.execute(q.values(status="pending", attempts=0, next_attempt_at=now, last_error=""))
        return int(res.rowcount or 0)


def summarize(counts: dict[tuple[str, str], int]) -> str:
    by_platform: dict[str, Counter[str]] = {}
    for (platform, status), n in counts.items():
        by_platform.setdefault(platform, Counter())[status] += n
    if not by_platform:
        return "outbox is empty"
    return "\n".join(
        f"{p}: " + ", ".join(f"{st}={c[st]}" for st in ("pending", "sending", "sent", "dead") if c[st])
        for p, c in sorted(by_platform.items())
    )
