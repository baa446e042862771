"""The console JSON API: strict about input, deduplicating, token-guarded."""
from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from store.db import Database
from store.models import InboxEvent, WeeklyAction
from tests.harness import at, console_bot, seed_demo_company


async def count(db: Database, model) -> int:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_duplicate_inbound_event_is_processed_once(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        body = {"tenant": "demo", "userid": "wangqiang", "text": "O1-KR2 完成2份报告 @李娜", "client_id": "m-1"}
        first = await bot.client.post("/console/api/messages", json=body)
        again = await bot.client.post("/console/api/messages", json=body)
        assert (first.status, await first.json()) == (202, {"accepted": True})
        assert (again.status, await again.json()) == (202, {"accepted": False})
        await bot.runtime.settle()
        assert await count(db, InboxEvent) == 1
        assert await count(db, WeeklyAction) == 1
        assert len([m for m in await bot.all_messages("li_na") if m["kind"] == "card"]) == 1


async def test_bad_requests_get_a_clear_message_and_change_nothing(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        c = bot.client
        cases = [
            (await c.post("/console/api/messages", data=b"not json", headers={"Content-Type": "application/json"}),
             400, "body must be a JSON object"),
            # Only JSON is read as JSON: a text/plain body is what a cross-site form or no-cors fetch sends.
            (await c.post("/console/api/messages", data=b'{"tenant": "demo", "userid": "wangqiang", "text": "x"}',
                          headers={"Content-Type": "text/plain"}), 415, "application/json only"),
            (await c.post("/console/api/messages", json=["a"]), 400, "body must be a JSON object"),
            (await c.post("/console/api/messages", json={"tenant": "demo", "userid": "wangqiang"}), 400, "text is required"),
            (await c.post("/console/api/messages", json={"tenant": "other", "userid": "wangqiang", "text": "x"}), 404, "unknown tenant 'other'"),
            (await c.post("/console/api/messages", json={"tenant": "demo", "userid": "nobody", "text": "x"}), 404, "no user 'nobody' in tenant 'demo'"),
            (await c.post("/console/api/actions", json={"tenant": "demo", "userid": "wangqiang"}), 400, "card_id and key are required"),
            (await c.put("/console/api/clock", json={"now": "2026-12-01T09:30:00"}), 400, "UTC offset"),
            (await c.post("/console/api/jobs/cleanup/run", json={"tenant": "demo"}), 404, "unknown job 'cleanup'"),
            (await c.get("/console/api/inbox", params={"tenant": "demo", "userid": "x", "after": "y"}), 400, "after must be a number"),
        ]
        for resp, status, message in cases:
            assert resp.status == status, (await resp.text())
            assert message in (await resp.json())["error"]
        assert await count(db, InboxEvent) == 0
        # A press on a card that does not exist, or someone else's card, is refused in chat.
        await bot.say("wangqiang", "O1-KR2 完成2份报告 @李娜")
        invite = await bot.last_card("li_na", "见证邀请")
        await bot.client.post("/console/api/actions", json={"tenant": "demo", "userid": "zhaolei", "card_id": invite["id"], "key": "accept"})
        await bot.runtime.settle()
        assert (await bot.new("zhaolei"))[-1]["text"] == "这张卡片不是发给你的。"
        await bot.client.post("/console/api/actions", json={"tenant": "demo", "userid": "li_na", "card_id": invite["id"], "key": "forged"})
        await bot.runtime.settle()
        assert (await bot.new("li_na"))[-1]["text"] == "找不到这张卡片，可能已过期。"
        async with db.session() as s:
            action = (await s.execute(select(WeeklyAction))).scalar_one()
        assert action.witness_state == "invited"


async def test_clock_and_users_and_health(db: Database, tmp_path: Path) -> None:
    async with console_bot(db, FrozenClock(at("2026-12-01 10:00")), tmp_path) as bot:
        r = await bot.client.put("/console/api/clock", json={"now": "2026-12-04T17:30:00+08:00"})
        assert (await r.json())["now"] == "2026-12-04T17:30:00+08:00"
        users = (await (await bot.client.get("/console/api/users", params={"tenant": "demo"})).json())["users"]
        assert len(users) == 40
        zhou = next(u for u in users if u["userid"] == "zhoumin")
        assert zhou == {**zhou, "name": "周敏", "department": "康骨医疗/人力资源部", "roles": ["employee", "manager", "hr"]}
        health = await bot.client.get("/healthz")
        assert health.status == 200 and (await health.json())["database"] == "ok"
        ready = await bot.client.get("/readyz")
        assert ready.status == 200 and (await ready.json())["schema"] == "current"


async def test_the_console_token_is_required_when_set(db: Database, tmp_path: Path) -> None:
    config = parse_config({"database": {"url": db.url}, "server": {"host": "0.0.0.0"},
                           "console": {"enabled": True, "token": "s3cret-token-for-tests"},
                           "tenants": [{"key": "demo", "name": "演示"}]})
    await seed_demo_company(db, config)
    app = build_app(make_runtime(config, db, FrozenClock(at("2026-12-01 10:00"))), start_background=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        assert (await c.get("/console/api/users", params={"tenant": "demo"})).status == 401
        bad = await c.get("/console/api/users", params={"tenant": "demo"}, headers={"X-Dongxian-Token": "guess"})
        assert bad.status == 401
        ok = await c.get("/console/api/users", params={"tenant": "demo"}, headers={"Authorization": "Bearer s3cret-token-for-tests"})
        assert ok.status == 200


async def test_console_disabled_has_no_api(db: Database, tmp_path: Path) -> None:
    config = parse_config({"database": {"url": db.url}, "console": {"enabled": False},
                           "tenants": [{"key": "demo", "name": "演示"}]})
    app = build_app(make_runtime(config, db, FrozenClock(at("2026-12-01 10:00"))), start_background=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as c:
        assert (await c.get("/console/api/users", params={"tenant": "demo"})).status == 404
        assert (await c.get("/healthz")).status == 200
