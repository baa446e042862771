"""One person's events are claimed one run at a time, across every process sharing the inbox.

A second claimer (another instance) never gets a person's later event while an earlier
one is being handled; other people's events are claimed side by side.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.core.events import Event
from store import inbox
from store.db import Database
from store.models import InboxEvent

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)


def ev(userid: str, n: int, tenant: str = "demo") -> Event:
    return Event(tenant=tenant, platform="wecom", userid=userid, kind="text", text=f"m{n}", dedup_key=f"{userid}:{n}")


async def texts(rows: list[InboxEvent]) -> list[tuple[str, str]]:
    return [(r.userid, r.payload["text"]) for r in rows]


async def test_a_persons_later_events_wait_while_an_earlier_one_is_handled(db: Database) -> None:
    # 王强 writes three messages, 李娜 one, in this order.
    await inbox.accept_many(db, [ev("wangqiang", 1), ev("wangqiang", 2), ev("li_na", 1), ev("wangqiang", 3)], NOW)

    # Instance A takes two events: 王强's first two.
    a = await inbox.claim(db, NOW, limit=2)
    assert await texts(a) == [("wangqiang", "m1"), ("wangqiang", "m2")]
    # Instance B, meanwhile, gets 李娜's only: 王强's third waits for A.
    b = await inbox.claim(db, NOW, limit=50)
    assert await texts(b) == [("li_na", "m1")]
    assert await inbox.claim(db, NOW, limit=50) == []

    # A finishes one of 王强's two: the third still waits for the other.
    await inbox.finish(db, a[0].id, NOW)
    assert await inbox.claim(db, NOW, limit=50) == []
    await inbox.finish(db, a[1].id, NOW)
    c = await inbox.claim(db, NOW, limit=50)
    assert await texts(c) == [("wangqiang", "m3")]


async def test_a_run_stops_at_an_event_beyond_the_limit_or_held_elsewhere(db: Database) -> None:
    await inbox.accept_many(db, [ev("wangqiang", 1), ev("li_na", 1), ev("wangqiang", 2)], NOW)
    # With room for two, A takes 王强's first and 李娜's; 王强's second is left, and
    # nobody else may take it while his first is under way.
    a = await inbox.claim(db, NOW, limit=2)
    assert await texts(a) == [("wangqiang", "m1"), ("li_na", "m1")]
    assert await inbox.claim(db, NOW, limit=50) == []


async def test_a_dead_claimers_events_are_taken_again_in_order(db: Database) -> None:
    await inbox.accept_many(db, [ev("wangqiang", 1), ev("wangqiang", 2)], NOW)
    a = await inbox.claim(db, NOW, limit=1, lease=10)
    assert await texts(a) == [("wangqiang", "m1")]
    assert await inbox.claim(db, NOW, limit=50) == []  # the claim is live
    # The claimer died; once its lease is over the same event comes back first, with the next.
    later = NOW + timedelta(seconds=11)
    again = await inbox.claim(db, later, limit=50)
    assert await texts(again) == [("wangqiang", "m1"), ("wangqiang", "m2")]


async def test_the_same_userid_in_two_tenants_are_two_people(db: Database) -> None:
    await inbox.accept_many(db, [ev("wangqiang", 1, "demo"), ev("wangqiang", 1, "rival")], NOW)
    a = await inbox.claim(db, NOW, limit=1)
    b = await inbox.claim(db, NOW, limit=1)
    assert {(r.tenant, r.payload["text"]) for r in a + b} == {("demo", "m1"), ("rival", "m1")}


async def test_failed_events_do_not_hold_up_the_person(db: Database) -> None:
    await inbox.accept_many(db, [ev("wangqiang", 1), ev("wangqiang", 2)], NOW)
    [first] = await inbox.claim(db, NOW, limit=1)
    await inbox.finish(db, first.id, NOW, error="boom")
    assert await texts(await inbox.claim(db, NOW, limit=50)) == [("wangqiang", "m2")]
