"""Time helpers shared by every layer.

SQLite hands timestamps back without their offset even for timezone=True columns; every
timestamp is stored as UTC, so a naive value read back is UTC. These two helpers are the one
place that rule lives.
"""
from __future__ import annotations

from datetime import datetime, timezone


def aware(dt: datetime) -> datetime:
    """`dt` with a UTC offset: naive values (as SQLite returns them) are taken as UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def utc(dt: datetime) -> datetime:
    """`dt` as aware UTC, the form every timestamp is stored in."""
    return aware(dt).astimezone(timezone.utc)
