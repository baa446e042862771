"""Another web page cannot drive the console, in real headless Chromium.

The console runs on loopback without a token (the demo default). A page from
another loopback origin tries what a hostile site would: a `<form
enctype=text/plain>` posting JSON-looking text, and `fetch(…, {mode: "no-cors"})`
with text/plain and with application/json. Nothing is stored, no job runs, the
clock stays. A name that resolves to 127.0.0.1 (DNS rebinding) gets 421. The
console's own page, meanwhile, works: 王强 writes his action and gets his card.
"""
from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.app import build_app, make_runtime
from bot.core.clock import FrozenClock
from bot.core.config import parse_config
from bot.demo import DEMO_TENANT
from store.db import Database
from store.models import InboxEvent, JobRun, WeeklyAction
from tests.harness import at, seed_demo_company

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=zh-CN",
        # A name of the attacker's that resolves to the console's address: DNS rebinding.
        "--host-resolver-rules=MAP evil.example 127.0.0.1"]
WAIT_MS = 15_000
REQUIRED = os.environ.get("DONGXIAN_REQUIRE_BROWSER") == "1"

if not CHROMIUM.exists() and not REQUIRED:
    pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)", allow_module_level=True)

from playwright.async_api import async_playwright, expect  # noqa: E402


@asynccontextmanager
async def site(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def hostile_page(console: str) -> str:
    body = '{"tenant": "demo", "userid": "wangqiang", "text": "O1-KR2 伪造的动作 @李娜", "x": "'
    return f"""<!doctype html><html><head><meta charset="utf-8"></head><body>
<form id="f" method="POST" action="{console}/console/api/messages" enctype="text/plain" target="sink">
  <input type="hidden" name='{body}' value='"}}'>
</form>
<iframe name="sink"></iframe>
<script>
const json = JSON.stringify({{tenant: "demo", userid: "wangqiang", text: "O1-KR2 伪造的动作 @李娜"}});
const tries = [
  ["POST", "/console/api/messages", "text/plain", json],
  ["POST", "/console/api/actions", "text/plain", JSON.stringify({{tenant: "demo", userid: "li_na", card_id: "c1", key: "accept"}})],
  ["POST", "/console/api/jobs/pulse/run", "text/plain", JSON.stringify({{tenant: "demo"}})],
  ["POST", "/console/api/messages", "application/json", json],
  ["PUT", "/console/api/clock", "application/json", JSON.stringify({{now: "2026-12-04T17:30:00+08:00"}})],
];
window.done = Promise.all(tries.map(([method, path, type, body]) =>
  fetch("{console}" + path, {{method, mode: "no-cors", headers: {{"Content-Type": type}}, body}})
    .then(() => "sent", (e) => "blocked: " + e)))
  .then((r) => {{ document.getElementById("f").submit(); return r; }});
</script></body></html>"""


async def test_a_page_on_another_origin_cannot_drive_the_console(db: Database, tmp_path: Path) -> None:
    config = parse_config({"server": {"data_dir": str(tmp_path / "data")}, "database": {"url": db.url},
                           "console": {"enabled": True},  # no token: the loopback demo default
                           "tenants": [{"key": DEMO_TENANT, "name": "宁波康骨医疗器械有限公司"}]})
    await seed_demo_company(db, config)
    runtime = make_runtime(config, db, FrozenClock(at("2026-12-02 10:00")))
    await runtime.start()
    answers: list[tuple[str, int]] = []
    async with site(build_app(runtime, start_background=False)) as port, async_playwright() as pw:
        console = f"http://127.0.0.1:{port}"
        evil = web.Application()
        evil.router.add_get("/", lambda r: web.Response(text=hostile_page(console), content_type="text/html"))
        async with site(evil) as evil_port:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            try:
                page = await browser.new_page(locale="zh-CN")
                page.set_default_timeout(WAIT_MS)
                expect.set_options(timeout=WAIT_MS)
                page.on("response", lambda r: answers.append((r.url, r.status)) if "/console/" in r.url else None)
                # The operator has the real console open in another tab: its session cookie exists.
                own = await browser.new_page(locale="zh-CN")
                await own.goto(f"{console}/console/")
                await expect(own.locator(".person")).to_have_count(40)

                await page.goto(f"http://localhost:{evil_port}/")  # another loopback origin
                outcomes = await page.evaluate("window.done")
                assert len(outcomes) == 5
                await page.wait_for_timeout(1000)  # the form's POST lands in the iframe
                await runtime.settle()
                async with db.session() as s:
                    assert (await s.execute(select(func.count()).select_from(InboxEvent))).scalar_one() == 0
                    assert (await s.execute(select(func.count()).select_from(JobRun))).scalar_one() == 0
                assert runtime.offset(DEMO_TENANT).total_seconds() == 0
                form = [status for url, status in answers if url.endswith("/console/api/messages")]
                assert form and all(400 <= st < 500 for st in form), answers

                # DNS rebinding: the attacker's own name, pointed at 127.0.0.1, reaches the port but is refused.
                rebound = await page.goto(f"http://evil.example:{port}/console/")
                assert rebound is not None and rebound.status == 421
                api = await page.goto(f"http://evil.example:{port}/console/api/users?tenant=demo")
                assert api is not None and api.status == 421

                # The console's own page works, CSRF token and all.
                await own.fill("#people-search", "wangq")
                await own.click('.person[data-userid="wangqiang"]')
                await own.fill("#input", "O1-KR2 完成2份临床评价报告初稿 @李娜")
                await own.press("#input", "Enter")
                await expect(own.locator(".msg.bot .card").last).to_contain_text("完成2份临床评价报告初稿")
                await own.click("#clock-reset")
                await asyncio.sleep(0.2)
            finally:
                await browser.close()
    await runtime.stop()
    async with db.session() as s:
        assert [a.thing for a in (await s.execute(select(WeeklyAction))).scalars()] == ["完成2份临床评价报告初稿"]
