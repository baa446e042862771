"""Drive the bot as people do: over the console's HTTP API on 127.0.0.1, with a frozen clock.

    async with console_bot(db, clock) as bot:
        await bot.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜")
        card = await bot.last_card("lina")
        await bot.press("lina", card, "接受见证")
"""
from __future__ import annotations

import re
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import Config, parse_config
from bot.demo import DATA, DEMO_TENANT
from bot.runtime import Runtime
from handlers.router import Router
from schedules.registry import JobRegistry
from store.db import Database
from store.goals import import_goals
from store.roster import ensure_tenant, import_roster

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(s: str) -> datetime:
    """'2026-12-04 09:30' in Shanghai time."""
    return datetime.fromisoformat(s).replace(tzinfo=SHANGHAI)


def demo_test_config(db_url: str, data_dir: Path, **tenant: Any) -> Config:
    return parse_config({
        "server": {"data_dir": str(data_dir)},
        "database": {"url": db_url},
        "console": {"enabled": True},
        "tenants": [{"key": DEMO_TENANT, "name": "宁波康骨医疗器械有限公司", **tenant}],
    })


async def seed_demo_company(db: Database, config: Config, key: str = DEMO_TENANT) -> None:
    tenant = config.tenant(key)
    await ensure_tenant(db, tenant)
    report = await import_roster(db, key, DATA / "roster.csv")
    assert not report.errors, report.errors
    goals = await import_goals(db, key, DATA / "goals.csv", now=datetime(2026, 10, 1, tzinfo=SHANGHAI))
    assert not goals.errors, goals.errors


class ConsoleBot:
    def __init__(self, runtime: Runtime, client: TestClient, tenant: str = DEMO_TENANT) -> None:
        self.runtime = runtime
        self.client = client
        self.tenant = tenant
        self._seen: dict[str, int] = {}

    @property
    def clock(self) -> FrozenClock:
        assert isinstance(self.runtime.clock, FrozenClock)
        return self.runtime.clock

    async def say(self, userid: str, text: str) -> None:
        r = await self.client.post("/console/api/messages", json={"tenant": self.tenant, "userid": userid, "text": text})
        assert r.status == 202, await r.text()
        await self.runtime.settle()

    async def press(self, userid: str, card: dict[str, Any], button: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """Press the button whose text (or key) is `button` on `card`; returns the API answer."""
        key = next((b["key"] for b in card["buttons"] if button in (b["text"], b["key"])), None)
        assert key is not None, f"no button {button!r} on card {card['title']!r}: {card['buttons']}"
        r = await self.client.post("/console/api/actions", json={
            "tenant": self.tenant, "userid": userid, "card_id": card["id"], "key": key, "values": values or {}})
        assert r.status == 202, await r.text()
        await self.runtime.settle()
        return await r.json()

    async def all_messages(self, userid: str) -> list[dict[str, Any]]:
        r = await self.client.get("/console/api/inbox", params={"tenant": self.tenant, "userid": userid, "after": "0"})
        assert r.status == 200
        return (await r.json())["messages"]

    async def new(self, userid: str) -> list[dict[str, Any]]:
        """Messages `userid` received since the last call for them."""
        r = await self.client.get("/console/api/inbox", params={
            "tenant": self.tenant, "userid": userid, "after": str(self._seen.get(userid, 0))})
        msgs = (await r.json())["messages"]
        if msgs:
            self._seen[userid] = msgs[-1]["seq"]
        return msgs

    async def texts(self, userid: str) -> list[str]:
        return [m["text"] for m in await self.new(userid)]

    async def last_card(self, userid: str, title: str | None = None) -> dict[str, Any]:
        cards = [m["card"] for m in await self.all_messages(userid) if m["kind"] == "card"
                 and (title is None or title in m["card"]["title"])]
        assert cards, f"{userid} has no card" + (f" titled {title!r}" if title else "")
        return cards[-1]

    async def run_job(self, name: str, when: datetime) -> int:
        r = await self.client.post(f"/console/api/jobs/{name}/run", json={"tenant": self.tenant, "at": when.isoformat()})
        assert r.status == 200, await r.text()
        await self.runtime.settle()
        return (await r.json())["sent"]


async def open_console(client: TestClient) -> str:
    """Load the console page as a browser does: its session cookie and CSRF token go with every later request."""
    from bot.console_guard import CSRF_HEADER

    page = await client.get("/console/")
    assert page.status == 200, await page.text()
    m = re.search(r'<meta name="dx-csrf" content="([0-9a-f]+)">', await page.text())
    assert m, "the console page carries no CSRF token"
    client.session.headers[CSRF_HEADER] = m.group(1)
    return m.group(1)


@asynccontextmanager
async def console_bot(db: Database, clock: FrozenClock, data_dir: Path, *, router: Router | None = None,
                      jobs: JobRegistry | None = None, **tenant: Any) -> AsyncIterator[ConsoleBot]:
    """The bot with the demo company on a real HTTP server on 127.0.0.1:0 (with every built-in feature,
    or the given router and jobs)."""
    config = demo_test_config(db.url, data_dir, **tenant)
    await seed_demo_company(db, config)
    runtime = make_runtime(config, db, clock, router=router, jobs=jobs)
    app = build_app(runtime, start_background=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await open_console(client)
        yield ConsoleBot(runtime, client)
