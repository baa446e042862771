"""The inbox stores each platform event once, however it arrives, and only then answers."""
from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.core.events import Event
from bot.inbox_writer import InboxWriter
from store.db import Database
from store.models import InboxEvent


def ev(key: str, tenant: str = "demo", platform: str = "wecom") -> Event:
    return Event(tenant=tenant, platform=platform, userid="wangqiang", kind="text", text=key, dedup_key=key)


async def rows(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(InboxEvent))).scalar_one())


async def test_concurrent_callbacks_share_commits_and_each_is_stored_once(db: Database) -> None:
    writer = InboxWriter(db, max_batch=50)
    # 300 callbacks at once, every third a retry of an earlier one, some in the same batch.
    keys = [f"msg:{i // 3 if i % 3 == 2 else i}" for i in range(300)]
    fresh = await asyncio.gather(*(writer.accept(ev(k)) for k in keys))
    assert sum(fresh) == len(set(keys)) == await rows(db)
    # Exactly the first copy of each key was told "new".
    seen: set[str] = set()
    for k, f in zip(keys, fresh):
        assert f == (k not in seen)
        seen.add(k)
    # A later retry is refused by the database itself; other tenants and platforms are separate.
    assert await writer.accept(ev("msg:0")) is False
    assert await writer.accept(ev("msg:0", tenant="rival")) is True
    assert await writer.accept(ev("msg:0", platform="dingtalk")) is True


async def test_a_failed_commit_answers_every_waiting_caller_with_the_error(db: Database) -> None:
    writer = InboxWriter(db)
    # An event the database cannot take makes its batch fail; everyone in it gets the
    # error (the platform is answered non-200 and retries), nobody a false "stored".
    bad = Event(tenant="demo", platform="wecom", userid="u", kind="text", dedup_key="k", values={"x": object()})
    results = await asyncio.gather(writer.accept(bad), writer.accept(ev("ok")), return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)
    assert await rows(db) == 0
    assert await writer.accept(ev("ok")) is True  # the writer carries on
