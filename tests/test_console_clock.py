"""The console's clock panel moves the console tenants' time only.

Support sets the demo company to Friday 17:30 ("拨到周五 17:30"); meanwhile the
WeCom company next to it keeps running on real time, so 王强's real WeCom
callback is still inside the replay window and is answered. Moving a WeCom
tenant's clock is refused unless a development config allows it, and times
outside a sensible range of years are refused instead of crashing handlers.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app, make_runtime
from bot.core.clock import Clock
from bot.core.config import parse_config
from bot.demo import DATA
from store.db import Database
from store.models import InboxEvent, WeeklyAction
from tests.fakes.wecom_server import FakeWeCom, wecom_tenant
from tests.harness import at, open_console, seed_demo_company


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    f = FakeWeCom()
    with open(DATA / "roster.csv", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(io.StringIO(fh.read())):
            f.add_user(row["userid"], row["name"])
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


def two_companies(db: Database, fake: FakeWeCom, tmp_path: Path, **console: Any) -> Any:
    return parse_config({
        "server": {"data_dir": str(tmp_path)}, "database": {"url": db.url},
        "console": {"enabled": True, **console},
        "tenants": [{"key": "demo", "name": "演示公司"}, wecom_tenant(fake, "wc")]})


async def test_moving_the_console_clock_leaves_wecom_on_real_time(db: Database, fake: FakeWeCom, tmp_path: Path) -> None:
    config = two_companies(db, fake, tmp_path)
    await seed_demo_company(db, config, "demo")
    await seed_demo_company(db, config, "wc")
    runtime = make_runtime(config, db, Clock())  # the real clock, as in `dongxian serve`
    runtime.adapters["wecom"].api_options = {"quick_backoff": 0.01}  # type: ignore[attr-defined]
    async with TestClient(TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)) as c:
        await open_console(c)
        try:
            moved = await c.put("/console/api/clock", json={"now": "2026-12-18T17:30:00+08:00"})
            assert moved.status == 200, await moved.text()
            assert (await moved.json())["tenants"] == ["demo"]
            clock = await (await c.get("/console/api/clock", params={"tenant": "demo"})).json()
            assert clock["now"].startswith("2026-12-18T09:30") and clock["simulated"] is True
            assert (await (await c.get("/console/api/clock", params={"tenant": "wc"})).json())["simulated"] is False

            # 王强 writes on WeCom with a real timestamp: accepted once, handled, answered.
            client = fake.callback_client(str(c.make_url("/wecom/wc/callback")), retry_interval=0.05)
            assert await client.say("wangqiang", "O1-KR2 完成2份临床评价报告初稿 @李娜") == [200]
            # …and 王强 in the demo company writes at the moved time: his action is in that week.
            assert (await c.post("/console/api/messages", json={
                "tenant": "demo", "userid": "wangqiang", "text": "O1-KR2 完成2份报告 @李娜"})).status == 202
            await runtime.settle()
            async with db.session() as s:
                actions = {a.tenant: a.week for a in (await s.execute(select(WeeklyAction))).scalars()}
                statuses = [r.status for r in (await s.execute(select(InboxEvent))).scalars()]
            assert statuses == ["done", "done"]
            assert actions["demo"] == "2026-W51"
            year, week, _ = Clock().now().astimezone(at("2026-12-01 00:00").tzinfo).isocalendar()
            assert actions["wc"] == f"{year}-W{week:02d}"  # real time
            assert len(fake.messages_to("wangqiang")) == 1  # answered once

            # The WeCom company's clock cannot be moved without the development switch.
            refused = await c.put("/console/api/clock", json={"now": "2026-12-04T17:30:00+08:00", "tenant": "wc"})
            assert refused.status == 409 and "simulate_platform_tenants" in (await refused.json())["error"]
            back = await c.delete("/console/api/clock")
            assert back.status == 200 and (await back.json())["simulated"] is False
        finally:
            await runtime.adapters["wecom"].stop()


async def test_the_development_switch_lets_the_clock_move_platform_tenants(
        db: Database, fake: FakeWeCom, tmp_path: Path) -> None:
    config = two_companies(db, fake, tmp_path, simulate_platform_tenants=True)
    runtime = make_runtime(config, db, Clock())
    async with TestClient(TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)) as c:
        await open_console(c)
        ok = await c.put("/console/api/clock", json={"now": "2026-12-04T17:30:00+08:00", "tenant": "wc"})
        assert ok.status == 200 and runtime.now_for("wc") >= at("2026-12-04 17:30")
        assert runtime.now_for("demo") < at("2026-12-04 17:30") or runtime.clock.now() >= at("2026-12-04 17:30")
        await runtime.adapters["wecom"].stop()


async def test_clock_values_out_of_range_are_refused_and_change_nothing(db: Database, fake: FakeWeCom,
                                                                         tmp_path: Path) -> None:
    config = two_companies(db, fake, tmp_path)
    await seed_demo_company(db, config, "demo")
    runtime = make_runtime(config, db, Clock())
    async with TestClient(TestServer(build_app(runtime, start_background=False), host="127.0.0.1", port=0)) as c:
        await open_console(c)
        for when in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+08:00", "1999-12-31T23:00:00+00:00",
                     "2101-01-01T00:00:00+08:00"):
            r = await c.put("/console/api/clock", json={"now": when})
            assert r.status == 400 and "between the years 2000 and 2100" in (await r.json())["error"], when
            job = await c.post("/console/api/jobs/pulse/run", json={"tenant": "demo", "at": when})
            assert job.status == 400, when
        assert runtime.offset("demo").total_seconds() == 0
        # The ticker runs on as before: nothing overflows.
        assert await runtime.tick(runtime.clock.now()) >= 0
        await runtime.adapters["wecom"].stop()
