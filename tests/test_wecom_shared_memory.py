"""Two bot processes and a restart agree on what WeCom has seen lately, through the database.

WeCom silently drops a body equal to one sent within the duplicate-check interval,
and a member's 31st message in a minute. Each process (here: a Runtime with its own
WeCom adapter, sharing the database) used to remember this alone. Now:

- after a restart, 王强 gets "收到" a second time when the bot says it a second time;
- a send whose "mark sent" failed is retried byte for byte, so WeCom shows it once;
- two processes sending 40 messages to one person in a minute send 30, hold 10
  until the minute has passed, and WeCom drops none.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bot import runtime as runtime_module
from bot.core.clock import FrozenClock, utcnow
from bot.wecom import ZERO_WIDTH
from cards.model import Message
from store import outbox
from store.db import Database
from store.models import OutboxMessage
from tests.fakes.wecom_server import BotUnderTest, FakeWeCom, running_bot

NOW = datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom()
    for uid in ("wangqiang", "lina"):
        f.add_user(uid, {"wangqiang": "王强", "lina": "李娜"}[uid])
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


async def enqueue(bot: BotUnderTest, userid: str, *texts: str) -> list[int]:
    async with bot.runtime.db.transaction() as s:
        rows = [outbox.enqueue(s, tenant="acme", platform="wecom", userid=userid, message=Message(kind="text", text=t))
                for t in texts]
        await s.flush()
        return [r.id for r in rows]


async def statuses(db: Database) -> dict[str, int]:
    return {st: n for (_p, st), n in (await outbox.status_counts(db)).items()}


async def make_due(db: Database) -> None:
    async with db.transaction() as s:
        past = utcnow() - timedelta(seconds=1)
        await s.execute(update(OutboxMessage).where(OutboxMessage.status == "pending").values(next_attempt_at=past))
        await s.execute(update(OutboxMessage).where(OutboxMessage.status == "sending").values(claimed_until=past))


def shown(fake: FakeWeCom, userid: str) -> list[str]:
    return [d.text.rstrip(ZERO_WIDTH) for d in fake.messages_to(userid)]


async def test_after_a_restart_an_equal_reply_is_not_swallowed(db: Database, fake: FakeWeCom) -> None:
    async with running_bot(db, fake, FrozenClock(NOW)) as first:
        await enqueue(first, "wangqiang", "收到，已记录。")
        await first.runtime.relay_once()
    assert shown(fake, "wangqiang") == ["收到，已记录。"]
    async with running_bot(db, fake, FrozenClock(NOW)) as restarted:  # nothing in memory
        await enqueue(restarted, "wangqiang", "收到，已记录。")
        await restarted.runtime.relay_once()
    assert shown(fake, "wangqiang") == ["收到，已记录。", "收到，已记录。"]
    assert await statuses(db) == {"sent": 2}


@pytest.mark.parametrize("retried_by", ["the same process", "another process"])
async def test_a_send_whose_mark_sent_failed_is_retried_byte_for_byte(
        db: Database, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch, retried_by: str) -> None:
    real_mark_sent = outbox.mark_sent
    calls = 0

    async def flaky_mark_sent(*args: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # the disk filled up just after WeCom took the message
            raise OperationalError("UPDATE outbox", {}, sqlite3.OperationalError("database or disk is full"))
        await real_mark_sent(*args, **kw)

    monkeypatch.setattr(runtime_module.outbox, "mark_sent", flaky_mark_sent)
    async with running_bot(db, fake, FrozenClock(NOW)) as a, running_bot(db, fake, FrozenClock(NOW)) as b:
        await enqueue(a, "lina", "王强 邀请你见证：完成2份报告")
        with pytest.raises(OperationalError):
            await a.runtime.relay_once()
        assert shown(fake, "lina") == ["王强 邀请你见证：完成2份报告"]
        assert await statuses(db) == {"sending": 1}
        await make_due(db)  # its claim runs out
        again = a if retried_by == "the same process" else b
        assert await again.runtime.relay_once() == 1
        assert await statuses(db) == {"sent": 1}
        bodies = [c for c in fake.calls if c[0] == "message/send"]
        assert len(bodies) == 2  # sent twice…
    assert shown(fake, "lina") == ["王强 邀请你见证：完成2份报告"]  # …shown once


async def test_two_processes_keep_one_persons_limit_together(db: Database, fake: FakeWeCom) -> None:
    async with running_bot(db, fake, FrozenClock(NOW)) as a, running_bot(db, fake, FrozenClock(NOW)) as b:
        await enqueue(a, "wangqiang", *[f"A 第{i}条" for i in range(20)])
        await a.runtime.relay_once()
        await enqueue(b, "wangqiang", *[f"B 第{i}条" for i in range(20)])
        await b.runtime.relay_once()
        assert len(fake.messages_to("wangqiang")) == 30
        assert fake.silently_dropped == []
        assert await statuses(db) == {"sent": 30, "pending": 10}
        async with db.session() as s:
            waits = [r.next_attempt_at for r in (await s.execute(
                select(OutboxMessage).where(OutboxMessage.status == "pending"))).scalars()]
        assert all(w > utcnow() + timedelta(seconds=20) for w in waits)  # held for the rest of the minute

        # A minute later (both processes and WeCom move on), the rest goes out; WeCom dropped nothing.
        later = utcnow() + timedelta(seconds=61)
        for bot in (a, b):
            bot.adapter._wall = lambda: later  # type: ignore[method-assign]
        fake.advance(61)
        await make_due(db)
        await b.runtime.relay_once()
        await a.runtime.relay_once()
        assert await statuses(db) == {"sent": 40}
    assert len(fake.messages_to("wangqiang")) == 40 and fake.silently_dropped == []
