"""An acknowledged event is never given up because the database could not take it.

王强's message was stored and WeCom was answered; then handling fails. If the
database was full, read-only or gone, the event waits and is handled once it is
back, with no apology. If the handler itself keeps failing (a bug), the event
becomes a dead letter after a few tries, 王强 is told once, and the operator sees
it in `dongxian inbox status` and re-runs it with `dongxian inbox retry`.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bot.core.clock import FrozenClock
from cards.texts import t
from store import inbox
from store.db import Database, is_transient
from store.models import InboxEvent, WeeklyAction
from tests.harness import at, console_bot

ERROR_TEXT = t("zh", "error")


def disk_full() -> OperationalError:
    return OperationalError("UPDATE inbox SET …", {}, sqlite3.OperationalError("database or disk is full"))


class Flaky:
    """Stands in front of the router: raises `exc` for the first `times` events, then lets them through."""

    def __init__(self, router: Any, exc: BaseException, times: int) -> None:
        self.router, self.exc, self.times, self.calls = router, exc, times, 0

    async def dispatch(self, ctx: Any) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise self.exc
        await self.router.dispatch(ctx)


async def make_due(db: Database) -> None:
    """Skip the backoff wait (it is real time, seconds long)."""
    async with db.transaction() as s:
        await s.execute(update(InboxEvent).values(not_before=datetime.now(timezone.utc) - timedelta(seconds=1)))


async def the_event(db: Database) -> InboxEvent:
    async with db.session() as s:
        return (await s.execute(select(InboxEvent))).scalar_one()


async def test_a_full_disk_defers_the_message_and_it_is_handled_once_when_the_disk_has_room(
        db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        flaky = Flaky(bot.runtime.router, disk_full(), times=7)  # more than the dead-letter limit
        bot.runtime.router = flaky  # type: ignore[assignment]
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        for _ in range(7):
            row = await the_event(db)
            assert (row.status, row.failures) == ("pending", 0)  # never a dead letter, never counted
            assert row.not_before is not None and "database or disk is full" in row.error
            assert await bot.texts("wangqiang") == []  # no apology: nothing is wrong with the message
            await make_due(db)
            await bot.runtime.settle()
        assert flaky.calls == 8
        row = await the_event(db)
        assert row.status == "done"
        async with db.session() as s:
            assert [a.thing for a in (await s.execute(select(WeeklyAction))).scalars()] == ["完成2份临床评价报告初稿"]
        assert len([t for t in await bot.texts("wangqiang") if t]) == 1  # answered once
        assert ERROR_TEXT not in await bot.texts("wangqiang")
        assert len([m for m in await bot.all_messages("li_na") if m["kind"] == "card"]) == 1


async def test_a_handler_bug_becomes_a_dead_letter_after_a_few_tries_and_can_be_run_again(
        db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        flaky = Flaky(bot.runtime.router, KeyError("witness"), times=inbox.MAX_FAILURES)
        bot.runtime.router = flaky  # type: ignore[assignment]
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        for tries in range(1, inbox.MAX_FAILURES):
            row = await the_event(db)
            assert (row.status, row.failures) == ("pending", tries)
            assert await bot.texts("wangqiang") == []
            await make_due(db)
            await bot.runtime.settle()
        row = await the_event(db)
        assert (row.status, row.failures) == ("failed", inbox.MAX_FAILURES) and "KeyError" in row.error
        assert await bot.texts("wangqiang") == [ERROR_TEXT]  # told once
        await bot.runtime.settle()
        assert await bot.texts("wangqiang") == []

        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[database]\nurl = "{db.url}"\n', encoding="utf-8")
        status = subprocess.run([sys.executable, "-m", "bot.cli", "inbox", "status", "--config", str(cfg)],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert "console: failed=1" in status.stdout
        assert f"dead #{row.id} demo/console/wangqiang after {inbox.MAX_FAILURES} failures: KeyError" in status.stdout
        assert "临床" not in status.stdout  # the error, never what 王强 wrote
        again = subprocess.run([sys.executable, "-m", "bot.cli", "inbox", "retry", "--config", str(cfg)],
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "1 dead-lettered event(s) queued again" in again.stdout
        await bot.runtime.settle()  # the bug is fixed (Flaky lets it through now)
        assert (await the_event(db)).status == "done"
        assert len([m for m in await bot.all_messages("li_na") if m["kind"] == "card"]) == 1


@pytest.mark.parametrize("exc, transient", [
    (disk_full(), True),
    (OperationalError("INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")), True),
    (OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), True),
    (ConnectionResetError(104, "Connection reset by peer"), True),
    (OSError(28, "No space left on device"), True),
    (OperationalError("SELECT", {}, sqlite3.OperationalError("no such column: x")), False),
    (KeyError("witness"), False),
    (FileNotFoundError(2, "No such file"), False),
    (ValueError("bad"), False),
])
def test_what_counts_as_the_database_not_taking_work(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_postgres_read_only_and_disk_full_errors_are_transient() -> None:
    import asyncpg

    for cls in (asyncpg.exceptions.ReadOnlySQLTransactionError, asyncpg.exceptions.DiskFullError,
                asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.LockNotAvailableError):
        inner = cls("x")
        wrapped = OperationalError("INSERT", {}, Exception("wrapped"))
        wrapped.__cause__ = inner
        assert is_transient(wrapped), cls
    assert not is_transient(asyncpg.exceptions.UniqueViolationError("dup"))
