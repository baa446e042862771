"""What every instance must agree on about recent sends: per-member counts and duplicate-check bodies.

WeCom silently drops a member's 31st message in a minute (and the 1001st in an
hour), and with `enable_duplicate_check` it silently drops a body equal to one sent
within the interval. Kept in one process's memory, a restart or a second instance
forgot both: over-limit replies vanished and a new reply equal to a recent one was
swallowed, while the outbox said `sent`. Here they are rows, read and written by
every instance.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select

from store.db import Database
from store.models import MemberSend, SentBody


async def member_sends(db: Database, tenant: str, platform: str, userids: list[str], now: datetime,
                       horizon: float) -> dict[str, list[datetime]]:
    """userid (lower case) → times of messages delivered to them within `horizon` seconds, oldest first."""
    out: dict[str, list[datetime]] = defaultdict(list)
    wanted = sorted({u.lower() for u in userids})
    async with db.session() as s:
        for i in range(0, len(wanted), 500):
            rows = await s.execute(select(MemberSend.userid, MemberSend.sent_at).where(
                MemberSend.tenant == tenant, MemberSend.platform == platform,
                MemberSend.userid.in_(wanted[i:i + 500]),
                MemberSend.sent_at > now - timedelta(seconds=horizon)).order_by(MemberSend.sent_at))
            for userid, at in rows.all():
                out[userid].append(at)
    return out


async def body_owners(db: Database, tenant: str, digests: list[str], now: datetime,
                      interval: float) -> dict[str, set[tuple[int, str]]]:
    """digest → the (item, step)s that sent a body with that digest within `interval` seconds."""
    owners: dict[str, set[tuple[int, str]]] = defaultdict(set)
    async with db.session() as s:
        rows = await s.execute(select(SentBody.digest, SentBody.item, SentBody.step).where(
            SentBody.tenant == tenant, SentBody.digest.in_(digests),
            SentBody.at > now - timedelta(seconds=interval)))
        for digest, item, step in rows.all():
            owners[digest].add((int(item), step))
    return owners


async def record_send(db: Database, tenant: str, platform: str, *, item: int, step: str, digest: str,
                      userids: list[str], now: datetime) -> None:
    """Before a call goes out: its body's digest (under its first item) and one count per recipient."""
    async with db.transaction() as s:
        await s.execute(insert(SentBody), [dict(tenant=tenant, item=item, step=step, digest=digest, at=now)])
        if userids:
            await s.execute(insert(MemberSend), [dict(tenant=tenant, platform=platform, userid=u.lower(), sent_at=now)
                                                 for u in userids])


async def forget_before(db: Database, before: datetime) -> None:
    """Drop what no window looks at any more."""
    async with db.transaction() as s:
        await s.execute(delete(SentBody).where(SentBody.at < before))
        await s.execute(delete(MemberSend).where(MemberSend.sent_at < before))
