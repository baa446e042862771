"""The readiness write probe: a heartbeat row per instance, rewritten on every /readyz.

A read (SELECT 1) succeeds on a full disk and on a read-only database; only a
committed write shows the database can take what the bot must store.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete

from store.db import Database, insert_ignore
from store.models import Heartbeat


async def write_probe(db: Database, instance: str, now: datetime) -> str | None:
    """None if a write committed; otherwise what went wrong (the error's class, no parameters)."""
    try:
        async with db.transaction() as s:
            await s.execute(delete(Heartbeat).where(Heartbeat.instance == instance[:255]))
            await s.execute(insert_ignore(s, Heartbeat.__table__, dict(instance=instance[:255], beat_at=now)))
    except Exception as exc:
        return f"the database does not take writes: {type(exc).__name__}"
    return None
