"""The relay: one message to many people, partly delivered, is finished for the rest — never twice."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from bot.adapter import Adapter, OutboundItem, SendResult
from bot.core.clock import utcnow
from bot.core.config import TenantConfig, parse_config
from bot.runtime import Runtime
from cards.model import Message
from store import outbox
from store.db import Database
from store.models import OutboxMessage


class ScriptedPlatform(Adapter):
    """A platform whose answer per person is scripted; counts what it accepted."""

    platform = "console"

    def __init__(self, runtime: Runtime, script: dict[str, list[SendResult]]) -> None:
        super().__init__(runtime)
        self.script = script
        self.delivered: Counter[str] = Counter()
        self.calls = 0

    async def send_batch(self, tenant: TenantConfig, items: list[OutboundItem]) -> dict[int, SendResult]:
        self.calls += 1
        out = {}
        for item in items:
            queue = self.script.get(item.userid)
            res = queue.pop(0) if queue else SendResult(ok=True)
            if res.ok:
                self.delivered[item.userid] += 1
            out[item.id] = res
        return out


async def make_due(db: Database) -> None:
    """Skip the backoff's wait (the platform asked for none; the jitter is not under test)."""
    async with db.transaction() as s:
        await s.execute(OutboxMessage.__table__.update().where(OutboxMessage.status == "pending")
                        .values(next_attempt_at=utcnow()))


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.session() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def test_a_fanout_row_is_split_into_what_to_retry_and_what_cannot_be_delivered(db: Database) -> None:
    config = parse_config({"database": {"url": db.url}, "tenants": [{"key": "demo", "name": "演示"}]})
    runtime = Runtime(config, db)
    people = [f"u{i:04d}" for i in range(2500)]
    busy = SendResult(ok=False, error="45009 api freq out of limit", retry_after=0)
    gone = SendResult(ok=False, error="user left", permanent=True)
    platform = ScriptedPlatform(runtime, {"u0001": [busy], "u0002": [busy, busy], "u1500": [gone]})
    runtime.add_adapter(platform)
    async with db.transaction() as s:
        assert outbox.enqueue_many(s, tenant="demo", platform="console", userids=people,
                                   message=Message(kind="text", text="本周关键动作？")) == 3  # 1000 a row
    for _ in range(5):
        await runtime.relay_once()
        await make_due(db)
    assert set(platform.delivered) == set(people) - {"u1500"}
    assert max(platform.delivered.values()) == 1  # nobody twice
    final = await rows(db)
    assert {r.status for r in final} == {"sent", "dead"}
    [dead] = [r for r in final if r.status == "dead"]
    assert outbox.recipients(dead) == ["u1500"] and dead.last_error == "user left"


async def test_a_fanout_that_failed_as_a_whole_is_retried_as_the_same_row(db: Database) -> None:
    config = parse_config({"database": {"url": db.url}, "tenants": [{"key": "demo", "name": "演示"}]})
    runtime = Runtime(config, db)
    down = SendResult(ok=False, error="connection reset", retry_after=0)
    platform = ScriptedPlatform(runtime, {u: [down] for u in ("a", "b", "c")})
    runtime.add_adapter(platform)
    async with db.transaction() as s:
        outbox.enqueue_many(s, tenant="demo", platform="console", userids=["a", "b", "c"],
                            message=Message(kind="text", text="hi"))
    await runtime.relay_once()
    [row] = await rows(db)
    assert (row.status, row.attempts) == ("pending", 1)
    await make_due(db)
    await runtime.relay_once()
    [row] = await rows(db)
    assert row.status == "sent" and platform.delivered == Counter({"a": 1, "b": 1, "c": 1})
