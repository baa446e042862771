"""Injected clocks: domain code never reads the wall clock directly.

The 09:30 prompt, the Friday pulse and the 2-hour escalation rule all depend on
"now"; taking it from a clock object is what lets tests and the console's clock
panel move time.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Clock:
    """The real clock, with an optional offset the console can set."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self._offset

    def set(self, when: datetime) -> None:
        """Make now() return `when` from this moment on (and keep ticking)."""
        if when.tzinfo is None:
            raise ValueError("the time needs a UTC offset, e.g. 2026-12-04T09:30:00+08:00")
        self._offset = when - utcnow()

    def reset(self) -> None:
        self._offset = timedelta(0)

    @property
    def simulated(self) -> bool:
        return self._offset != timedelta(0)


class FrozenClock(Clock):
    """A clock that stands still until moved; for tests."""

    def __init__(self, when: datetime) -> None:
        super().__init__()
        self._now = when

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("the time needs a UTC offset")
        self._now = when

    def advance(self, **kw: float) -> None:
        self._now = self._now + timedelta(**kw)

    def reset(self) -> None:  # a frozen clock has no "real" time to go back to
        pass

    @property
    def simulated(self) -> bool:
        return True


def monotonic() -> float:
    return time.monotonic()
